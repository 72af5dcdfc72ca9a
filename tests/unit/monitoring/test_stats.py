"""Stats rollups: every asset counted exactly once, whatever arrives in which order, and equal to a recount."""
import datetime as dt
import io
import random

import pytest
from django.core.management import call_command
from django.utils import timezone

from dashboard.errors import Conflict
from dashboard.models import PredictedAsset
from monitoring.histograms import bin_centres
from monitoring.models import ModelRole, RollupBucket, StatsContribution, StatsRollup, StatsState
from monitoring.selectors.stats import bucket_for, stats_series, stats_window
from monitoring.services.ingest import prediction_ingest, shadow_prediction_add
from monitoring.services.stats import (
    rollup_values, stats_deployments_behind, stats_mark_stale, stats_rebuild, stats_recount, stats_refresh,
    stats_refresh_soon,
)
from monitoring.tasks import predicted_asset_process
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit
from reviews.services.review import bulk_accept, review_submit

DET = "OBJECT_DETECTION"


def _rounded(values: dict) -> dict:
    # Sums of floats (latency_sum) differ in their last bits with the order they were added in.
    return {key: round(value, 9) if isinstance(value, float) else value for key, value in values.items()}


def stored(deployment) -> dict:
    return {(row.bucket, row.start, row.role, row.model_version_id, row.tag): _rounded(rollup_values(row))
            for row in StatsRollup.objects.filter(deployment=deployment)}


def recounted(deployment) -> dict:
    def clean(values):
        return {**_rounded(values), "hist": {f: {i: n for i, n in c.items() if n} for f, c in values["hist"].items()
                                   if any(c.values())},
                "classes": {k: v for k, v in values["classes"].items() if v},
                "reviewed_classes": {k: v for k, v in values["reviewed_classes"].items() if v}}
    return {key: clean(values) for key, values in stats_recount(deployment=deployment).items() if values["count"]}


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def dataset_version_for(organization):
    from dashboard.services.datasets import dataset_create, dataset_version_create

    def make(deployment):
        dataset = dataset_create(organization=organization, name=f"{deployment.name}-fl")
        return dataset_version_create(dataset=dataset, version="v1", type=deployment.type)
    return make


@pytest.fixture
def frame(detection, monitor_payload, jpeg_bytes):
    """frame(seed, minutes_ago=..., tags=..., shadow=...) -> a stored predicted asset."""
    def make(seed: int, *, minutes_ago: float = 5, tags=(), shadow=False, score=0.9):
        payload = monitor_payload(DET, image=jpeg_bytes(seed=seed), with_shadow=shadow, tags=list(tags),
                                  timestamp=(timezone.now() - dt.timedelta(minutes=minutes_ago)).timestamp())
        payload["raw_predictions"]["detection_scores"] = [score, score / 2]
        return prediction_ingest(deployment=detection, payload=payload).asset
    return make


def test_a_frame_is_counted_in_its_minute_hour_and_day_for_every_tag(detection, frame):
    asset = frame(1, tags=["night", "cam-1"])
    assert stats_refresh(deployment=detection) == 1
    rows = StatsRollup.objects.filter(deployment=detection, role=ModelRole.CHAMPION)
    assert sorted({(row.bucket, row.tag) for row in rows}) == sorted(
        (bucket, tag) for bucket in RollupBucket.values for tag in ("", "cam-1", "night"))
    minute = rows.get(bucket=RollupBucket.MINUTE, tag="")
    assert minute.start == asset.timestamp.replace(second=0, microsecond=0)
    assert (minute.count, minute.shape_count, minute.classes) == (1, 2, {"1": 1, "2": 1})
    assert minute.latency_sum == pytest.approx(asset.latency)
    assert sum(minute.histograms["score"]) == 2 and sum(minute.histograms["shapes_per_asset"]) == 1
    assert "brightness" not in minute.histograms  # the per-frame work has not run yet
    assert stats_refresh(deployment=detection) == 0  # counted once


def test_features_score_and_review_arrive_later_and_replace_what_was_counted(detection, frame, users):
    asset = frame(2)
    stats_refresh(deployment=detection)
    predicted_asset_process(str(asset.pk))  # features (and the stale mark); no score yet: no reference
    stats_refresh(deployment=detection)
    row = StatsRollup.objects.get(deployment=detection, bucket=RollupBucket.DAY, role=ModelRole.CHAMPION, tag="")
    assert row.count == 1 and sum(row.histograms["brightness"]) == 1 and sum(row.histograms["sharpness"]) == 1
    review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=1,
                  shapes=[{"type": "rectangle", "label_id": 3, "x": 1, "y": 1, "w": 5, "h": 5}])
    stats_refresh(deployment=detection)
    row.refresh_from_db()
    assert (row.count, row.reviewed, row.reviewed_classes) == (1, 1, {"3": 1})
    review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=2, shapes=[])
    stats_refresh(deployment=detection)
    row.refresh_from_db()
    assert (row.count, row.reviewed, row.reviewed_classes) == (1, 1, {})  # the old review was taken away
    assert stored(detection) == recounted(detection)


def test_random_ingests_reviews_repeats_and_replays_equal_a_recount(detection, frame, users, monitor_payload,
                                                                    jpeg_bytes, dataset_version_for, settings):
    settings.LOUPE_FRAME_BATCH = 1  # "process" is the work of the one frame drawn, not a batch of all waiting
    rng = random.Random(7)
    feedback_loop_setup(deployment=detection, dataset_version=dataset_version_for(detection))
    assets = []
    for step in range(60):
        action = rng.choice(["ingest", "ingest", "ingest", "process", "review", "refresh", "repeat", "shadow",
                             "bulk", "submit", "stale"])
        if action == "ingest" or not assets:
            assets.append(frame(100 + step, minutes_ago=rng.uniform(0, 3000), tags=rng.sample(["a", "b", "c"], 2),
                                shadow=rng.random() < 0.3, score=rng.uniform(0.05, 1)))
        elif action == "process":
            predicted_asset_process(str(rng.choice(assets).pk))
        elif action == "review":
            asset = PredictedAsset.objects.get(pk=rng.choice(assets).pk)
            shapes = [{"type": "rectangle", "label_id": rng.choice([1, 2, 3]), "x": 1, "y": 1, "w": 4, "h": 4}]
            try:
                review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=shapes,
                              expected_version=asset.version)
            except Conflict:
                pass  # submitted already
        elif action == "refresh":
            stats_refresh(deployment=detection)
        elif action == "repeat":  # the same frame again: refused, counted nowhere
            payload = monitor_payload(DET, image=jpeg_bytes(seed=100 + step - 1), timestamp=1_700_000_000.0)
            for _ in range(2):
                try:
                    prediction_ingest(deployment=detection, payload=payload)
                except Conflict:
                    pass
        elif action == "shadow":
            asset = rng.choice(assets)
            try:
                shadow_prediction_add(asset=PredictedAsset.objects.select_related("deployment").get(pk=asset.pk),
                                      payload={"shadow_latency": 0.2, "shadow_raw_predictions": {
                                          "detection_classes": [4], "detection_scores": [0.3],
                                          "detection_boxes": [[1, 1, 9, 9]]}})
            except Conflict:
                pass  # it had one
        elif action == "bulk":
            bulk_accept(deployment=detection, assets=PredictedAsset.objects.filter(pk__in=[a.pk for a in assets[-5:]]),
                        reviewer=users["admin"], min_score=0.5)
        elif action == "submit":
            try:
                feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(deployment=detection))
            except Exception:  # nothing reviewed yet
                pass
        elif action == "stale":  # a replayed task: marks and refreshes again for nothing new
            stats_mark_stale(deployment_id=detection.pk, asset_ids=[a.pk for a in rng.sample(assets, 3)])
    stats_refresh(deployment=detection)
    stats_refresh(deployment=detection)  # a replayed refresh changes nothing
    assert StatsContribution.objects.filter(deployment=detection, stale=True).count() == 0
    assert stored(detection) == recounted(detection)
    every_day = stats_window(deployment=detection, start=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
                             end=timezone.now(), bucket=RollupBucket.DAY)
    assert every_day.count == PredictedAsset.objects.filter(deployment=detection).count()


def test_refresh_soon_asks_once_until_a_refresh_runs(detection, django_capture_on_commit_callbacks, monkeypatch):
    from monitoring import tasks

    sent = []
    monkeypatch.setattr(tasks.stats_refresh, "apply_async", lambda args, **options: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        stats_refresh_soon(deployment_id=detection.pk)
        stats_refresh_soon(deployment_id=detection.pk)
    assert sent == [(str(detection.pk),)] and StatsState.objects.get(deployment=detection).refresh_requested
    stats_refresh(deployment=detection)
    with django_capture_on_commit_callbacks(execute=True):
        stats_refresh_soon(deployment_id=detection.pk)
    assert len(sent) == 2


def test_the_reconcile_finds_what_no_task_counted(detection, frame, deployments):
    frame(3)
    assert detection.pk in stats_deployments_behind()  # never counted: a lost task
    stats_refresh(deployment=detection)
    assert detection.pk not in stats_deployments_behind()
    stats_mark_stale(deployment_id=detection.pk, asset_ids=[PredictedAsset.objects.get().pk])
    assert detection.pk in stats_deployments_behind()


def test_an_asset_committed_late_behind_the_watermark_is_still_counted(detection, frame):
    frame(4)
    stats_refresh(deployment=detection)
    late = frame(5)
    # It was created before the watermark moved past it (a transaction that committed late).
    PredictedAsset.objects.filter(pk=late.pk).update(created_at=timezone.now() - dt.timedelta(minutes=1))
    StatsState.objects.filter(deployment=detection).update(watermark=timezone.now())
    assert stats_refresh(deployment=detection) == 1
    assert stored(detection) == recounted(detection)


def test_windows_and_series_sum_buckets_and_read_quantiles(detection, frame):
    for seed, minutes in ((10, 1), (11, 2), (12, 65)):
        frame(seed, minutes_ago=minutes)
    stats_refresh(deployment=detection)
    now = timezone.now()
    hour = stats_window(deployment=detection, start=now - dt.timedelta(hours=1), end=now, bucket=RollupBucket.MINUTE)
    assert hour.count == 2 and hour.shapes_mean == 2
    series = stats_series(deployment=detection, start=now - dt.timedelta(hours=3), end=now, bucket=RollupBucket.MINUTE)
    assert sum(figures.count for _, figures in series) == 3 and [s for s, _ in series] == sorted(s for s, _ in series)
    p50 = hour.quantile("latency", 0.5)
    assert p50 is not None and bin_centres("latency")[0] <= p50
    assert bucket_for(now - dt.timedelta(hours=1), now) == RollupBucket.MINUTE
    assert bucket_for(now - dt.timedelta(days=7), now) == RollupBucket.HOUR
    assert bucket_for(now - dt.timedelta(days=60), now) == RollupBucket.DAY


def test_rebuild_stats_counts_everything_again_with_a_progress_bar(detection, frame, capsys):
    for seed in range(3):
        frame(20 + seed)
    stats_refresh(deployment=detection)
    StatsRollup.objects.filter(deployment=detection).update(count=999)  # damaged
    out = io.StringIO()
    call_command("rebuild_stats", detection.name, stdout=out)
    assert "Counted 3 assets" in out.getvalue() and "3/3" in capsys.readouterr().err
    assert stored(detection) == recounted(detection)
    assert stats_rebuild(deployment=detection) == 3


def test_an_asset_marked_stale_while_a_refresh_counts_it_is_counted_again_not_refused(detection, frame, monkeypatch):
    from monitoring.services import stats

    first, _ = frame(1), frame(2)
    count_assets = stats._contributions

    def marked_meanwhile(assets):
        # Its frame work (or a review) marks it stale between the refresh's read and its write, as another worker
        # does without waiting for the refresh's lock.
        stats_mark_stale(deployment_id=detection.pk, asset_ids=[first.pk])
        return count_assets(assets)

    monkeypatch.setattr(stats, "_contributions", marked_meanwhile)
    assert stats_refresh(deployment=detection) == 2  # no duplicate key: the row made meanwhile is taken over
    assert list(StatsContribution.objects.filter(stale=True).values_list("asset_id", flat=True)) == [first.pk]
    monkeypatch.undo()
    stats_refresh(deployment=detection)
    assert not StatsContribution.objects.filter(stale=True).exists()
    assert stored(detection) == recounted(detection)


def test_a_refresh_is_requested_only_once_the_change_commits(detection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stats_refresh_soon(deployment_id=detection.pk)
        # Inside the change's transaction the state row is not touched (a refresh holding it cannot deadlock us).
        assert not StatsState.objects.filter(deployment=detection, refresh_requested=True).exists()
    assert len(callbacks) == 1
