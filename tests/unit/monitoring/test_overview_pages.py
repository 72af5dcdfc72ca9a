"""The monitoring overview, its chart endpoints, drift cells and quality fragment: figures, filters, roles."""
import datetime as dt
import json

import pytest
from django.utils import timezone

from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from monitoring.views.overview import CHART_TITLES
from reviews.services.review import review_submit
from tests.fixtures import PASSWORD

DET = "OBJECT_DETECTION"


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def frames(detection, monitor_payload, jpeg_bytes, users):
    made = []
    for index in range(4):
        payload = monitor_payload(DET, image=jpeg_bytes(seed=500 + index), with_shadow=True,
                                  tags=["gate"] if index < 2 else [],
                                  timestamp=(timezone.now() - dt.timedelta(hours=index * 5 + 1.5)).timestamp())
        made.append(prediction_ingest(deployment=detection, payload=payload).asset)
    review_submit(asset_id=made[0].pk, reviewer=users["labeler"], expected_version=1,
                  shapes=[{"type": "rectangle", "label_id": 1, "x": 5, "y": 10, "w": 20, "h": 20}])
    stats_refresh(deployment=detection)
    return made


def login(client, username):
    assert client.login(username=username, password=PASSWORD)


def test_the_overview_shows_the_figures_charts_and_drift_to_an_ml_lead(client, users, detection, frames):
    login(client, "ml_lead")
    page = client.get(f"/deployments/{detection.id}/monitoring/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-kpi="count">4<' in body and "1 / 4" in body
    assert body.count("data-chart-url=") == len(CHART_TITLES)
    assert 'data-testid="drift-heat-map"' in body and 'id="quality"' in body


def test_labelers_read_the_overview_without_drift_or_quality_and_outsiders_get_404(client, users, outsider,
                                                                                  detection, frames):
    login(client, "labeler")
    body = client.get(f"/deployments/{detection.id}/monitoring/").content.decode()
    assert "data-chart-url=" in body and "drift-heat-map" not in body and 'id="quality"' not in body
    assert client.get(f"/deployments/{detection.id}/monitoring/quality/").status_code == 403
    client.force_login(outsider)
    assert client.get(f"/deployments/{detection.id}/monitoring/").status_code == 404
    assert client.get(f"/deployments/{detection.id}/monitoring/charts/predictions.json").status_code == 404


@pytest.mark.parametrize("name", list(CHART_TITLES))
def test_every_chart_answers_json(client, users, detection, frames, name):
    login(client, "labeler")
    chart = client.get(f"/deployments/{detection.id}/monitoring/charts/{name}.json?range=24h").json()
    assert chart["title"] == CHART_TITLES[name] and chart["datasets"]
    # These frames were never scored: the outlier chart's buckets have no value, and it says it has nothing to draw.
    assert chart["empty"] is (name == "outlier")


def test_charts_follow_the_range_and_the_tag(client, users, detection, frames):
    login(client, "labeler")
    url = f"/deployments/{detection.id}/monitoring/charts/predictions.json"
    counts = lambda **params: sum(y for _, y in client.get(url, params).json()["datasets"][0]["points"])  # noqa: E731
    assert counts(range="24h") == 4 and counts(range="1h") == 0 and counts(range="24h", tag="gate") == 2
    points = client.get(f"/deployments/{detection.id}/monitoring/charts/latency_points.json?range=24h").json()
    champion = points["datasets"][0]["points"]
    assert len(champion) == 4 and all(p["url"].startswith(f"/deployments/{detection.id}/assets/") for p in champion)
    bad = client.get(url, {"range": "custom", "from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "from"
    assert client.get(f"/deployments/{detection.id}/monitoring/charts/nonsense.json").status_code == 404


def test_a_drift_cell_shows_both_distributions(client, users, detection, frames):
    login(client, "ml_lead")
    now = timezone.now()
    params = {"feature": "score", "from": (now - dt.timedelta(days=1)).isoformat(), "to": now.isoformat()}
    page = client.get(f"/deployments/{detection.id}/monitoring/drift/", params)
    assert page.status_code == 200 and b'data-testid="drift-test"' in page.content
    data = client.get(f"/deployments/{detection.id}/monitoring/drift/", {**params, "format": "json"}).json()
    assert len(data["reference"]) == len(data["current"]) == len(data["labels"])
    assert sum(data["current"]) == pytest.approx(1.0) and data["test"]["feature"] == "score"
    assert client.get(f"/deployments/{detection.id}/monitoring/drift/", {**params, "feature": "mood"}).status_code == 400


def test_quality_is_computed_by_a_worker_then_read(client, users, detection, frames, django_capture_on_commit_callbacks,
                                                   monkeypatch):
    from monitoring import tasks

    sent = []
    monkeypatch.setattr(tasks.quality_report_compute, "apply_async", lambda args, **options: sent.append(args[0]))
    login(client, "ml_lead")
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(f"/deployments/{detection.id}/monitoring/quality/?range=24h")
    assert b"quality-computing" in first.content and len(sent) == 1
    assert "A worker is measuring 1 reviewed prediction…" in first.content.decode()
    from monitoring.models import QualityReport
    from monitoring.services.quality import quality_report_compute

    quality_report_compute(report=QualityReport.objects.get(pk=sent[0]))
    ready = client.get(f"/deployments/{detection.id}/monitoring/quality/?range=24h").content.decode()
    assert 'data-testid="coco-stats"' in ready and 'data-testid="confusion-matrix"' in ready
    assert "reviewed_label%3A1" in ready or "reviewed_label:1" in ready
    assert 'data-testid="compare-verdict"' in ready


def test_the_deployment_page_links_to_monitoring(client, users, detection):
    login(client, "labeler")
    assert f"/deployments/{detection.id}/monitoring/".encode() in client.get(f"/deployments/{detection.id}/").content


def test_chart_json_escapes_nothing_into_html(client, users, detection, frames):
    # Labels with markup reach Chart.js as data, never as HTML.
    detection.labels.filter(class_id=1).update(name="<b>car</b>")
    login(client, "labeler")
    chart = client.get(f"/deployments/{detection.id}/monitoring/charts/labels.json").json()
    assert "<b>car</b>" in json.dumps(chart)
    page = client.get(f"/deployments/{detection.id}/monitoring/").content.decode()
    assert "<b>car</b>" not in page
