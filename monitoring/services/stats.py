"""Stats rollups: each predicted asset counted exactly once into its deployment's minute, hour and day buckets.

What an asset adds (its contribution) depends on what is known of it: its predictions at ingest, its image
features and outlier score once the per-frame work is done, its review later. The contribution counted is kept
in a StatsContribution row; whatever changes the asset marks that row stale, and counting again subtracts the
old contribution and adds the new one in the same transaction as it stores it. So a replayed task, a retry or
two workers at once never count anything twice, and the rollups always equal a recount from the raw rows.

New assets are found from the deployment's watermark (every asset created before it has a contribution row),
rescanning a margin behind it for transactions that committed late; stale ones by a partial index. The per-frame
task and the review services ask for a refresh soon (one task per deployment at a time); a beat task
reconciles anything a lost task or a stopped worker missed.
"""
import datetime as dt
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from dashboard.models import AssetStatus, AssetTerm, Deployment, PredictedAsset, Prediction
from dashboard.services.background import task_send
from dashboard.shapes import shape_area
from monitoring.features import FEATURE_VERSION, IMAGE_STAT_INDEX
from monitoring.histograms import BINS, bin_edges
from monitoring.models import AssetFeatures, ModelRole, RollupBucket, StatsContribution, StatsRollup, StatsState

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# New assets are looked for from this far behind the watermark: a transaction that began before the watermark
# moved on may commit after it. The beat's reconcile looks further back.
WATERMARK_MARGIN = dt.timedelta(minutes=2)
RECONCILE_MARGIN = dt.timedelta(days=1)
BUCKET_SIZES = (RollupBucket.MINUTE, RollupBucket.HOUR, RollupBucket.DAY)
COUNTS = ("count", "latency_sum", "shape_count", "outlier_count", "outlier_sum", "reviewed", "submitted")


def bucket_start(moment: dt.datetime, bucket: str) -> dt.datetime:
    moment = moment.astimezone(dt.timezone.utc)
    if bucket == RollupBucket.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if bucket == RollupBucket.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _bin(feature: str, value: float) -> str:
    edges = bin_edges(feature)
    index = int(np.clip(np.searchsorted(edges, value, side="right") - 1, 0, len(edges) - 2))
    return str(index)


def _add(counts: dict, key, amount=1) -> None:
    counts[key] = counts.get(key, 0) + amount


def asset_contribution(*, asset: PredictedAsset, predictions: Iterable[dict], vector, tags: list[str]) -> dict:
    """What the asset adds to the rollups, per model role: plain JSON, bins as string keys.

    `predictions` are the asset's prediction rows (is_shadow, shapes, latency, model_version_id), `vector` its
    stored feature vector (or None before the per-frame work), `tags` the frame's own tags.
    """
    frame: dict = {"hist": {}}
    if vector is not None:
        for name in IMAGE_STAT_INDEX:
            frame["hist"][name] = {_bin(name, float(vector[IMAGE_STAT_INDEX[name]])): 1}
    if asset.outlier_score is not None:
        frame.update(outlier_count=1, outlier_sum=asset.outlier_score)
        frame["hist"]["outlier_score"] = {_bin("outlier_score", asset.outlier_score): 1}
    if asset.status != AssetStatus.TO_REVIEW:
        frame["reviewed"] = 1
        frame["submitted"] = int(asset.status == AssetStatus.SUBMITTED)
        reviewed_classes: dict = {}
        for shape in asset.reviewed_shapes or []:
            _add(reviewed_classes, str(shape["label_id"]))
        frame["reviewed_classes"] = reviewed_classes
    roles = {}
    frame_area = asset.width * asset.height
    for prediction in predictions:
        shapes = prediction["shapes"]
        hist = {name: dict(counts) for name, counts in frame["hist"].items()}
        classes: dict = {}
        for shape in shapes:
            _add(classes, str(shape["label_id"]))
            if shape.get("score") is not None:
                _add(hist.setdefault("score", {}), _bin("score", shape["score"]))
            area = shape_area(shape)
            if area is not None:
                _add(hist.setdefault("shape_area", {}), _bin("shape_area", area / frame_area))
        scores = [shape["score"] for shape in shapes if shape.get("score") is not None]
        if scores:
            hist["max_score"] = {_bin("max_score", max(scores)): 1}
        hist["shapes_per_asset"] = {_bin("shapes_per_asset", len(shapes)): 1}
        hist["latency"] = {_bin("latency", prediction["latency"]): 1}
        role = ModelRole.SHADOW if prediction["is_shadow"] else ModelRole.CHAMPION
        roles[role] = {
            **{name: frame.get(name, 0) for name in COUNTS},
            "count": 1, "latency_sum": prediction["latency"], "shape_count": len(shapes),
            "mv": str(prediction["model_version_id"] or ""),
            "hist": hist, "classes": classes, "reviewed_classes": frame.get("reviewed_classes", {}),
        }
    return {"t": asset.timestamp.timestamp(), "tags": sorted(tags), "roles": roles}


class TrainingFigures:
    """Histograms of a training set's images and annotations in the rollups' bins (what drift compares with)."""

    def __init__(self):
        self.count, self.histograms, self.classes = 0, {}, {}

    def add(self, *, vector, shapes: list[dict], width: int, height: int) -> None:
        self.count += 1
        values = {name: float(vector[index]) for name, index in IMAGE_STAT_INDEX.items()}
        values["shapes_per_asset"] = len(shapes)
        for name, value in values.items():
            self._count(name, value)
        for shape in shapes:
            _add(self.classes, str(shape["label_id"]))
            area = shape_area(shape)
            if area is not None:
                self._count("shape_area", area / (width * height))

    def _count(self, feature: str, value: float) -> None:
        dense = self.histograms.setdefault(feature, [0] * BINS[feature].bins)
        dense[int(_bin(feature, value))] += 1


def _entries(contribution: dict | None):
    """(rollup key, values) for every row the contribution adds to."""
    if not contribution:
        return
    moment = dt.datetime.fromtimestamp(contribution["t"], tz=dt.timezone.utc)
    for bucket in BUCKET_SIZES:
        start = bucket_start(moment, bucket)
        for tag in ["", *contribution["tags"]]:
            for role, values in contribution["roles"].items():
                yield (bucket, start, role, values["mv"], tag), values


def _accumulate(deltas: dict, contribution: dict | None, sign: int) -> None:
    for key, values in _entries(contribution):
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = {name: 0 for name in COUNTS} | {"hist": {}, "classes": {}, "reviewed_classes": {}}
        for name in COUNTS:
            delta[name] += sign * values.get(name, 0)
        for feature, counts in values["hist"].items():
            target = delta["hist"].setdefault(feature, {})
            for index, n in counts.items():
                _add(target, index, sign * n)
        for field in ("classes", "reviewed_classes"):
            for class_id, n in values[field].items():
                _add(delta[field], class_id, sign * n)


def _apply(row: StatsRollup, delta: dict) -> None:
    for name in COUNTS:
        setattr(row, name, getattr(row, name) + delta[name])
    histograms = row.histograms or {}
    for feature, counts in delta["hist"].items():
        dense = histograms.get(feature) or [0] * BINS[feature].bins
        for index, n in counts.items():
            dense[int(index)] += n
        histograms[feature] = dense
    row.histograms = histograms
    for field in ("classes", "reviewed_classes"):
        merged = dict(getattr(row, field) or {})
        for class_id, n in delta[field].items():
            merged[class_id] = merged.get(class_id, 0) + n
        setattr(row, field, {class_id: n for class_id, n in merged.items() if n})


def _write(deployment_id, deltas: dict) -> None:
    """Add the deltas to their rollup rows (made when missing); the caller holds the deployment's state lock."""
    by_bucket: dict = defaultdict(set)
    for bucket, start, *_ in deltas:
        by_bucket[bucket].add(start)
    existing = {}
    for bucket, starts in by_bucket.items():
        starts = sorted(starts)
        for offset in range(0, len(starts), 500):
            rows = StatsRollup.objects.select_for_update().filter(
                deployment_id=deployment_id, bucket=bucket, start__in=starts[offset:offset + 500])
            existing.update({(row.bucket, row.start, row.role, row.model_version_id, row.tag): row for row in rows})
    created, changed = [], []
    for key, delta in deltas.items():
        row = existing.get(key)
        if row is None:
            bucket, start, role, model_version_id, tag = key
            row = StatsRollup(deployment_id=deployment_id, bucket=bucket, start=start, role=role,
                              model_version_id=model_version_id, tag=tag)
            created.append(row)
        else:
            changed.append(row)
        _apply(row, delta)
    StatsRollup.objects.bulk_create(created, batch_size=500)
    fields = [*COUNTS, "histograms", "classes", "reviewed_classes", "updated_at"]
    now = timezone.now()
    for row in changed:
        row.updated_at = now
    StatsRollup.objects.bulk_update(changed, fields, batch_size=500)


def _contributions(assets: list[PredictedAsset]) -> dict:
    """asset id -> its contribution now, read with four queries for the whole batch."""
    ids = [asset.pk for asset in assets]
    predictions = defaultdict(list)
    for row in Prediction.objects.filter(asset_id__in=ids).values(
            "asset_id", "is_shadow", "shapes", "latency", "model_version_id"):
        predictions[row["asset_id"]].append(row)
    vectors = {
        asset_id: np.frombuffer(bytes(vector), dtype="<f4")
        for asset_id, vector in AssetFeatures.objects.filter(asset_id__in=ids, version=FEATURE_VERSION)
        .values_list("asset_id", "vector")
    }
    tags = defaultdict(list)
    for asset_id, term in AssetTerm.objects.filter(asset_id__in=ids, term__startswith="tag:").values_list(
            "asset_id", "term"):
        tags[asset_id].append(term[len("tag:"):])
    return {asset.pk: asset_contribution(asset=asset, predictions=predictions[asset.pk],
                                         vector=vectors.get(asset.pk), tags=tags[asset.pk]) for asset in assets}


ASSET_FIELDS = ("id", "deployment_id", "timestamp", "created_at", "outlier_score", "status", "reviewed_shapes",
                "width", "height")


def stats_refresh(*, deployment: Deployment, margin: dt.timedelta = WATERMARK_MARGIN,
                  progress: Callable[[int], None] | None = None) -> int:
    """Count the deployment's new and stale assets into its rollups, in batches; returns how many were counted."""
    StatsState.objects.get_or_create(deployment=deployment)
    StatsState.objects.filter(deployment=deployment).update(refresh_requested=False)
    total = 0
    while True:
        counted = _refresh_batch(deployment, margin)
        total += counted
        if progress is not None and counted:
            progress(counted)
        if counted < BATCH_SIZE:
            break
    StatsState.objects.filter(deployment=deployment).update(refreshed_at=timezone.now())
    return total


def _refresh_batch(deployment: Deployment, margin: dt.timedelta) -> int:
    with transaction.atomic():
        # One refresh of a deployment at a time: the lock on its state row serializes them (SQLite's
        # immediate transactions do the same).
        state = StatsState.objects.select_for_update().get(deployment=deployment)
        new = PredictedAsset.objects.filter(deployment=deployment).filter(
            ~Exists(StatsContribution.objects.filter(asset_id=OuterRef("pk"))))
        if state.watermark is not None:
            new = new.filter(created_at__gte=state.watermark - margin)
        new_assets = list(new.order_by("created_at", "id").only(*ASSET_FIELDS)[:BATCH_SIZE])
        stale = {row.asset_id: row for row in StatsContribution.objects.select_for_update()
                 .filter(deployment=deployment, stale=True)[:BATCH_SIZE - len(new_assets)]}
        stale_assets = list(PredictedAsset.objects.filter(pk__in=list(stale)).only(*ASSET_FIELDS))
        assets = new_assets + stale_assets
        if not assets:
            if state.watermark is None or state.watermark < timezone.now() - margin:
                # Caught up: nothing older than now waits, so later scans start from here.
                StatsState.objects.filter(pk=state.pk).update(watermark=timezone.now() - margin)
            return 0
        contributions = _contributions(assets)
        deltas: dict = {}
        for asset in assets:
            old = stale[asset.pk].counted if asset.pk in stale else None
            _accumulate(deltas, old, -1)
            _accumulate(deltas, contributions[asset.pk], +1)
        _write(deployment.pk, deltas)
        # An asset marked stale since it was read here (its frame work or a review, which do not wait for the
        # state lock) has a row already: it keeps `stale`, takes what was counted now, and is counted again next time.
        StatsContribution.objects.bulk_create(
            [StatsContribution(asset_id=asset.pk, deployment_id=deployment.pk, stale=False,
                               counted=contributions[asset.pk]) for asset in new_assets], batch_size=500,
            update_conflicts=True, unique_fields=["asset"], update_fields=["counted"])
        for asset in stale_assets:
            row = stale[asset.pk]
            row.stale, row.counted = False, contributions[asset.pk]
        StatsContribution.objects.bulk_update([stale[asset.pk] for asset in stale_assets], ["stale", "counted"],
                                              batch_size=500)
        if new_assets and len(new_assets) < BATCH_SIZE:
            newest = max(asset.created_at for asset in new_assets)
            if state.watermark is None or newest > state.watermark:
                StatsState.objects.filter(pk=state.pk).update(watermark=newest)
        return len(assets)


def stats_mark_stale(*, deployment_id, asset_ids: Iterable) -> None:
    """The assets changed: count them again at the next refresh. Call it in, or after, the change's transaction."""
    rows = [StatsContribution(asset_id=asset_id, deployment_id=deployment_id, stale=True) for asset_id in asset_ids]
    # An upsert: a row not yet made is made stale (its asset is counted whole), one being counted right now is
    # waited for, then marked again.
    StatsContribution.objects.bulk_create(rows, batch_size=500, update_conflicts=True, unique_fields=["asset"],
                                          update_fields=["stale"])


def stats_mark_deployment_stale(*, deployment_id) -> None:
    """Every counted asset of the deployment changed (a rescore): count them all again."""
    StatsContribution.objects.filter(deployment_id=deployment_id, stale=False).update(stale=True)


def stats_refresh_soon(*, deployment_id) -> None:
    """Ask for a refresh of the deployment's rollups after this transaction commits; one is queued at a time.

    The request touches the deployment's state row only after the commit: a refresh locks that row before the
    contributions, so a transaction that marked contributions stale and then waited for the state row would deadlock
    with it. A request lost between the commit and here is found by the reconcile (the stale rows say so)."""
    transaction.on_commit(functools.partial(_refresh_request, deployment_id))


def _refresh_request(deployment_id) -> None:
    from monitoring import tasks

    requested = StatsState.objects.filter(deployment_id=deployment_id, refresh_requested=False).update(
        refresh_requested=True)
    if not requested:
        # Asked for already (one refresh will see both changes), or the deployment's first change ever.
        _, requested = StatsState.objects.get_or_create(deployment_id=deployment_id,
                                                        defaults={"refresh_requested": True})
    if requested:
        # Not sent (the broker is down): the beat's reconcile finds the request flag set.
        task_send(task=tasks.stats_refresh, args=[str(deployment_id)], countdown=settings.LOUPE_STATS_REFRESH_DELAY)


def stats_deployments_behind() -> list:
    """Ids of deployments with work waiting: a refresh asked for, stale assets, or assets past the watermark."""
    behind = set(StatsState.objects.filter(refresh_requested=True).values_list("deployment_id", flat=True))
    behind |= set(StatsContribution.objects.filter(stale=True).values_list("deployment_id", flat=True).distinct())
    for deployment_id, watermark in [(d.pk, None) for d in Deployment.objects.exclude(
            pk__in=StatsState.objects.values("deployment_id")).only("id")] + list(
            StatsState.objects.values_list("deployment_id", "watermark")):
        assets = PredictedAsset.objects.filter(deployment_id=deployment_id)
        if watermark is not None:
            assets = assets.filter(created_at__gte=watermark - RECONCILE_MARGIN)
        if assets.filter(~Exists(StatsContribution.objects.filter(asset_id=OuterRef("pk")))).exists():
            behind.add(deployment_id)
    return sorted(behind, key=str)


def stats_rebuild(*, deployment: Deployment, progress: Callable[[int], None] | None = None) -> int:
    """Forget the deployment's rollups and count every asset again from the raw rows."""
    with transaction.atomic():
        StatsRollup.objects.filter(deployment=deployment).delete()
        StatsContribution.objects.filter(deployment=deployment).delete()
        StatsState.objects.update_or_create(deployment=deployment, defaults={"watermark": None})
    return stats_refresh(deployment=deployment, progress=progress)


def stats_recount(*, deployment: Deployment) -> dict:
    """The rollups as a count from scratch of the raw rows would make them, without storing anything:
    {key: values}, the key as StatsRollup's (bucket, start, role, model_version_id, tag)."""
    deltas: dict = {}
    assets = list(PredictedAsset.objects.filter(deployment=deployment).only(*ASSET_FIELDS).order_by("id"))
    for offset in range(0, len(assets), BATCH_SIZE):
        batch = assets[offset:offset + BATCH_SIZE]
        for contribution in _contributions(batch).values():
            _accumulate(deltas, contribution, +1)
    return deltas


def rollup_values(row: StatsRollup) -> dict:
    """A stored row's figures in stats_recount's form, zeros left out, for comparisons."""
    values = {name: getattr(row, name) for name in COUNTS}
    values["hist"] = {feature: {str(i): n for i, n in enumerate(counts) if n}
                      for feature, counts in (row.histograms or {}).items()}
    values["hist"] = {feature: counts for feature, counts in values["hist"].items() if counts}
    values["classes"] = {k: v for k, v in (row.classes or {}).items() if v}
    values["reviewed_classes"] = {k: v for k, v in (row.reviewed_classes or {}).items() if v}
    return values


def stats_prune(*, now: dt.datetime | None = None) -> int:
    """Delete minute rows older than LOUPE_STATS_MINUTE_DAYS and hour rows older than LOUPE_STATS_HOUR_DAYS
    (day rows stay); returns how many went. Their hours and days keep the figures."""
    now = now or timezone.now()
    deleted, _ = StatsRollup.objects.filter(
        bucket=RollupBucket.MINUTE, start__lt=now - dt.timedelta(days=settings.LOUPE_STATS_MINUTE_DAYS)).delete()
    more, _ = StatsRollup.objects.filter(
        bucket=RollupBucket.HOUR, start__lt=now - dt.timedelta(days=settings.LOUPE_STATS_HOUR_DAYS)).delete()
    return deleted + more



def figures_of_assets(*, assets, role: str = ModelRole.CHAMPION):
    """The figures of exactly these assets, counted from their raw rows as the rollups count them (for selections
    the rollups do not hold: several tags at once, or lists of ids). The caller bounds the selection."""
    from monitoring.selectors.stats import StatsFigures

    figures = StatsFigures()
    assets = list(assets.only(*ASSET_FIELDS))
    for offset in range(0, len(assets), BATCH_SIZE):
        for contribution in _contributions(assets[offset:offset + BATCH_SIZE]).values():
            values = contribution["roles"].get(role)
            if values is None:
                continue
            figures.add({**{name: values[name] for name in COUNTS},
                         "histograms": {feature: _dense(feature, counts) for feature, counts in values["hist"].items()},
                         "classes": values["classes"], "reviewed_classes": values["reviewed_classes"]})
    return figures


def _dense(feature: str, sparse: dict) -> list[int]:
    dense = [0] * BINS[feature].bins
    for index, n in sparse.items():
        dense[int(index)] += n
    return dense
