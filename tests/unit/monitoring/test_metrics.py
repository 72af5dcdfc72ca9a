"""GET /metrics: the stats rollups in Prometheus' text format, behind LOUPE_METRICS_TOKEN."""
import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dashboard.models import PredictedAsset
from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh

DET = "OBJECT_DETECTION"
TOKEN = "scrape-me-7f3a"


@pytest.fixture
def scraped(client, settings):
    settings.LOUPE_METRICS_TOKEN = TOKEN

    def scrape() -> dict:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain"), response.content
        return {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    return scrape


def samples(family, name, **labels):
    return [s for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def test_the_scrape_counts_predictions_by_role_reviews_and_latency_from_the_rollups(
    scraped, deployments, monitor_payload,
):
    detection = deployments[DET]
    for index, latency in enumerate([0.004, 0.02, 0.3]):
        payload = monitor_payload(DET, with_shadow=index == 0, latency=latency,
                                  timestamp=(timezone.now() - dt.timedelta(minutes=5)).timestamp())
        prediction_ingest(deployment=detection, payload=payload)
    PredictedAsset.objects.filter(pk=PredictedAsset.objects.first().pk).update(status="REVIEWED")
    stats_refresh(deployment=detection)

    families = scraped()
    labels = {"deployment_id": str(detection.id), "deployment": detection.name}
    assert samples(families["loupe_predictions"], "loupe_predictions_total", role="champion", **labels)[0].value == 3
    assert samples(families["loupe_predictions"], "loupe_predictions_total", role="shadow", **labels)[0].value == 1
    assert samples(families["loupe_reviews"], "loupe_reviews_total", **labels)[0].value == 1
    latency = families["loupe_prediction_latency_seconds"]
    assert samples(latency, "loupe_prediction_latency_seconds_count", role="champion", **labels)[0].value == 3
    assert samples(latency, "loupe_prediction_latency_seconds_sum", role="champion", **labels)[0].value == \
        pytest.approx(0.324)
    buckets = {float(s.labels["le"]): s.value for s in samples(latency, "loupe_prediction_latency_seconds_bucket",
                                                                role="champion", **labels)}
    assert buckets[float("inf")] == 3
    assert [n for bound, n in sorted(buckets.items())] == sorted(buckets.values())  # cumulative
    assert min(n for bound, n in buckets.items() if bound >= 0.5) == 3 and max(
        n for bound, n in buckets.items() if bound < 0.004) == 0
    # Frames whose worker's share is not done yet (no worker ran here).
    assert samples(families["loupe_frames_waiting"], "loupe_frames_waiting", **labels)[0].value == 3


def test_without_the_token_configured_or_given_it_answers_json_errors(client, settings):
    settings.LOUPE_METRICS_TOKEN = ""
    off = client.get("/metrics")
    assert off.status_code == 404 and off.json()["errors"] == [{"field": "LOUPE_METRICS_TOKEN", "message": "not set"}]
    settings.LOUPE_METRICS_TOKEN = TOKEN
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "Authorization"
