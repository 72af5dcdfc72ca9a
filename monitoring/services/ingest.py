"""Monitoring ingest: one monitored frame in, stored whole (data, predicted asset, predictions) or not at all."""
import base64
import binascii
import datetime as dt
import json
import math
import os
import uuid
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.fields import Fields, is_finite_number
from dashboard.shapes import parse_raw_predictions
from dashboard.models import AssetStatus, AssetTerm, Data, Deployment, PredictedAsset, Prediction
from dashboard.services.datalake import data_get_or_create, data_tags_add, image_store
from dashboard.services.images import CONTENT_TYPE_ALIASES, ImageFacts, image_inspect
from monitoring.models import AssetFeatures
from monitoring.services.frames import frames_drain_request
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon

MAX_TAGS = 50
MAX_TEXT = 255
MAX_SOURCE = 100  # Data.source's length
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


def prediction_ingest(*, deployment: Deployment, payload, idempotency_key: str | None = None,
                      content: bytes | None = None, checked: ImageFacts | None = None) -> IngestResult:
    """`content`: the image's bytes when the caller holds them already (the serving API), in place of the payload's
    base64 `image`; `checked`: their facts, when the caller has checked them already (serving's worker decoded
    them). A payload naming `data_id` instead of an image is a frame of the organization's datalake: it replaces the
    deployment's prediction of that data (see _asset_replace) rather than adding a frame."""
    if idempotency_key:
        # Checked before any work, so that a retried request writes no file either.
        _refuse_repeat(deployment.predicted_assets.filter(idempotency_key=idempotency_key), "Idempotency-Key")
    if not isinstance(payload, dict):
        raise ValidationFailed.from_errors([FieldError("body", "must be a JSON object")])

    fields = Fields()
    errors = fields.errors
    warnings: list[str] = []
    by_data = payload.get("data_id") is not None
    known = _known_data(deployment, payload, errors) if by_data else None
    filename = fields.text(_basename(payload.get("filename")), "filename", max_length=MAX_TEXT,
                           required=not by_data) or (known.filename if known else "")
    content_type = known.content_type if known else "" if by_data else _content_type(payload, errors)
    width = fields.integer(payload.get("width"), "width", low=1, high=MAX_SIDE, required=True, default=0)
    height = fields.integer(payload.get("height"), "height", low=1, high=MAX_SIDE, required=True, default=0)
    latency = fields.number(payload.get("latency"), "latency", low=0, required=True, default=0.0, unit="seconds")
    source = fields.text(payload.get("source"), "source", max_length=MAX_SOURCE) or "serving"
    tags = fields.tags(payload.get("tags"), "tags", max_count=MAX_TAGS) or []
    metadata = _metadata(payload, errors)
    timestamp = _timestamp(payload, errors)
    if not by_data and content is None:
        content = _image_bytes(payload, errors)
    has_shadow = payload.get("shadow_raw_predictions") is not None
    shadow_latency = fields.number(payload.get("shadow_latency"), "shadow_latency", low=0, required=has_shadow,
                                   default=0.0, unit="seconds")
    if has_shadow and deployment.shadow_id is None:
        errors.append(FieldError("shadow_raw_predictions", "the deployment has no shadow model; set one first"))
    if payload.get("shadow_latency") is not None and not has_shadow:
        errors.append(FieldError("shadow_raw_predictions", "is required when shadow_latency is given"))

    class_ids = deployment.class_ids
    champion_shapes, shadow_shapes = [], None
    if width and height:
        parsed = parse_raw_predictions(
            payload.get("raw_predictions"), inference_type=deployment.type, class_ids=class_ids,
            width=width, height=height, retired=deployment.retired_classes,
        )
        errors += parsed.errors
        warnings += parsed.warnings
        champion_shapes = parsed.shapes
        if has_shadow:
            parsed_shadow = parse_raw_predictions(
                payload["shadow_raw_predictions"], inference_type=deployment.type, class_ids=class_ids,
                width=width, height=height, prefix="shadow_raw_predictions", retired=deployment.retired_classes,
            )
            errors += parsed_shadow.errors
            warnings += parsed_shadow.warnings
            shadow_shapes = parsed_shadow.shapes
    if errors:
        raise ValidationFailed.from_errors(errors)

    if known is None:
        facts = checked or image_inspect(content=content)
    else:
        facts = ImageFacts(known.content_type, known.width, known.height, "png" if known.content_type == "image/png" else "jpg")
    if facts.content_type != content_type:
        warnings.append(f"content_type says {content_type} but the image is {facts.content_type}; stored as {facts.content_type}")
    if (facts.width, facts.height) != (width, height):
        warnings.append(
            f"the declared size {width}x{height} differs from the image's {facts.width}x{facts.height}; "
            "shapes stay in the declared coordinates"
        )
    stored = image_store(content=content, facts=facts) if known is None else None

    try:
        with transaction.atomic():
            if known is None:
                data, _ = data_get_or_create(
                    organization_id=deployment.organization_id, stored=stored, facts=facts,
                    filename=filename, source=source, tags=tags, metadata=metadata,
                )
            else:
                data = data_tags_add(data=known, tags=tags)
            frame = dict(
                timestamp=timestamp or timezone.now(), filename=filename, source=source, latency=latency,
                width=width, height=height, idempotency_key=idempotency_key or None, **shape_summary(champion_shapes),
            )
            replaced = _asset_replace(deployment, data, frame, warnings) if known is not None else None
            asset = replaced or PredictedAsset.objects.create(deployment=deployment, data=data, **frame)
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
            # Its work (thumbnail of new data, outlier score) is a drain's of the deployment's waiting frames, asked
            # for once however many frames arrive. The frame is committed whatever the broker does; its
            # processed_at, still empty, lets the sweep find it.
            frames_drain_request(deployment_id=deployment.pk)
    except IntegrityError:
        # The unique constraints on (deployment, Idempotency-Key) and (deployment, data, timestamp) catch
        # repeats, racing copies included, without a look-up on the path of every new frame.
        if idempotency_key:
            _refuse_repeat(deployment.predicted_assets.filter(idempotency_key=idempotency_key), "Idempotency-Key")
        if timestamp is not None:
            _refuse_repeat(
                deployment.predicted_assets.filter(data__organization_id=deployment.organization_id,
                                                   data__sha256=known.sha256 if known else stored.sha256,
                                                   timestamp=timestamp),
                "image and timestamp",
            )
        raise
    return IngestResult(asset=asset, warnings=warnings)


def _known_data(deployment: Deployment, payload: dict, errors: list[FieldError]) -> Data | None:
    """The Data a payload's `data_id` names, in the deployment's organization; it then carries no image of its own."""
    fields = Fields()
    data_id = fields.uuid(payload.get("data_id"), "data_id")
    errors += fields.errors
    for name in ("image", "cloud_image"):
        if payload.get(name) is not None:
            errors.append(FieldError(name, "give data_id or an image, not both"))
    if data_id is None:
        return None
    data = Data.objects.filter(pk=data_id, organization_id=deployment.organization_id).first()
    if data is None:
        raise NotFound(f"data {data_id} is not in the organization's datalake", [FieldError("data_id", "not found")])
    return data


def _asset_replace(deployment: Deployment, data: Data, frame: dict, warnings: list[str]) -> PredictedAsset | None:
    """A second prediction of the same data in a deployment replaces the first: the newest predicted asset of the
    data (one not yet SUBMITTED to a dataset, whose review is final) keeps its id, takes the new frame's fields,
    predictions and search terms under a new oracle_prediction_id, and goes back to TO_REVIEW with its review
    cleared (the review history keeps the old one) and its version bumped. None when there is none to replace."""
    asset = (
        deployment.predicted_assets.select_for_update().filter(data=data)
        .exclude(status=AssetStatus.SUBMITTED).order_by("-timestamp", "-id").first()
    )
    if asset is None:
        return None
    if frame["timestamp"] == asset.timestamp:
        _refuse_repeat(deployment.predicted_assets.filter(pk=asset.pk), "image and timestamp")
    Prediction.objects.filter(asset=asset).delete()
    AssetTerm.objects.filter(asset=asset).delete()
    AssetFeatures.objects.filter(asset=asset).delete()  # they hold the replaced prediction's shapes
    warnings.append(f"data {data.id} had a prediction in this deployment: predicted asset {asset.id} now holds this "
                    f"one (it was {asset.status}; its review is cleared)")
    for name, value in frame.items():
        setattr(asset, name, value)
    asset.oracle_prediction_id = uuid.uuid4()
    asset.status, asset.outlier_score = AssetStatus.TO_REVIEW, None
    asset.processed_at, asset.process_sent_at, asset.process_sends = None, None, 0  # the new prediction's work is still to do
    asset.reviewed_shapes = asset.reviewed_by = asset.reviewed_at = None
    asset.version += 1
    asset.save()
    return asset


def shadow_prediction_add(*, asset: PredictedAsset, payload) -> Prediction:
    """Attach a shadow prediction to an already monitored frame; a frame has at most one."""
    if not isinstance(payload, dict):
        raise ValidationFailed.from_errors([FieldError("body", "must be a JSON object")])
    deployment = asset.deployment
    fields = Fields()
    errors = fields.errors
    latency = fields.number(payload.get("shadow_latency"), "shadow_latency", low=0, required=True, default=0.0,
                            unit="seconds")
    if deployment.shadow_id is None:
        errors.append(FieldError("shadow_raw_predictions", "the deployment has no shadow model; set one first"))
    parsed = parse_raw_predictions(
        payload.get("shadow_raw_predictions"), inference_type=deployment.type,
        class_ids=deployment.class_ids, retired=deployment.retired_classes,
        width=asset.width, height=asset.height, prefix="shadow_raw_predictions",
    )
    errors += parsed.errors
    if errors:
        raise ValidationFailed.from_errors(errors)
    if asset.predictions.filter(is_shadow=True).exists():
        raise Conflict("this prediction already has a shadow prediction; nothing was stored")
    try:
        with transaction.atomic():
            prediction = Prediction.objects.create(
                asset=asset, is_shadow=True, model_version_id=deployment.shadow_id,
                shapes=parsed.shapes, latency=latency,
            )
            stats_mark_stale(deployment_id=deployment.pk, asset_ids=[asset.pk])
            stats_refresh_soon(deployment_id=deployment.pk)
            return prediction
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


def _basename(filename):
    # A path sent as the filename keeps its last part only: the datalake names files, not folders.
    return os.path.basename(filename.replace("\\", "/")) if isinstance(filename, str) else filename


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
