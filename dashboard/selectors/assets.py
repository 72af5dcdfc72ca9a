"""Reads of predicted assets: pages in a stable order with keyset cursors, and look-ups by any identifier."""
import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.models import Deployment, PredictedAsset

ORDERS = {"-timestamp": ("-timestamp", "-id"), "timestamp": ("timestamp", "id")}


@dataclass
class AssetPage:
    items: list[PredictedAsset]
    next_cursor: str | None


def predicted_assets_base(*, deployment: Deployment) -> QuerySet[PredictedAsset]:
    return PredictedAsset.objects.filter(deployment=deployment).select_related("data", "deployment")


def predicted_assets_page(
    *, deployment: Deployment, order: str = "-timestamp", cursor: str | None = None, offset: int = 0, limit: int = 50
) -> AssetPage:
    if order not in ORDERS:
        raise ValidationFailed.from_errors([FieldError("order_by", f"must be one of {', '.join(ORDERS)}")])
    fields = ORDERS[order]
    queryset = predicted_assets_base(deployment=deployment).prefetch_related("predictions").order_by(*fields)
    if cursor:
        timestamp, asset_id = _cursor_decode(cursor)
        after = Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, id__lt=asset_id)
        if order == "timestamp":
            after = Q(timestamp__gt=timestamp) | Q(timestamp=timestamp, id__gt=asset_id)
        queryset = queryset.filter(after)
    elif offset:
        queryset = queryset[offset:]
    items = list(queryset[: limit + 1])
    next_cursor = _cursor_encode(items[limit - 1]) if len(items) > limit else None
    return AssetPage(items=items[:limit], next_cursor=next_cursor)


def predicted_asset_find(*, deployment: Deployment, **identifiers) -> PredictedAsset:
    given = {name: value for name, value in identifiers.items() if value}
    if not given:
        raise ValidationFailed.from_errors(
            [FieldError("query", "give one of id, oracle_prediction_id, filename, object_name, data_id")]
        )
    lookups = {"id": "id", "oracle_prediction_id": "oracle_prediction_id", "data_id": "data_id",
               "filename": "data__filename", "object_name": "data__image"}
    filters = {}
    for name, value in given.items():
        if name in ("id", "oracle_prediction_id", "data_id"):
            try:
                value = uuid.UUID(str(value))
            except ValueError:
                raise ValidationFailed.from_errors([FieldError(name, "must be a UUID")]) from None
        filters[lookups[name]] = value
    matches = list(predicted_assets_base(deployment=deployment).prefetch_related("predictions").filter(**filters)[:2])
    if not matches:
        raise NotFound("no predicted asset matches " + ", ".join(f"{k}={v}" for k, v in given.items()))
    if len(matches) > 1:
        raise ValidationFailed.from_errors(
            [FieldError(next(iter(given)), "matches several predicted assets; use id or oracle_prediction_id")]
        )
    return matches[0]


def _cursor_encode(asset: PredictedAsset) -> str:
    raw = json.dumps([asset.timestamp.isoformat(), str(asset.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        timestamp, asset_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(timestamp), uuid.UUID(asset_id)
    except (ValueError, TypeError):
        raise ValidationFailed.from_errors([FieldError("cursor", "is not a cursor this API gave")]) from None
