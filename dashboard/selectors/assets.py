"""Reads of predicted assets: the queue's pages in any of its sorts, by keyset, and look-ups by any identifier.

Every sort is (column, then id) in one direction, with the rows that have no value (say, not yet scored)
after all the others. A page is read as two index range scans at most: the rows with a value from the
cursor on, then, once those run out, the rows without one. OFFSET is never used by the queue, so page 500
costs what page 1 costs. The first page of the default sort is one statement: both databases have an index in
that order, NULLs last (on PostgreSQL, migration 0007's); a filter only a GIN index answers (a filename word)
is then read once, not once for each part.
"""
import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet

from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.models import Deployment, PredictedAsset
from dashboard.selectors.predictions import predictions_attach


@dataclass(frozen=True)
class Sort:
    column: str
    descending: bool
    label: str
    # An index of both databases lists the rows in this sort's order with NULLs last, so that a first page needs
    # no second statement for the rows without a value.
    one_statement: bool = False


SORTS = {
    "-outlier_score": Sort("outlier_score", True, "Most unusual first", one_statement=True),
    "-timestamp": Sort("timestamp", True, "Newest first"),
    "timestamp": Sort("timestamp", False, "Oldest first"),
    "max_score": Sort("max_score", False, "Least confident first"),
    "-max_score": Sort("max_score", True, "Most confident first"),
    "-latency": Sort("latency", True, "Slowest first"),
    "-shape_count": Sort("shape_count", True, "Most shapes first"),
    "shape_count": Sort("shape_count", False, "Fewest shapes first"),
}
DEFAULT_SORT = "-outlier_score"
NULLABLE = {"outlier_score", "max_score"}
COUNT_CAP = 1_000  # counts of the queue's matches stop here: past it the page says "more than 1,000"


@dataclass
class AssetPage:
    items: list[PredictedAsset]
    next_cursor: str | None


def predicted_assets_base(*, deployment: Deployment) -> QuerySet[PredictedAsset]:
    return PredictedAsset.objects.filter(deployment=deployment).select_related("data", "deployment")


def predicted_assets_matching(*, deployment: Deployment, query: str = "", user=None) -> QuerySet[PredictedAsset]:
    """The deployment's assets matching `query`; `user` is who reviewed_by:me means."""
    queryset = predicted_assets_base(deployment=deployment)
    if query.strip():
        from dashboard.query import query_filter

        queryset = queryset.filter(query_filter(deployment=deployment, text=query, user=user))
    return queryset


def sort_get(order: str) -> Sort:
    sort = SORTS.get(order or DEFAULT_SORT)
    if sort is None:
        raise ValidationFailed.from_errors([FieldError("order_by", f"must be one of {', '.join(SORTS)}")])
    return sort


def predicted_assets_page(
    *,
    deployment: Deployment,
    query: str = "",
    order: str = DEFAULT_SORT,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
    with_predictions: bool = True,
    user=None,
) -> AssetPage:
    """One page of the deployment's assets matching `query`, in `order`, after `cursor` (or `offset`, API only)."""
    sort = sort_get(order)
    # The page's assets share the caller's deployment object rather than each reading a copy of its row.
    queryset = predicted_assets_matching(deployment=deployment, query=query, user=user).select_related(None)
    queryset = queryset.select_related("data")
    value, after_id, in_tail = _cursor_decode(cursor, sort) if cursor else (None, None, False)

    order_by = _order(sort)
    items: list[PredictedAsset] = []
    one_statement = sort.one_statement and cursor is None
    if one_statement:
        items = _slice(queryset.order_by(*order_by), offset, limit + 1)
    elif not in_tail:
        valued = queryset.filter(**{f"{sort.column}__isnull": False}).order_by(*order_by)
        if after_id is not None:
            valued = valued.filter(_after_value(sort, value, after_id))
        items = _slice(valued, offset, limit + 1)
        offset = max(0, offset - (valued.count() if offset else 0))
    if len(items) <= limit and sort.column in NULLABLE and not one_statement:
        # Ordered by (column, id) though the column is NULL throughout: the same order, read off the sort's index.
        tail = queryset.filter(**{f"{sort.column}__isnull": True}).order_by(*order_by)
        if in_tail:
            tail = tail.filter(id__lt=after_id) if sort.descending else tail.filter(id__gt=after_id)
        items += _slice(tail, offset, limit + 1 - len(items))
    next_cursor = cursor_for(items[limit - 1], sort) if len(items) > limit else None
    items = items[:limit]
    for item in items:
        item.deployment = deployment
    return AssetPage(items=predictions_attach(items) if with_predictions else items, next_cursor=next_cursor)


def count_upto(queryset: QuerySet, cap: int | None = None) -> int:
    """How many rows `queryset` has, counting no further than cap + 1 (COUNT_CAP + 1 by default): more than `cap`
    reads as cap + 1. Exact counts of a million matches cost more than the page they go with (70 to 190 ms on
    PostgreSQL)."""
    cap = COUNT_CAP if cap is None else cap
    return queryset.order_by()[: cap + 1].count()


def _order(sort: Sort) -> tuple:
    """ORDER BY of the sort's statements. A one-statement sort names its NULLs last in each of them (where the
    column is not NULL it changes nothing), so that every one reads the same index order."""
    direction = "-" if sort.descending else ""
    if sort.one_statement:
        column = F(sort.column).desc(nulls_last=True) if sort.descending else F(sort.column).asc(nulls_last=True)
        return column, f"{direction}id"
    return f"{direction}{sort.column}", f"{direction}id"


def _slice(queryset: QuerySet, offset: int, count: int) -> list:
    return list(queryset[offset : offset + count]) if count > 0 else []


def _after_value(sort: Sort, value, after_id) -> Q:
    # The redundant bound (<= or >=) lets the database start its index scan at the cursor.
    if sort.descending:
        return Q(**{f"{sort.column}__lte": value}) & (Q(**{f"{sort.column}__lt": value}) | Q(id__lt=after_id))
    return Q(**{f"{sort.column}__gte": value}) & (Q(**{f"{sort.column}__gt": value}) | Q(id__gt=after_id))


def cursor_for(asset: PredictedAsset, sort: Sort) -> str:
    value = getattr(asset, sort.column)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps([sort.column, value, str(asset.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str, sort: Sort):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        column, value, asset_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if column != sort.column:
            raise ValueError("cursor of another sort")
        if column == "timestamp":
            value = dt.datetime.fromisoformat(value)
        elif value is not None and not isinstance(value, (int, float)):
            raise ValueError("not a number")
        return value, uuid.UUID(asset_id), value is None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        raise ValidationFailed.from_errors(
            [FieldError("cursor", "is not a cursor this API gave for this order")]
        ) from None


def predicted_asset_find(*, deployment: Deployment, **identifiers) -> PredictedAsset:
    given = {name: value for name, value in identifiers.items() if value}
    if not given:
        raise ValidationFailed.from_errors(
            [FieldError("query", "give one of id, oracle_prediction_id, filename, object_name, data_id")]
        )
    lookups = {"id": "id", "oracle_prediction_id": "oracle_prediction_id", "data_id": "data_id",
               "filename": "filename", "object_name": "data__image"}
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


def predicted_assets_waiting_count(*, deployment: Deployment) -> int:
    """Frames of the deployment whose per-frame work (thumbnail, outlier score) is not done yet: a backlog after a
    broker or worker outage, which the sweep is catching up (a partial index keeps this cheap)."""
    return deployment.predicted_assets.filter(processed_at__isnull=True).count()
