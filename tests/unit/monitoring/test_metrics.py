"""/metrics: the rollups' totals and latency histograms in Prometheus' text format, behind a bearer token."""
import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from reviews.services.review import review_submit

DET = "OBJECT_DETECTION"
TOKEN = "s3cret-scrape-token"


@pytest.fixture
def counted(deployments, monitor_payload, users):
    deployment = deployments[DET]
    assets = []
    for index, latency in enumerate([0.002, 0.05, 0.3, 120.0]):
        payload = monitor_payload(DET, with_shadow=index < 2, latency=latency,
                                  timestamp=(timezone.now() - dt.timedelta(days=index)).timestamp())
        assets.append(prediction_ingest(deployment=deployment, payload=payload).asset)
    review_submit(asset_id=assets[0].pk, reviewer=users["labeler"], expected_version=1,
                  shapes=[{"type": "rectangle", "label_id": 1, "x": 5, "y": 10, "w": 20, "h": 20}])
    stats_refresh(deployment=deployment)
    return deployment


def scrape(client, token=TOKEN):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def samples(body: str) -> dict:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def test_metrics_expose_counters_and_latency_histograms_per_deployment_and_role(client, settings, counted):
    settings.LOUPE_METRICS_TOKEN = TOKEN
    answer = scrape(client)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.content.decode())}
    assert families["loupe_predictions"].type == "counter"
    assert families["loupe_prediction_latency_seconds"].type == "histogram"
    found = samples(answer.content.decode())
    champion = (("deployment", counted.name), ("deployment_id", str(counted.id)), ("role", "champion"))
    shadow = (("deployment", counted.name), ("deployment_id", str(counted.id)), ("role", "shadow"))
    assert found[("loupe_predictions_total", champion)] == 4
    assert found[("loupe_predictions_total", shadow)] == 2
    assert found[("loupe_reviewed_predictions_total", champion)] == 1
    assert found[("loupe_prediction_latency_seconds_count", champion)] == 4
    assert found[("loupe_prediction_latency_seconds_sum", champion)] == pytest.approx(120.352)
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in found.items()
                     if name == "loupe_prediction_latency_seconds_bucket" and ("role", "champion") in labels)
    assert buckets[-1] == (float("inf"), 4)
    # 2 ms, 50 ms and 300 ms fall under the finite edges; 120 s only under +Inf.
    assert max(value for le, value in buckets if le != float("inf")) == 3
    assert next(value for le, value in buckets if le >= 0.003) == 1
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)  # cumulative


def test_metrics_without_a_configured_token_say_how_to_enable_them(client, settings, counted):
    settings.LOUPE_METRICS_TOKEN = ""
    answer = scrape(client, token="anything")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["field"] == "LOUPE_METRICS_TOKEN" and "set it" in answer.json()["message"]


def test_metrics_refuse_a_missing_or_wrong_token_as_json(client, settings, counted):
    settings.LOUPE_METRICS_TOKEN = TOKEN
    for answer in (client.get("/metrics"), scrape(client, token="wrong")):
        assert answer.status_code == 401
        assert answer.json()["errors"] == [{"field": "Authorization",
                                            "message": "must be 'Bearer <LOUPE_METRICS_TOKEN>'"}]
        assert "loupe_predictions" not in answer.content.decode()


def test_metrics_read_the_rollups_in_a_bounded_number_of_queries(client, settings, counted,
                                                                django_assert_max_num_queries):
    settings.LOUPE_METRICS_TOKEN = TOKEN
    with django_assert_max_num_queries(3):
        assert scrape(client).status_code == 200
