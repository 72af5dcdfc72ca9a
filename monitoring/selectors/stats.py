"""Reads of the stats rollups: the figures of any window, or a series of buckets, summed from stored rows only;
and the exact number of predictions in a window (rollups for its whole buckets, raw rows for its ragged edges)."""
import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from dashboard.models import AssetStatus, AssetTerm, Deployment, PredictedAsset, Prediction
from monitoring.histograms import BINS, histogram_mean, histogram_quantile
from monitoring.models import ModelRole, RollupBucket, StatsRollup

COUNTS = ("count", "latency_sum", "shape_count", "outlier_count", "outlier_sum", "reviewed", "submitted")
BUCKET_SECONDS = {RollupBucket.MINUTE: 60, RollupBucket.HOUR: 3600, RollupBucket.DAY: 86400}
# About this many points at most on a chart: a window picks the finest bucket that stays under it.
MAX_POINTS = 400


@dataclass
class StatsFigures:
    """Sums of rollup rows: counts, sums, fixed-bin histograms and per-class counts."""

    count: int = 0
    latency_sum: float = 0.0
    shape_count: int = 0
    outlier_count: int = 0
    outlier_sum: float = 0.0
    reviewed: int = 0
    submitted: int = 0
    histograms: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    reviewed_classes: dict = field(default_factory=dict)

    def add(self, row: dict) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + row[name])
        for feature, counts in (row.get("histograms") or {}).items():
            mine = self.histograms.get(feature)
            self.histograms[feature] = list(counts) if mine is None else [a + b for a, b in zip(mine, counts)]
        for name in ("classes", "reviewed_classes"):
            mine = getattr(self, name)
            for class_id, n in (row.get(name) or {}).items():
                mine[class_id] = mine.get(class_id, 0) + n

    def histogram(self, feature: str) -> list[int]:
        return self.histograms.get(feature) or [0] * BINS[feature].bins

    def quantile(self, feature: str, q: float) -> float | None:
        return histogram_quantile(feature, self.histogram(feature), q)

    @property
    def latency_mean(self) -> float | None:
        return self.latency_sum / self.count if self.count else None

    @property
    def shapes_mean(self) -> float | None:
        return self.shape_count / self.count if self.count else None

    @property
    def outlier_mean(self) -> float | None:
        return self.outlier_sum / self.outlier_count if self.outlier_count else None

    def mean(self, feature: str) -> float | None:
        return histogram_mean(feature, self.histogram(feature))


def bucket_for(start: dt.datetime, end: dt.datetime) -> str:
    """The finest bucket that keeps a window under MAX_POINTS points and is still kept for all of it."""
    seconds = (end - start).total_seconds()
    oldest_minutes = timezone.now() - dt.timedelta(days=settings.LOUPE_STATS_MINUTE_DAYS)
    if seconds / 60 <= MAX_POINTS and start >= oldest_minutes:
        return RollupBucket.MINUTE
    oldest_hours = timezone.now() - dt.timedelta(days=settings.LOUPE_STATS_HOUR_DAYS)
    if seconds / 3600 <= MAX_POINTS and start >= oldest_hours:
        return RollupBucket.HOUR
    return RollupBucket.DAY


# Coarsest first: a window reads day rows for its whole days, hour rows for the whole hours left, and so on.
LEVELS = (RollupBucket.DAY, RollupBucket.HOUR, RollupBucket.MINUTE)


def bucket_floor(moment: dt.datetime, bucket: str) -> dt.datetime:
    """The start of the bucket holding `moment` (buckets are UTC, as the rollups count them)."""
    moment = moment.astimezone(dt.timezone.utc)
    if bucket == RollupBucket.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if bucket == RollupBucket.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_ceil(moment: dt.datetime, bucket: str) -> dt.datetime:
    floor = bucket_floor(moment, bucket)
    return floor if floor == moment else floor + dt.timedelta(seconds=BUCKET_SECONDS[bucket])


def _kept_from(bucket: str) -> dt.datetime | None:
    """Rows of this bucket starting before this moment may have been pruned (None: day rows are kept for ever)."""
    days = {RollupBucket.MINUTE: settings.LOUPE_STATS_MINUTE_DAYS, RollupBucket.HOUR: settings.LOUPE_STATS_HOUR_DAYS}
    return timezone.now() - dt.timedelta(days=days[bucket]) if bucket in days else None


def window_cover(start: dt.datetime, end: dt.datetime, *, finest: str = RollupBucket.MINUTE
                 ) -> tuple[list[tuple[str, dt.datetime, dt.datetime]], list[tuple[dt.datetime, dt.datetime]]]:
    """[start, end) as whole buckets, coarsest first where their rows are kept: ([(bucket, from, to)], [(from, to)]
    left over, each shorter than a `finest` bucket unless those rows were pruned)."""
    levels = LEVELS[:LEVELS.index(finest) + 1]

    def cover(low, high, depth):
        if low >= high:
            return [], []
        if depth == len(levels):
            return [], [(low, high)]
        bucket = levels[depth]
        inner_low, inner_high = bucket_ceil(low, bucket), bucket_floor(high, bucket)
        kept_from = _kept_from(bucket)
        if inner_low >= inner_high or (kept_from is not None and inner_low < kept_from):
            return cover(low, high, depth + 1)
        before, after = cover(low, inner_low, depth + 1), cover(inner_high, high, depth + 1)
        return before[0] + [(bucket, inner_low, inner_high)] + after[0], before[1] + after[1]

    return cover(start, end, 0)


def _pieces(pieces) -> Q:
    where = Q(pk__in=[])
    for bucket, low, high in pieces:
        where |= Q(bucket=bucket, start__gte=low, start__lt=high)
    return where


def _values(rows, features, classes: bool):
    if features is None:
        return rows.values("start", *COUNTS, "histograms", "classes", "reviewed_classes")
    named = {f"histogram_{feature}": KeyTransform(feature, "histograms") for feature in features}
    return rows.values("start", *COUNTS, *(("classes", "reviewed_classes") if classes else ()), **named)


def _row(row: dict, features) -> dict:
    if features is not None:
        row["histograms"] = {feature: row.pop(f"histogram_{feature}") for feature in features
                             if row.get(f"histogram_{feature}") is not None}
    return row


def _rows(*, deployment: Deployment, start, end, role, tag, model_version_id, bucket, features=None, classes=True):
    # Every bucket the window touches: "the last day" at 10:20 counts from yesterday's 10:00 bucket, the one
    # holding 10:20, rather than dropping it for having started before the window did.
    rows = StatsRollup.objects.filter(deployment=deployment, bucket=bucket, tag=tag, role=role,
                                      start__gt=start - dt.timedelta(seconds=BUCKET_SECONDS[bucket]), start__lt=end)
    if model_version_id:
        rows = rows.filter(model_version_id=str(model_version_id))
    return (_row(row, features) for row in _values(rows.order_by("start"), features, classes))


def stats_window(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, role: str = ModelRole.CHAMPION,
                 tag: str = "", model_version_id=None, bucket: str | None = None, features: tuple | None = None,
                 classes: bool = True) -> StatsFigures:
    """The figures of the predictions made in [start, end), counted by the buckets overlapping it.

    The buckets are `bucket`'s (by default the one bucket_for picks), but whole days inside are read from day rows
    and whole hours from hour rows: the same predictions, in a tenth of the rows. `features` limits the
    histograms read (None: all), `classes=False` skips the class counts.
    """
    bucket = bucket or bucket_for(start, end)
    pieces, pruned = window_cover(bucket_floor(start, bucket), bucket_ceil(end, bucket), finest=bucket)
    # Whole buckets of the chosen size, even where they may be pruned: read what is left of them, as ever.
    pieces += [(bucket, low, high) for low, high in pruned]
    rows = StatsRollup.objects.filter(_pieces(pieces), deployment=deployment, tag=tag, role=role)
    if model_version_id:
        rows = rows.filter(model_version_id=str(model_version_id))
    figures = StatsFigures()
    for row in _values(rows.order_by(), features, classes):
        figures.add(_row(row, features))
    return figures


def stats_series(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, role: str = ModelRole.CHAMPION,
                 tag: str = "", model_version_id=None, bucket: str | None = None, features: tuple | None = None,
                 classes: bool = True) -> list[tuple[dt.datetime, StatsFigures]]:
    """One StatsFigures per bucket with predictions in [start, end), in time order (empty buckets left out)."""
    series: dict = {}
    for row in _rows(deployment=deployment, start=start, end=end, role=role, tag=tag,
                     model_version_id=model_version_id, bucket=bucket or bucket_for(start, end), features=features,
                     classes=classes):
        series.setdefault(row["start"], StatsFigures()).add(row)
    return list(series.items())


def predicted_assets_in(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, tags=(),
                        model_version_id=None, includes=None, excludes=None,
                        reviewed_only: bool = False) -> QuerySet[PredictedAsset]:
    """The raw predicted assets of [start, end) with every tag, a prediction (either role) of the model version,
    within `includes` and outside `excludes`. Filters are EXISTS, never joins: no DISTINCT, so a page of them
    newest first is a short walk down the (deployment, timestamp) index."""
    assets = PredictedAsset.objects.filter(deployment=deployment, timestamp__gte=start, timestamp__lt=end)
    for tag in tags:
        assets = assets.filter(Exists(AssetTerm.objects.filter(asset=OuterRef("pk"), term=f"tag:{tag.lower()}")))
    if model_version_id:
        assets = assets.filter(Exists(Prediction.objects.filter(asset=OuterRef("pk"),
                                                                model_version_id=model_version_id)))
    if includes:
        assets = assets.filter(pk__in=includes)
    if excludes:
        assets = assets.exclude(pk__in=excludes)
    if reviewed_only:
        assets = assets.filter(status__in=[AssetStatus.REVIEWED, AssetStatus.SUBMITTED])
    return assets


def predicted_assets_count(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, tag: str = "",
                           model_version_id=None, reviewed_only: bool = False) -> int:
    """How many predicted assets predicted_assets_in(...) holds (one tag at most, no id lists), without counting
    them: the whole buckets of the window from the rollups, the ragged edges (under a minute each, or an hour
    where minute rows are pruned) from raw rows.

    Every asset has a champion prediction, counted once in its champion rows; with a model version, an asset counts
    in the rows of the role that used it (a version is never champion and shadow of one asset). The rollups are the
    worker's: a prediction is in them seconds after it is stored.
    """
    pieces, edges = window_cover(start, end)
    rows = StatsRollup.objects.filter(_pieces(pieces), deployment=deployment, tag=tag.lower())
    if model_version_id:
        rows = rows.filter(model_version_id=str(model_version_id))
    else:
        rows = rows.filter(role=ModelRole.CHAMPION)
    total = (rows.aggregate(n=Sum("reviewed" if reviewed_only else "count"))["n"] or 0) if pieces else 0
    if edges:
        raw = PredictedAsset.objects.none()
        for low, high in edges:
            raw |= predicted_assets_in(deployment=deployment, start=low, end=high, tags=[tag] if tag else [],
                                       model_version_id=model_version_id, reviewed_only=reviewed_only)
        total += raw.count()
    return total


def stats_first_prediction(*, deployment: Deployment) -> dt.datetime | None:
    """When the deployment's earliest counted prediction was made (the start of its first day row)."""
    row = StatsRollup.objects.filter(deployment=deployment, bucket=RollupBucket.DAY, tag="").order_by("start").first()
    return row.start if row is not None else None


def predictions_latency_sample(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, tag: str = "",
                               slots: int = 300) -> list[dict]:
    """A bounded sample for the latency scatter: [start, end) cut into `slots` equal slots, the first predicted
    asset of each (one short walk of the (deployment, timestamp) index per slot), and its predictions' latencies:
    [{asset_id, timestamp, is_shadow, latency}], at most 2 x slots, however many rows the range holds."""
    from django.db import connection

    width = (end - start) / slots
    bounds = [(start + width * index, start + width * (index + 1)) for index in range(slots)]
    assets, terms = PredictedAsset._meta.db_table, AssetTerm._meta.db_table
    deployment_value = PredictedAsset._meta.get_field("deployment").get_db_prep_value(deployment.pk, connection)
    tagged = (f" AND EXISTS (SELECT 1 FROM {terms} term WHERE term.asset_id = asset.id AND term.term = %s)"
              if tag else "")
    # A scalar subquery per slot, portable to SQLite; on PostgreSQL each is an index scan stopped at its first row.
    sql = (f"WITH slot(low, high) AS (VALUES {', '.join(['(%s, %s)'] * slots)}) "
           f"SELECT (SELECT asset.id FROM {assets} asset WHERE asset.deployment_id = %s AND asset.timestamp >= slot.low"
           f" AND asset.timestamp < slot.high{tagged} ORDER BY asset.timestamp, asset.id LIMIT 1) FROM slot")
    params = [connection.ops.adapt_datetimefield_value(moment) for pair in bounds for moment in pair]
    params += [deployment_value] + ([f"tag:{tag.lower()}"] if tag else [])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall() if row[0] is not None]
    if not ids:
        return []
    return [{"asset_id": row["asset_id"], "timestamp": row["asset__timestamp"], "is_shadow": row["is_shadow"],
             "latency": row["latency"]}
            for row in Prediction.objects.filter(asset_id__in=ids).order_by("asset__timestamp", "is_shadow")
            .values("asset_id", "asset__timestamp", "is_shadow", "latency")]
