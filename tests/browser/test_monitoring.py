"""An ML lead in a real browser: the monitoring overview, a change of range, a latency point opening its prediction,
a drift cell, and a confusion-matrix cell opening the queue filtered to those predictions."""
import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitoring.models import QualityReport
from monitoring.services.ingest import prediction_ingest
from monitoring.services.quality import quality_report_compute
from monitoring.services.stats import stats_refresh
from reviews.services.review import review_submit
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)
DET = "OBJECT_DETECTION"


@pytest.fixture
def monitored(deployments, monitor_payload, jpeg_bytes, users):
    """Thirty detection frames over three days, with shadows, a third reviewed; rollups counted."""
    deployment = deployments[DET]
    for index in range(30):
        payload = monitor_payload(DET, image=jpeg_bytes(seed=700 + index), with_shadow=True,
                                  timestamp=(timezone.now() - dt.timedelta(hours=index * 2.3 + 0.5)).timestamp())
        payload["latency"] = 0.02 + index * 0.003
        asset = prediction_ingest(deployment=deployment, payload=payload).asset
        if index % 3 == 0:
            review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=1,
                          shapes=[{"type": "rectangle", "label_id": 1 + index % 2, "x": 5, "y": 10, "w": 20, "h": 20}])
    stats_refresh(deployment=deployment)
    return deployment


def point_of(page, name: str, dataset: int = 0, index: int = 0):
    """Where on the page a chart draws one of its points (read from the Chart.js instance on the canvas)."""
    canvas = page.locator(f"canvas[data-chart-name={name}]")
    x, y = canvas.evaluate(
        "(canvas, [d, i]) => { const p = Chart.getChart(canvas).getDatasetMeta(d).data[i]; return [p.x, p.y]; }",
        [dataset, index])
    box = canvas.bounding_box()
    return box["x"] + x, box["y"] + y


def test_an_ml_lead_reads_the_overview_and_follows_its_links(page, live_server, users, monitored, screenshot_dir):
    log_in(page, live_server, "ml_lead")
    page.goto(f"{live_server.url}/deployments/{monitored.id}/")
    page.click("a:has-text('Monitoring')")
    expect(page.locator("[data-kpi=count]")).to_have_text("30")
    page.locator("canvas[data-drawn]").nth(7).wait_for()
    page.screenshot(path=screenshot_dir / "monitoring-overview-1280.png", full_page=True)
    for figure in page.locator("figure.chart").all():
        figure.screenshot(path=screenshot_dir / f"monitoring-chart-{figure.get_attribute('data-chart')}.png")

    page.click("a.chip[data-range='24h']")
    page.wait_for_url(re.compile(r"range=24h"))
    expect(page.locator("[data-kpi=count]")).to_have_text("11")  # 0.5 h, 2.8 h, … 23.5 h ago
    page.locator("canvas[data-chart-name=latency_points][data-drawn]").wait_for()

    x, y = point_of(page, "latency_points")
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/deployments/{monitored.id}/assets/[0-9a-f-]+/$"))

    page.go_back()
    page.click("[data-testid=drift-heat-map] tbody tr:first-child td a")
    page.wait_for_url(re.compile(r"/monitoring/drift/\?feature=classes"))
    expect(page.locator("[data-testid=drift-test]")).to_contain_text("against")
    page.locator("canvas[data-drawn]").wait_for()
    page.screenshot(path=screenshot_dir / "monitoring-drift-cell.png", full_page=True)

    page.go_back()
    # The quality fragment asks a worker; here the worker's job is run in the test.
    page.locator("[data-testid=quality-computing]").wait_for()
    for report in QualityReport.objects.filter(deployment=monitored):
        quality_report_compute(report=report)
    page.locator("[data-testid=confusion-matrix]").wait_for(timeout=10000)
    page.screenshot(path=screenshot_dir / "monitoring-quality.png", full_page=True)
    page.click("[data-testid=confusion-matrix] td.hit a")
    page.wait_for_url(re.compile(r"/queue/\?q=status%3Areviewed"))
    expect(page.locator("#results .asset").first).to_be_visible()
    assert page.locator("#results .asset").count() >= 1


def test_the_overview_at_phone_width(browser, live_server, users, monitored, screenshot_dir):
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{monitored.id}/monitoring/")
    page.locator("canvas[data-drawn]").nth(7).wait_for()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone but the heat map's own scroller (not shown to labelers)
    page.screenshot(path=screenshot_dir / "monitoring-overview-390.png", full_page=True)
    context.close()
