"""Predictions served by Loupe: the web process checks the request, a serving worker runs the model (its own Celery
queue, so a slow model never holds a web process's other work), and the monitored answer is stored through the same
ingest as the monitoring API. The shadow runs afterwards, in a task of its own."""
import base64
import json

from celery.exceptions import TimeoutError as ResultTimeout
from django.conf import settings

from dashboard.errors import ApiError, Conflict, FieldError, NotFound, ValidationFailed
from dashboard.models import Data, Deployment, ModelVersion, PredictedAsset
from dashboard.selectors.predictions import asset_predictions
from dashboard.services.background import task_send_on_commit
from dashboard.services.images import image_header
from dashboard.shapes import parse_raw_predictions, shapes_scale, shapes_to_raw
from monitoring.services.ingest import prediction_ingest, shadow_prediction_add
from serving.runtimes import RUNTIME_KINDS
from serving.services.runs import model_version_key, shapes_kept
from serving.tasks import model_version_predict, shadow_predict


class ModelFailed(ApiError):
    """The model could not answer: its endpoint failed, its file no longer opens, or its outputs broke the rules."""

    status = 502


class ServingUnavailable(ApiError):
    """No serving worker took the prediction in time."""

    status = 503


class ModelTooSlow(ApiError):
    status = 504


def serving_queue(*, deployment: Deployment, version: ModelVersion, shadow: bool = False) -> str:
    """The Celery queue a version runs on for this deployment: LOUPE_SERVING_QUEUES by deployment id, name, then
    runtime kind; shadows on LOUPE_SERVING_SHADOW_QUEUE when it is set; else LOUPE_SERVING_QUEUE."""
    if shadow and settings.LOUPE_SERVING_SHADOW_QUEUE:
        return settings.LOUPE_SERVING_SHADOW_QUEUE
    routes = settings.LOUPE_SERVING_QUEUES
    for key in (str(deployment.id), deployment.name, version.runtime):
        if key in routes:
            return routes[key]
    return settings.LOUPE_SERVING_QUEUE


def _servable(deployment: Deployment, role: str) -> ModelVersion:
    version = getattr(deployment, role)
    if version is None:
        how = "POST /api/deployment/{id}/model" if role == "champion" else "POST /api/deployment/{id}/shadow"
        raise Conflict(f"deployment {deployment.name!r} has no {role} model version to predict with; an admin sets one "
                       f"on its Models page or with {how}", [FieldError(role, "not set")])
    if version.runtime not in RUNTIME_KINDS:
        raise Conflict(f"the {role} {version} has no runtime Loupe runs: it is monitored only; upload an ONNX version "
                       "or register an endpoint", [FieldError(role, "has no runtime")])
    return version


def _run_on_worker(*, deployment: Deployment, version: ModelVersion, shadow: bool = False,
                   content: bytes | None = None, data_id=None) -> dict:
    """The worker's answer {"shapes", "latency", "width", "height"}, waited for at most LOUPE_SERVING_TIMEOUT."""
    timeout = settings.LOUPE_SERVING_TIMEOUT
    queue = serving_queue(deployment=deployment, version=version, shadow=shadow)
    result = model_version_predict.apply_async(
        kwargs={
            "model_version_id": str(version.id),
            "image": base64.b64encode(content).decode("ascii") if content is not None else None,
            "data_id": str(data_id) if data_id is not None else None,
            "version_key": model_version_key(version),
        },
        queue=queue,
        # Nobody waits after the timeout: a worker that comes late drops it instead of running it.
        expires=timeout,
    )
    try:
        outcome = result.get(timeout=timeout, interval=0.02, propagate=False)
    except ResultTimeout:
        if result.state == "PENDING":
            raise ServingUnavailable(
                f"no serving worker took the prediction within {timeout:g} s; start one consuming the {queue!r} queue "
                f"(celery -A dashboard worker -Q {queue})", [FieldError("worker", f"none on queue {queue}")],
            ) from None
        raise ModelTooSlow(f"{version} did not answer within {timeout:g} s", [FieldError("model", "too slow")]) from None
    failed = result.failed()
    result.forget()
    if failed:
        raise ModelFailed(f"the serving worker failed running {version}: {type(outcome).__name__}: {outcome}",
                          [FieldError("model", "the worker failed")])
    if "error" in outcome and outcome.get("field") == "media":
        raise ValidationFailed.from_errors([FieldError("media", "is truncated or corrupt")])
    if "error" in outcome:
        raise ModelFailed(outcome["error"], [FieldError("model", outcome["error"])])
    return outcome


def _checked_raw(shapes: list[dict], *, deployment: Deployment, version: ModelVersion, width: int, height: int) -> dict:
    """The shapes in the deployment's wire format, refused as the model's fault when they break its rules (an unknown
    class id, say): the client sent nothing wrong."""
    raw = shapes_to_raw(shapes, deployment.type)
    parsed = parse_raw_predictions(raw, inference_type=deployment.type, class_ids=deployment.class_ids,
                                   width=width, height=height)
    if parsed.errors:
        first = parsed.errors[0]
        raise ModelFailed(f"{version} answered what the deployment cannot take: {first.field}: {first.message}",
                          [FieldError(f"model.{error.field}", error.message) for error in parsed.errors])
    return raw


def _metadata(text) -> dict | None:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise ValidationFailed.from_errors([FieldError("metadata", f"is not valid JSON ({error})")]) from None
    if not isinstance(value, dict):
        raise ValidationFailed.from_errors([FieldError("metadata", "must be a JSON object")])
    return value


def _answer(*, raw: dict, latency: float, version: ModelVersion, asset: PredictedAsset | None = None,
            warnings: list[str] | None = None, shadow: str | None = None) -> dict:
    answer = {
        **raw,
        "latency": latency,
        "model_version_id": str(version.id),
        "model_version": str(version),
        "monitored": asset is not None,
    }
    if asset is not None:
        answer.update(
            oracle_prediction_id=str(asset.oracle_prediction_id), id=str(asset.oracle_prediction_id),
            predicted_asset_id=str(asset.id), data_id=str(asset.data_id), status=asset.status,
            timestamp=asset.timestamp.timestamp(),
        )
    answer["warnings"] = warnings or []
    if shadow is not None:
        answer["shadow"] = shadow
    return answer


def _repeat_refused(deployment: Deployment, idempotency_key: str | None) -> None:
    """A retry of a stored prediction answers 409 with what was answered the first time, without running the model."""
    if not idempotency_key:
        return
    asset = deployment.predicted_assets.filter(idempotency_key=idempotency_key).select_related("deployment").first()
    if asset is None:
        return
    champion = asset_predictions(asset).champion
    raw = shapes_to_raw(champion.shapes if champion else [], deployment.type)
    version = champion.model_version if champion and champion.model_version else deployment.champion
    raise Conflict("this prediction was already made (same Idempotency-Key); nothing was run or stored again",
                   **_answer(raw=raw, latency=asset.latency, version=version, asset=asset))


def deployment_predict(
    *,
    deployment: Deployment,
    content: bytes | None,
    filename: str | None,
    data_id=None,
    source: str | None = None,
    tags: list[str] | None = None,
    metadata: str | None = None,
    monitor: bool = True,
    idempotency_key: str | None = None,
) -> dict:
    """The champion's prediction on an image (its bytes, or a Data of the organization's datalake), in the wire
    format, with its latency; monitored, it is stored as a new frame (or, for a Data, replacing the deployment's
    prediction of it) and the shadow is sent off to run after the answer."""
    version = _servable(deployment, "champion")
    data = None
    if content is not None:
        # Only the header here: the serving worker decodes the image whole, and that decode is its check.
        facts = image_header(content=content, field="media")
        width, height = facts.width, facts.height
    else:
        data = Data.objects.filter(pk=data_id, organization_id=deployment.organization_id).first()
        if data is None:
            raise NotFound(f"data {data_id} is not in the organization's datalake", [FieldError("data_id", "not found")])
        width, height = data.width, data.height
    metadata_object = _metadata(metadata)
    if monitor:
        _repeat_refused(deployment, idempotency_key)

    outcome = _run_on_worker(deployment=deployment, version=version, content=content, data_id=data and data.id)
    shapes = shapes_scale(outcome["shapes"], from_size=(outcome["width"], outcome["height"]), to_size=(width, height))
    shapes = shapes_kept(shapes, min_threshold=deployment.min_threshold,
                         retired=deployment.retired_classes)
    raw = _checked_raw(shapes, deployment=deployment, version=version, width=width, height=height)
    if not monitor:
        return _answer(raw=raw, latency=outcome["latency"], version=version)

    payload = {"width": width, "height": height, "raw_predictions": raw, "latency": outcome["latency"],
               "tags": tags or []}
    if data is not None:
        payload["data_id"] = str(data.id)
        ingested = prediction_ingest(deployment=deployment, payload=payload, idempotency_key=idempotency_key)
    else:
        payload.update(filename=filename or f"upload.{facts.extension}", content_type=facts.content_type)
        payload.update({key: value for key, value in (("source", source), ("metadata", metadata_object)) if value})
        ingested = prediction_ingest(deployment=deployment, payload=payload, idempotency_key=idempotency_key,
                                     content=content, checked=facts)
    shadow = None
    if deployment.shadow_id is not None and deployment.shadow.runtime in RUNTIME_KINDS:
        queue = serving_queue(deployment=deployment, version=deployment.shadow, shadow=True)
        task_send_on_commit(task=shadow_predict, args=[str(ingested.asset.id)], queue=queue)
        shadow = "queued"
    return _answer(raw=raw, latency=outcome["latency"], version=version, asset=ingested.asset,
                   warnings=ingested.warnings, shadow=shadow)


def deployment_predict_shadow(*, deployment: Deployment, predicted_asset_id, monitor: bool = True) -> dict:
    """The shadow's prediction on a frame already predicted, in the frame's coordinates; monitored, it is stored as
    the frame's shadow prediction (a frame has at most one: 409)."""
    version = _servable(deployment, "shadow")
    asset = deployment.predicted_assets.select_related("data", "deployment").filter(pk=predicted_asset_id).first()
    if asset is None:
        raise NotFound(f"predicted asset {predicted_asset_id} not found in this deployment",
                       [FieldError("predicted_asset_id", "not found")])
    if monitor and asset.predictions.filter(is_shadow=True).exists():
        raise Conflict("this predicted asset already has a shadow prediction; nothing was run or stored",
                       [FieldError("predicted_asset_id", "has a shadow prediction")])
    outcome = _run_on_worker(deployment=deployment, version=version, shadow=True, data_id=asset.data_id)
    shapes = shapes_scale(outcome["shapes"], from_size=(outcome["width"], outcome["height"]),
                          to_size=(asset.width, asset.height))
    shapes = shapes_kept(shapes, min_threshold=deployment.min_threshold,
                         retired=deployment.retired_classes)
    raw = _checked_raw(shapes, deployment=deployment, version=version, width=asset.width, height=asset.height)
    if monitor:
        shadow_prediction_add(asset=asset, payload={"shadow_raw_predictions": raw, "shadow_latency": outcome["latency"]})
    answer = _answer(raw=raw, latency=outcome["latency"], version=version, asset=asset if monitor else None)
    answer.update(predicted_asset_id=str(asset.id), oracle_prediction_id=str(asset.oracle_prediction_id), shadow=True)
    return answer
