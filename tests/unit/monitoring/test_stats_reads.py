"""The fast reads of the rollups: predictions/stats' count from the rollups equals the raw-row count it replaced (on
random frames and windows with ragged edges), windows read through day rows equal their hour rows, the latency
scatter's sample is bounded and spread, and N drift rules on a deployment compute its report once per run."""
import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.models import AssetStatus, PredictedAsset
from monitoring.models import AlertKind, ModelRole, RollupBucket, StatsRollup
from monitoring.selectors.stats import (BUCKET_SECONDS, StatsFigures, predicted_assets_count,
                                        predictions_latency_sample, stats_window, window_cover)
from monitoring.services.alerts import alert_rule_create, alerts_evaluate
from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from reviews.services.review import review_submit

DET = "OBJECT_DETECTION"
UTC = dt.timezone.utc


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def history(detection, monitor_payload, jpeg_bytes, users):
    """45 frames over the last three days (a few exactly on an hour's start), tagged at random, some with a shadow
    prediction, a third reviewed; rollups counted."""
    rng = random.Random(11)
    now = timezone.now()
    moments = [now - dt.timedelta(seconds=rng.uniform(0, 3 * 86400)) for _ in range(40)]
    on_the_hour = now.replace(minute=0, second=0, microsecond=0)
    moments += [on_the_hour - dt.timedelta(hours=hours) for hours in (0, 1, 5, 30, 49)]
    assets = []
    for index, moment in enumerate(moments):
        payload = monitor_payload(DET, image=jpeg_bytes(seed=500 + index), with_shadow=rng.random() < 0.4,
                                  tags=rng.sample(["a", "b", "c"], rng.randint(0, 2)), timestamp=moment.timestamp(),
                                  latency=rng.uniform(0.01, 2.0))
        asset = prediction_ingest(deployment=detection, payload=payload).asset
        if rng.random() < 0.33:
            review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=1,
                          shapes=[{"type": "rectangle", "label_id": 1, "x": 1, "y": 1, "w": 5, "h": 5}])
        assets.append(asset)
    stats_refresh(deployment=detection)
    return {"assets": assets, "moments": moments, "now": now, "rng": rng}


def raw_count(deployment, start, end, *, tag="", model_version_id=None, reviewed_only=False, excludes=()) -> int:
    """The count predictions/stats answered before the rollups: joins and DISTINCT over the raw rows."""
    assets = PredictedAsset.objects.filter(deployment=deployment, timestamp__gte=start, timestamp__lt=end)
    if tag:
        assets = assets.filter(terms__term=f"tag:{tag}")
    if model_version_id:
        assets = assets.filter(predictions__model_version_id=model_version_id)
    if excludes:
        assets = assets.exclude(pk__in=excludes)
    if reviewed_only:
        assets = assets.filter(status__in=[AssetStatus.REVIEWED, AssetStatus.SUBMITTED])
    return assets.distinct().count()


def random_windows(history, n: int):
    rng, now, moments = history["rng"], history["now"], history["moments"]
    windows = []
    for _ in range(n):
        a, b = sorted(now - dt.timedelta(seconds=rng.uniform(0, 3.2 * 86400)) for _ in range(2))
        windows.append((a, b))
    # Edges on a frame's own moment (>= takes it, < leaves it), on the hour, and over everything.
    windows += [(moments[3], moments[3] + dt.timedelta(hours=7)), (moments[40] - dt.timedelta(hours=2), moments[40]),
                (moments[43], now + dt.timedelta(seconds=1)), (now - dt.timedelta(days=30), now + dt.timedelta(hours=1))]
    return windows


@pytest.mark.parametrize("minute_days", [14, 1], ids=["minute rows kept", "minute rows pruned after a day"])
def test_the_count_from_rollups_equals_the_raw_count_on_random_windows(detection, history, settings, minute_days):
    settings.LOUPE_STATS_MINUTE_DAYS = minute_days
    checked = 0
    for start, end in random_windows(history, 25):
        for tag in ("", "a"):
            for model_version_id in (None, detection.champion_id, detection.shadow_id):
                for reviewed_only in (False, True):
                    expected = raw_count(detection, start, end, tag=tag, model_version_id=model_version_id,
                                         reviewed_only=reviewed_only)
                    got = predicted_assets_count(deployment=detection, start=start, end=end, tag=tag,
                                                 model_version_id=model_version_id, reviewed_only=reviewed_only)
                    assert got == expected, (start, end, tag, model_version_id, reviewed_only)
                    checked += expected > 0
    assert checked > 100  # most of the combinations hold frames: the equality is not 0 == 0


def test_a_window_is_whole_buckets_coarsest_first_and_edges_under_a_minute(settings):
    settings.LOUPE_STATS_MINUTE_DAYS = 14
    now = timezone.now()
    start = (now - dt.timedelta(days=3)).replace(hour=22, minute=58, second=30, microsecond=250)
    end = now.replace(minute=7, second=10)
    pieces, edges = window_cover(start, end)
    assert [bucket for bucket, _, _ in pieces] == ["minute", "hour", "day", "hour", "minute"]
    assert pieces[2][1] == start.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    assert edges == [(start, start.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)),
                     (end.replace(second=0, microsecond=0), end)]
    # Covered exactly once: the pieces and edges, sorted, tile [start, end).
    tiles = sorted([(low, high) for _, low, high in pieces] + edges)
    assert tiles[0][0] == start and tiles[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(tiles, tiles[1:]))


def test_predictions_stats_count_equals_the_raw_count_through_the_api(client, api_tokens, detection, history):
    excluded = [str(history["assets"][0].pk), str(history["assets"][7].pk)]
    for start, end in random_windows(history, 8):
        for params, reviewed_only in (({"service": "metrics"}, False), ({"service": "metrics", "tags": "b"}, False),
                                      ({"service": "label_distribution"}, True),
                                      ({"service": "ae_outlier", "excludes": ",".join(excluded)}, False)):
            answer = client.get(f"/api/deployment/{detection.id}/predictions/stats",
                                {**params, "from_timestamp": start.timestamp(), "to_timestamp": end.timestamp()},
                                headers={"Authorization": f"Bearer {api_tokens['admin']}"})
            assert answer.status_code == 200, answer.json()
            # The API reads epoch seconds back as datetimes: compare over the very moments it used.
            echo = answer.json()
            low = dt.datetime.fromtimestamp(echo["from_timestamp"], tz=UTC)
            high = dt.datetime.fromtimestamp(echo["to_timestamp"], tz=UTC)
            expected = raw_count(detection, low, high, tag=params.get("tags", ""), reviewed_only=reviewed_only,
                                 excludes=excluded if "excludes" in params else ())
            assert echo["count"] == expected, (params, low, high)
            assert len(echo["items"]) == min(expected, 100)
            stamps = [item["timestamp"] for item in echo["items"]]
            assert stamps == sorted(stamps, reverse=True)


def hour_rows_sum(deployment, start, end, role) -> StatsFigures:
    """What stats_window summed before day rows: every hour row overlapping the window."""
    figures = StatsFigures()
    for row in StatsRollup.objects.filter(deployment=deployment, bucket=RollupBucket.HOUR, tag="", role=role,
                                          start__gt=start - dt.timedelta(hours=1), start__lt=end).values():
        figures.add(row)
    return figures


@pytest.mark.parametrize("role", [ModelRole.CHAMPION, ModelRole.SHADOW])
def test_a_week_read_through_day_rows_equals_its_hour_rows(detection, history, role):
    now = history["now"]
    for start, end in [(now - dt.timedelta(days=7), now), (now - dt.timedelta(days=2, minutes=13), now),
                       (now - dt.timedelta(days=5), now - dt.timedelta(hours=20))]:
        new = stats_window(deployment=detection, start=start, end=end, role=role, bucket=RollupBucket.HOUR)
        old = hour_rows_sum(detection, start, end, role)
        assert old.count > 0
        assert (new.count, new.latency_sum, new.shape_count, new.reviewed) == pytest.approx(
            (old.count, old.latency_sum, old.shape_count, old.reviewed))
        assert new.histograms == old.histograms and new.classes == old.classes
        # Only the histograms asked for are read.
        latency_only = stats_window(deployment=detection, start=start, end=end, role=role, bucket=RollupBucket.HOUR,
                                    features=("latency",), classes=False)
        assert latency_only.histograms == {"latency": old.histograms["latency"]} and latency_only.classes == {}


def test_the_latency_sample_is_the_first_frame_of_each_slot_and_bounded(detection, history):
    now = history["now"]
    start, end = now - dt.timedelta(days=3), now + dt.timedelta(seconds=1)
    sample = predictions_latency_sample(deployment=detection, start=start, end=end, slots=12)
    width = (end - start) / 12
    expected_ids = []
    for index in range(12):
        first = (PredictedAsset.objects.filter(deployment=detection, timestamp__gte=start + width * index,
                                               timestamp__lt=start + width * (index + 1))
                 .order_by("timestamp", "id").first())
        if first is not None:
            expected_ids.append(first.pk)
    assert 6 <= len(expected_ids) <= 12
    champion = [point for point in sample if not point["is_shadow"]]
    assert [point["asset_id"] for point in champion] == expected_ids
    by_id = {asset.pk: asset for asset in PredictedAsset.objects.filter(pk__in=expected_ids)}
    assert all(point["latency"] == pytest.approx(by_id[point["asset_id"]].latency) for point in champion)
    shadows = {point["asset_id"] for point in sample if point["is_shadow"]}
    assert shadows == set(PredictedAsset.objects.filter(pk__in=expected_ids, predictions__is_shadow=True)
                          .values_list("pk", flat=True))
    tagged = predictions_latency_sample(deployment=detection, start=start, end=end, slots=12, tag="A")
    assert tagged and all(PredictedAsset.objects.filter(pk=point["asset_id"], terms__term="tag:a").exists()
                          for point in tagged)


def test_the_scatter_chart_says_it_is_sampled_and_links_each_point(client, detection, history, users):
    client.force_login(users["ml_lead"])
    chart = client.get(f"/deployments/{detection.id}/monitoring/charts/latency_points.json?range=7d").json()
    assert chart["sampled"] is True and "sampled" in chart["title"]
    points = [point for dataset in chart["datasets"] for point in dataset["points"]]
    assert 0 < len(points) <= 2 * chart["slots"]
    ids = {str(asset.pk) for asset in history["assets"]}
    assert all(point["url"].rstrip("/").split("/")[-1] in ids or any(i in point["url"] for i in ids)
               for point in points)


def test_drift_rules_on_one_deployment_compute_its_report_once_per_run(detection, history, users):
    def rollup_reads(rules: int) -> int:
        for index in range(rules):
            alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.DRIFT,
                              webhook_url=f"http://127.0.0.1:9/{index}")
        with CaptureQueriesContext(connection) as queries:
            counts = alerts_evaluate()
        assert counts["evaluated"] == rules
        return sum("monitoring_statsrollup" in query["sql"] for query in queries.captured_queries)

    one = rollup_reads(1)
    detection.alert_rules.all().delete()
    four = rollup_reads(4)
    assert one > 0 and four == one
