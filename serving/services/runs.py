"""The serving worker's side of a prediction: open a model version once per process, run it on one image, and store
a shadow's answer on the frame its champion predicted."""
import base64
import io
import logging
import time

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image

from dashboard.errors import ApiError, Conflict, ValidationFailed
from dashboard.models import AssetStatus, Data, ModelVersion, PredictedAsset, Prediction
from dashboard.services.images import IMAGE_DECODE_ERRORS
from dashboard.shapes import shapes_scale, shapes_to_raw
from monitoring.services.ingest import shadow_prediction_add
from serving.runtimes import RUNTIME_KINDS, Runtime, RuntimeFailed, runtime_cached, runtime_load
from serving.services.registry import model_version_artifact

logger = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """The version cannot run here: no runtime Loupe knows, or its file or contract no longer opens."""


def runtime_options(kind: str) -> dict:
    if kind == "onnx":
        return {"intra_op_threads": settings.LOUPE_ONNX_THREADS, "providers": list(settings.LOUPE_ONNX_PROVIDERS)}
    return {}


def model_version_key(version: ModelVersion) -> list[str]:
    """What names a version's runtime in a worker's cache: its id and when it last changed (JSON, for a task)."""
    return [str(version.id), version.updated_at.isoformat()]


def model_version_open(version: ModelVersion) -> Runtime:
    """The version's runtime, opened once per process (and again when the version changes)."""
    if version.runtime not in RUNTIME_KINDS:
        raise ModelUnavailable(f"{version} has no runtime Loupe runs (runtime {version.runtime!r})")
    try:
        return runtime_load(
            version.runtime,
            artifact=lambda: model_version_artifact(version),
            endpoint=version.endpoint or None,
            contract=version.contract,
            labels={int(class_id): name for class_id, name in version.labels.items()},
            cache_key=tuple(model_version_key(version)),
            options=runtime_options(version.runtime),
        )
    except (ValidationFailed, OSError) as error:
        message = error.message if isinstance(error, ApiError) else str(error)
        raise ModelUnavailable(f"{version} does not open: {message}") from error


def image_decoded(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def data_image(data: Data) -> Image.Image:
    with default_storage.open(data.image.name, "rb") as file:
        return image_decoded(file.read())


def model_version_run(*, version: ModelVersion, image: Image.Image) -> tuple[list[dict], float]:
    """(shapes in the image's pixels, every score kept; the model's own seconds). Raises RuntimeFailed,
    ModelUnavailable."""
    return runtime_run(model_version_open(version), image)


def runtime_run(runtime: Runtime, image: Image.Image) -> tuple[list[dict], float]:
    started = time.perf_counter()
    shapes = runtime.predict(image)
    return shapes, time.perf_counter() - started


def model_version_predict(*, model_version_id: str, image: str | None = None, data_id: str | None = None,
                          version_key: list[str] | None = None) -> dict:
    """The serving task's work: run the version on an image (base64 bytes, or a Data of the datalake).

    Answers {"shapes", "latency", "width", "height"} or {"error"}: a model failing is an answer, not a crash of the
    task, so the waiting web process can say what went wrong. With the version's `model_version_key`, a runtime this
    process already opened runs at once: a prediction on sent bytes then reads nothing from the database.
    """
    runtime = runtime_cached(tuple(version_key)) if version_key else None
    version = None
    if runtime is None:
        version = ModelVersion.objects.select_related("model").filter(pk=model_version_id).first()
        if version is None:
            return {"error": f"model version {model_version_id} no longer exists"}
    try:
        if image is not None:
            try:
                decoded = image_decoded(base64.b64decode(image))
            except IMAGE_DECODE_ERRORS:
                # The web process checked only the image's header: this decode is the image's check.
                return {"error": "the image is truncated or corrupt", "field": "media"}
        else:
            data = Data.objects.filter(pk=data_id).first()
            if data is None:
                return {"error": f"data {data_id} no longer exists"}
            decoded = data_image(data)
        shapes, latency = runtime_run(runtime or model_version_open(version), decoded)
    except (RuntimeFailed, ModelUnavailable) as error:
        return {"error": str(error)}
    return {"shapes": shapes, "latency": latency, "width": decoded.width, "height": decoded.height}


def shapes_kept(shapes: list[dict], *, min_threshold: float, retired=()) -> list[dict]:
    """The shapes a deployment answers: boxes and polygons under its min_threshold dropped (a classification always
    answers its class), shapes of a class the deployment retired dropped (the model still knows it, the deployment
    takes it no more), coordinates to a hundredth of a pixel."""
    kept = []
    for shape in shapes:
        if shape["type"] != "classification" and shape["score"] < min_threshold:
            continue
        if shape["label_id"] in retired:
            continue
        if shape["type"] == "rectangle":
            shape = {**shape, **{key: round(shape[key], 2) for key in ("x", "y", "w", "h")}}
        elif shape["type"] == "polygon":
            shape = {**shape, "points": [[round(x, 2), round(y, 2)] for x, y in shape["points"]]}
        kept.append(shape)
    return kept


def shadow_prediction_run(*, asset: PredictedAsset) -> Prediction | None:
    """Run the deployment's current shadow on a monitored frame and store its answer as the frame's shadow prediction.

    Nothing happens when the deployment has no shadow Loupe can run, or the frame has its shadow already (so a retry
    is harmless); a failing shadow model is logged, never raised: it must not disturb anything else.
    """
    deployment = asset.deployment
    version = deployment.shadow
    if version is None or version.runtime not in RUNTIME_KINDS or asset.status == AssetStatus.SUBMITTED:
        return None
    if asset.predictions.filter(is_shadow=True).exists():
        return None
    try:
        image = data_image(asset.data)
        shapes, latency = model_version_run(version=version, image=image)
    except (RuntimeFailed, ModelUnavailable) as error:
        logger.warning("shadow %s failed on predicted asset %s: %s", version, asset.id, error)
        return None
    shapes = shapes_scale(shapes, from_size=(image.width, image.height), to_size=(asset.width, asset.height))
    raw = shapes_to_raw(shapes_kept(shapes, min_threshold=deployment.min_threshold, retired=deployment.retired_classes),
                        deployment.type)
    try:
        return shadow_prediction_add(asset=asset, payload={"shadow_raw_predictions": raw, "shadow_latency": latency})
    except Conflict:
        return None
    except ValidationFailed as error:
        logger.warning("shadow %s answered what predicted asset %s cannot store: %s", version, asset.id, error.message)
        return None
