"""Reads of the stats rollups: the figures of any window, or a series of buckets, summed from stored rows only."""
import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from dashboard.models import Deployment
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
        for feature, counts in (row["histograms"] or {}).items():
            mine = self.histograms.get(feature)
            self.histograms[feature] = list(counts) if mine is None else [a + b for a, b in zip(mine, counts)]
        for name in ("classes", "reviewed_classes"):
            mine = getattr(self, name)
            for class_id, n in (row[name] or {}).items():
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


def _rows(*, deployment: Deployment, start, end, role, tag, model_version_id, bucket):
    # Every bucket the window touches: "the last day" at 10:20 counts from yesterday's 10:00 bucket, the one
    # holding 10:20, rather than dropping it for having started before the window did.
    rows = StatsRollup.objects.filter(deployment=deployment, bucket=bucket, tag=tag, role=role,
                                      start__gt=start - dt.timedelta(seconds=BUCKET_SECONDS[bucket]), start__lt=end)
    if model_version_id:
        rows = rows.filter(model_version_id=str(model_version_id))
    return rows.order_by("start").values("start", *COUNTS, "histograms", "classes", "reviewed_classes")


def stats_window(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, role: str = ModelRole.CHAMPION,
                 tag: str = "", model_version_id=None, bucket: str | None = None) -> StatsFigures:
    """The figures of the predictions made in [start, end), counted by the buckets overlapping it."""
    figures = StatsFigures()
    for row in _rows(deployment=deployment, start=start, end=end, role=role, tag=tag,
                     model_version_id=model_version_id, bucket=bucket or bucket_for(start, end)):
        figures.add(row)
    return figures


def stats_series(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, role: str = ModelRole.CHAMPION,
                 tag: str = "", model_version_id=None, bucket: str | None = None) -> list[tuple[dt.datetime, StatsFigures]]:
    """One StatsFigures per bucket with predictions in [start, end), in time order (empty buckets left out)."""
    series: dict = {}
    for row in _rows(deployment=deployment, start=start, end=end, role=role, tag=tag,
                     model_version_id=model_version_id, bucket=bucket or bucket_for(start, end)):
        series.setdefault(row["start"], StatsFigures()).add(row)
    return list(series.items())


def stats_first_prediction(*, deployment: Deployment) -> dt.datetime | None:
    """When the deployment's earliest counted prediction was made (the start of its first day row)."""
    row = StatsRollup.objects.filter(deployment=deployment, bucket=RollupBucket.DAY, tag="").order_by("start").first()
    return row.start if row is not None else None
