"""get_stats: the nine services, their parameters, and answers equal to the services they read."""
import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import PredictedAsset
from monitoring.quality import quality_evaluate
from monitoring.services.drift import drift_reference_set, drift_report
from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from monitoring.stats_api import SERVICE_METRICS
from reviews.services.review import review_submit

DET, CLS = "OBJECT_DETECTION", "CLASSIFICATION"


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def frames(detection, monitor_payload, jpeg_bytes, users):
    """Six frames over the last three days, tagged, half of them reviewed; rollups counted."""
    made = []
    for index in range(6):
        payload = monitor_payload(DET, image=jpeg_bytes(seed=300 + index), tags=["cam-1"] + (["night"] if index % 2 else []),
                                  with_shadow=index < 3,
                                  timestamp=(timezone.now() - dt.timedelta(hours=12 * index + 1)).timestamp())
        asset = prediction_ingest(deployment=detection, payload=payload).asset
        if index % 2 == 0:
            review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=1,
                          shapes=[{"type": "rectangle", "label_id": 1, "x": 5, "y": 10, "w": 20, "h": 20}])
        made.append(asset)
    stats_refresh(deployment=detection)
    return made


def get(client, token, deployment, path, **params):
    return client.get(f"/api/deployment/{deployment.id}{path}", params,
                      headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("metric", list(SERVICE_METRICS))
def test_every_service_answers_by_name_and_by_service(client, api_tokens, detection, frames, metric):
    service, aggregated = SERVICE_METRICS[metric]
    path = "/stats" if aggregated else "/predictions/stats"
    by_name = get(client, api_tokens["labeler"], detection, path, service=service, metric=metric)
    assert by_name.status_code == 200, by_name.json()
    assert (by_name.json()["metric"], by_name.json()["service"]) == (metric, service)
    assert get(client, api_tokens["labeler"], detection, path, service=metric).json()["metric"] == metric
    wrong = get(client, api_tokens["labeler"], detection, "/predictions/stats" if aggregated else "/stats", metric=metric)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "metric"


def test_predictions_data_pages_newest_first_and_filters(client, api_tokens, detection, frames):
    answer = get(client, api_tokens["admin"], detection, "/predictions/stats", service="metrics", limit=2).json()
    assert answer["count"] == 6 and len(answer["items"]) == 2
    assert answer["items"][0]["predicted_asset_id"] == str(frames[0].pk)  # newest first
    assert answer["items"][0]["shape_count"] == 2 and answer["items"][0]["classes"] == {"1": 1, "2": 1}
    night = get(client, api_tokens["admin"], detection, "/predictions/stats", service="metrics", tags="night").json()
    assert {item["predicted_asset_id"] for item in night["items"]} == {str(a.pk) for a in frames[1::2]}
    some = get(client, api_tokens["admin"], detection, "/predictions/stats", service="ae_outlier",
               includes=f"{frames[0].pk},{frames[1].pk}", excludes=str(frames[1].pk)).json()
    assert [item["predicted_asset_id"] for item in some["items"]] == [str(frames[0].pk)]
    recent = get(client, api_tokens["admin"], detection, "/predictions/stats", service="metrics", since=86400).json()
    assert recent["count"] == 2  # 1 h and 13 h ago


def test_aggregated_metrics_equal_the_rollups(client, api_tokens, detection, frames):
    answer = get(client, api_tokens["admin"], detection, "/stats", service="metrics").json()
    assert answer["count"] == 6 and answer["reviewed"] == 3 and answer["shapes_per_asset"]["mean"] == 2
    expected = sum(a.latency for a in PredictedAsset.objects.filter(deployment=detection)) / 6
    assert answer["latency"]["mean"] == pytest.approx(expected)
    assert sum(point["count"] for point in answer["series"]) == 6
    shadow = get(client, api_tokens["admin"], detection, "/stats", service="metrics",
                 model_id=str(detection.shadow_id)).json()
    assert (shadow["role"], shadow["count"]) == ("shadow", 3)
    # Two tags at once: counted from the raw rows, as the rollups would.
    both = get(client, api_tokens["admin"], detection, "/stats", service="metrics", tags="cam-1,night").json()
    assert both["count"] == 3 and "series" not in both


def test_label_distribution_predicted_vs_reviewed(client, api_tokens, detection, frames):
    answer = get(client, api_tokens["admin"], detection, "/stats", service="label_distribution").json()
    by_id = {label["label_id"]: label for label in answer["labels"]}
    assert (by_id[1]["predicted"], by_id[1]["reviewed"], by_id[2]["predicted"]) == (6, 3, 6)
    assert by_id[1]["name"] == "car" and answer["reviewed_assets"] == 3


def test_object_detection_carries_cocos_twelve_numbers_over_the_reviewed_assets(client, api_tokens, detection, frames):
    answer = get(client, api_tokens["admin"], detection, "/stats", service="object_detection").json()
    reviewed = PredictedAsset.objects.filter(deployment=detection, status="REVIEWED").prefetch_related("predictions")
    images = [{"id": str(a.pk), "width": a.width, "height": a.height, "truth": a.reviewed_shapes,
               "predicted": next(p.shapes for p in a.predictions.all() if not p.is_shadow)} for a in reviewed]
    expected = quality_evaluate(inference_type=DET, images=images, label_ids=detection.class_ids,
                                min_threshold=detection.min_threshold)
    assert answer["status"] == "ready" and answer["images"] == 3 and len(answer["coco"]) == 12
    assert answer["coco"] == pytest.approx(expected["coco_stats"])
    assert answer["compare"]["verdict"] in ("shadow better", "shadow worse", "no clear difference")
    again = get(client, api_tokens["admin"], detection, "/stats", service="object_detection").json()
    assert again["computed_at"] == answer["computed_at"]  # stored: the same reviews are not evaluated twice
    per_asset = get(client, api_tokens["admin"], detection, "/predictions/stats", service="object_detection").json()
    assert per_asset["count"] == 3
    first = per_asset["items"][0]
    assert first["true_positives"] + first["false_negatives"] == 1


def test_object_detection_over_too_many_reviews_is_refused_unless_a_report_is_stored(
        client, api_tokens, detection, frames, monkeypatch):
    from monitoring.services import quality

    ready = get(client, api_tokens["admin"], detection, "/stats", service="object_detection").json()
    assert ready["status"] == "ready" and ready["images"] == 3
    monkeypatch.setattr(quality, "MAX_ASSETS", 2)
    # The report of these 3 reviews is stored: it is answered, however many they are.
    stored = get(client, api_tokens["admin"], detection, "/stats", service="object_detection").json()
    assert stored["status"] == "ready" and stored["computed_at"] == ready["computed_at"] and stored["coco"] == ready["coco"]
    # A window with no stored report and over the limit: a JSON refusal naming the field, after a bounded count.
    since = (timezone.now() - dt.timedelta(days=10)).timestamp()
    refused = get(client, api_tokens["admin"], detection, "/stats", service="object_detection", from_timestamp=since)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "includes" and "more than 2 reviewed" in refused.json()["message"]


def test_drift_answers_windows_features_tests_and_verdicts(client, api_tokens, detection, frames):
    answer = get(client, api_tokens["admin"], detection, "/stats", service="ks_drift").json()
    assert answer["reference"]["kind"] == "window" and answer["window"] == "day"
    assert answer["windows"] and {f["feature"] for f in answer["windows"][0]["features"]} == set(answer["features"])
    for feature in answer["windows"][-1]["features"]:
        assert feature["test"] in ("ks", "chi_square", "wasserstein_norm", "jensen_shannon")
        assert feature["threshold"] in (0.05, 0.1)
    now = timezone.now()
    drift_reference_set(deployment=detection, start=now - dt.timedelta(days=4), end=now)
    report = drift_report(deployment=detection, start=now - dt.timedelta(days=4), end=now, window="day")
    assert report["reference"]["size"] == 6 and report["reference"]["description"] == "the window an ML lead chose"


@pytest.mark.parametrize("params, field", [
    ({"service": "nope"}, "service"), ({"metric": "NOPE"}, "metric"),
    ({"service": "metrics", "from_timestamp": "yesterday"}, "from_timestamp"),
    ({"service": "metrics", "since": "-5"}, "since"), ({"service": "metrics", "includes": "not-a-uuid"}, "includes"),
    ({"service": "metrics", "model_id": "7"}, "model_id"), ({"service": "metrics", "role": "understudy"}, "role"),
    ({"service": "metrics", "from_timestamp": "2000000000", "to_timestamp": "1000000000"}, "from_timestamp"),
])
def test_bad_parameters_name_their_field(client, api_tokens, detection, params, field):
    answer = get(client, api_tokens["admin"], detection, "/stats", **params)
    assert answer.status_code == 400 and field in [error["field"] for error in answer.json()["errors"]]


def test_members_only_and_the_jwt_of_the_deployment(client, api_tokens, outsider_token, detection, deployments,
                                                    api_login, frames):
    assert get(client, outsider_token, detection, "/stats", service="metrics").status_code == 404
    jwt = api_login(api_tokens["admin"], deployments[CLS])
    assert get(client, jwt, detection, "/stats", service="metrics").status_code == 401
    own = api_login(api_tokens["admin"], detection)
    assert get(client, own, detection, "/stats", service="metrics").status_code == 200


def test_a_page_of_predictions_leaves_no_reference_cycle_of_model_rows(client, api_tokens, detection, frames):
    """Cycles (an asset holding its prefetched predictions, each pointing back at it) are freed only by the
    collector's full passes, which then land in a request: a page must be freed by reference counting alone."""
    import gc

    url = f"/api/deployment/{detection.id}/predictions/stats"
    headers = {"Authorization": f"Bearer {api_tokens['admin']}"}
    assert client.get(url, {"service": "metrics"}, headers=headers).json()["count"] == 6
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        answer = client.get(url, {"service": "metrics"}, headers=headers)
        gc.collect()
        left = [type(thing).__name__ for thing in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert len(answer.json()["items"]) == 6
    assert not {"PredictedAsset", "Prediction"} & set(left), left
