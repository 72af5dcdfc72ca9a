"""Monitoring ingest: one monitored frame in, stored whole (data, predicted asset, predictions) or not at all."""
import base64
import binascii
import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, ValidationFailed
from dashboard.fields import is_finite_number
from dashboard.shapes import parse_raw_predictions
from dashboard.models import AssetTerm, Deployment, PredictedAsset, Prediction
from dashboard.services.datalake import data_get_or_create, image_store
from dashboard.services.images import CONTENT_TYPE_ALIASES, image_inspect
from monitoring.tasks import predicted_asset_process

MAX_TAGS = 50
MAX_TEXT = 255
MAX_METADATA_BYTES = 64 * 1024
MAX_SIDE = 100_000


@dataclass
class IngestResult:
    asset: PredictedAsset
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "id": str(self.asset.oracle_prediction_id),
            "oracle_prediction_id": str(self.asset.oracle_prediction_id),
            "predicted_asset_id": str(self.asset.id),
            "data_id": str(self.asset.data_id),
            "status": self.asset.status,
            "timestamp": self.asset.timestamp.timestamp(),
            "warnings": self.warnings,
        }


def prediction_ingest(*, deployment: Deployment, payload, idempotency_key: str | None = None) -> IngestResult:
    if idempotency_key:
        # Checked before any work, so that a retried request writes no file either.
        _refuse_repeat(deployment.predicted_assets.filter(idempotency_key=idempotency_key), "Idempotency-Key")
    if not isinstance(payload, dict):
        raise ValidationFailed.from_errors([FieldError("body", "must be a JSON object")])

    errors: list[FieldError] = []
    warnings: list[str] = []
    filename = _text(payload, "filename", errors, required=True)
    content_type = _content_type(payload, errors)
    width = _dimension(payload, "width", errors)
    height = _dimension(payload, "height", errors)
    latency = _latency(payload, "latency", errors, required=True)
    source = _text(payload, "source", errors, required=False) or "serving"
    tags = _tags(payload, errors)
    metadata = _metadata(payload, errors)
    timestamp = _timestamp(payload, errors)
    content = _image_bytes(payload, errors)
    has_shadow = payload.get("shadow_raw_predictions") is not None
    shadow_latency = _latency(payload, "shadow_latency", errors, required=has_shadow)
    if has_shadow and deployment.shadow_id is None:
        errors.append(FieldError("shadow_raw_predictions", "the deployment has no shadow model; set one first"))
    if payload.get("shadow_latency") is not None and not has_shadow:
        errors.append(FieldError("shadow_raw_predictions", "is required when shadow_latency is given"))

    class_ids = deployment.class_ids
    champion_shapes, shadow_shapes = [], None
    if width and height:
        parsed = parse_raw_predictions(
            payload.get("raw_predictions"), inference_type=deployment.type, class_ids=class_ids,
            width=width, height=height,
        )
        errors += parsed.errors
        warnings += parsed.warnings
        champion_shapes = parsed.shapes
        if has_shadow:
            parsed_shadow = parse_raw_predictions(
                payload["shadow_raw_predictions"], inference_type=deployment.type, class_ids=class_ids,
                width=width, height=height, prefix="shadow_raw_predictions",
            )
            errors += parsed_shadow.errors
            warnings += parsed_shadow.warnings
            shadow_shapes = parsed_shadow.shapes
    if errors:
        raise ValidationFailed.from_errors(errors)

    facts = image_inspect(content=content)
    if facts.content_type != content_type:
        warnings.append(f"content_type says {content_type} but the image is {facts.content_type}; stored as {facts.content_type}")
    if (facts.width, facts.height) != (width, height):
        warnings.append(
            f"the declared size {width}x{height} differs from the image's {facts.width}x{facts.height}; "
            "shapes stay in the declared coordinates"
        )
    stored = image_store(content=content, facts=facts)

    try:
        with transaction.atomic():
            data, created = data_get_or_create(
                organization_id=deployment.organization_id, stored=stored, facts=facts,
                filename=filename, source=source, tags=tags, metadata=metadata,
            )
            asset = PredictedAsset.objects.create(
                deployment=deployment,
                data=data,
                timestamp=timestamp or timezone.now(),
                filename=filename,
                source=source,
                latency=latency,
                width=width,
                height=height,
                idempotency_key=idempotency_key or None,
                **shape_summary(champion_shapes),
            )
            predictions = [Prediction(asset=asset, model_version_id=deployment.champion_id, shapes=champion_shapes, latency=latency)]
            if shadow_shapes is not None:
                predictions.append(
                    Prediction(asset=asset, is_shadow=True, model_version_id=deployment.shadow_id,
                               shapes=shadow_shapes, latency=shadow_latency)
                )
            Prediction.objects.bulk_create(predictions)
            AssetTerm.objects.bulk_create(
                AssetTerm(deployment_id=deployment.id, asset=asset, term=term)
                for term in asset_terms(shapes=champion_shapes, tags=tags)
            )
            # One task per frame (thumbnail of new data, outlier score): one message, one read of the image.
            predicted_asset_process.delay_on_commit(str(asset.id), thumbnail=created)
    except IntegrityError:
        # The unique constraints on (deployment, Idempotency-Key) and (deployment, data, timestamp) catch
        # repeats, racing copies included, without a look-up on the path of every new frame.
        if idempotency_key:
            _refuse_repeat(deployment.predicted_assets.filter(idempotency_key=idempotency_key), "Idempotency-Key")
        if timestamp is not None:
            _refuse_repeat(
                deployment.predicted_assets.filter(data__organization_id=deployment.organization_id,
                                                   data__sha256=stored.sha256, timestamp=timestamp),
                "image and timestamp",
            )
        raise
    return IngestResult(asset=asset, warnings=warnings)


def shadow_prediction_add(*, asset: PredictedAsset, payload) -> Prediction:
    """Attach a shadow prediction to an already monitored frame; a frame has at most one."""
    if not isinstance(payload, dict):
        raise ValidationFailed.from_errors([FieldError("body", "must be a JSON object")])
    deployment = asset.deployment
    errors: list[FieldError] = []
    latency = _latency(payload, "shadow_latency", errors, required=True)
    if deployment.shadow_id is None:
        errors.append(FieldError("shadow_raw_predictions", "the deployment has no shadow model; set one first"))
    parsed = parse_raw_predictions(
        payload.get("shadow_raw_predictions"), inference_type=deployment.type,
        class_ids=deployment.class_ids,
        width=asset.width, height=asset.height, prefix="shadow_raw_predictions",
    )
    errors += parsed.errors
    if errors:
        raise ValidationFailed.from_errors(errors)
    if asset.predictions.filter(is_shadow=True).exists():
        raise Conflict("this prediction already has a shadow prediction; nothing was stored")
    try:
        with transaction.atomic():
            return Prediction.objects.create(
                asset=asset, is_shadow=True, model_version_id=deployment.shadow_id,
                shapes=parsed.shapes, latency=latency,
            )
    except IntegrityError:
        raise Conflict("this prediction already has a shadow prediction; nothing was stored") from None


def asset_terms(*, shapes: list[dict], tags: list[str]) -> list[str]:
    """The facts the query language searches by: the champion's classes and the frame's tags."""
    labels = sorted({shape["label_id"] for shape in shapes})
    return [f"label:{label_id}" for label_id in labels] + [f"tag:{tag}" for tag in dict.fromkeys(tag.lower() for tag in tags)]


def shape_summary(shapes: list[dict]) -> dict:
    scores = [shape["score"] for shape in shapes]
    return {
        "shape_count": len(shapes),
        "min_score": min(scores) if scores else None,
        "max_score": max(scores) if scores else None,
    }


def _refuse_repeat(queryset, reason: str) -> None:
    """409, naming the stored prediction, so that a client whose first answer was lost can carry on with it."""
    existing = queryset.first()
    if existing is not None:
        raise Conflict(
            f"this prediction was already processed (same {reason}); nothing was stored",
            **IngestResult(asset=existing).as_dict(),
        )


def _text(payload: dict, name: str, errors: list[FieldError], *, required: bool) -> str:
    value = payload.get(name)
    if value is None:
        if required:
            errors.append(FieldError(name, "is required"))
        return ""
    if isinstance(value, str) and name == "filename":
        value = os.path.basename(value.replace("\\", "/"))
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(name, "must be a non-empty string" + (" naming a file" if name == "filename" else "")))
        return ""
    if len(value) > MAX_TEXT:
        errors.append(FieldError(name, f"must be at most {MAX_TEXT} characters"))
        return ""
    return value


def _content_type(payload: dict, errors: list[FieldError]) -> str:
    value = payload.get("content_type")
    if value is None:
        errors.append(FieldError("content_type", "is required (image/png or image/jpeg)"))
        return ""
    normalized = CONTENT_TYPE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if normalized is None:
        errors.append(FieldError("content_type", f"must be image/png or image/jpeg, not {value!r}"))
        return ""
    return normalized


def _dimension(payload: dict, name: str, errors: list[FieldError]) -> int:
    value = payload.get(name)
    if value is None:
        errors.append(FieldError(name, "is required"))
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIDE:
        errors.append(FieldError(name, f"must be an integer between 1 and {MAX_SIDE}, not {value!r}"))
        return 0
    return value


def _latency(payload: dict, name: str, errors: list[FieldError], *, required: bool) -> float:
    value = payload.get(name)
    if value is None:
        if required:
            errors.append(FieldError(name, "is required (seconds)"))
        return 0.0
    if not is_finite_number(value) or value < 0:
        errors.append(FieldError(name, f"must be a finite number of seconds >= 0, not {value!r}"))
        return 0.0
    return float(value)


def _tags(payload: dict, errors: list[FieldError]) -> list[str]:
    value = payload.get("tags")
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        errors.append(FieldError("tags", f"must be a list of at most {MAX_TAGS} strings"))
        return []
    for index, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
            errors.append(FieldError(f"tags[{index}]", "must be a non-empty string of at most 100 characters"))
    return list(dict.fromkeys(tag.strip() for tag in value if isinstance(tag, str)))


def _metadata(payload: dict, errors: list[FieldError]) -> dict:
    value = payload.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError("metadata", "must be an object"))
        return {}
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError:
        errors.append(FieldError("metadata", "must not contain NaN or Infinity"))
        return {}
    if len(encoded) > MAX_METADATA_BYTES:
        errors.append(FieldError("metadata", f"must be at most {MAX_METADATA_BYTES:,} bytes of JSON"))
        return {}
    return value


def _timestamp(payload: dict, errors: list[FieldError]) -> dt.datetime | None:
    value = payload.get("timestamp")
    if value is None:
        return None
    # Seconds since the epoch, up to the year 3000.
    if not is_finite_number(value) or not 0 <= value < 32503680000:
        errors.append(FieldError("timestamp", f"must be epoch seconds (a finite number >= 0), not {value!r}"))
        return None
    return dt.datetime.fromtimestamp(math.floor(value * 1e6) / 1e6, tz=dt.timezone.utc)


def _image_bytes(payload: dict, errors: list[FieldError]) -> bytes:
    value = payload.get("image")
    if value is None:
        errors.append(FieldError("image", "is required (base64 of the image bytes)"))
        return b""
    if not isinstance(value, str):
        errors.append(FieldError("image", "must be a base64 string"))
        return b""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        errors.append(FieldError("image", "is not valid base64"))
        return b""
