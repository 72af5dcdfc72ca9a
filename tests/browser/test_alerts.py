"""An ML lead in a real browser adds an alert rule, sees a refused value named, then sees the rule fire on the
overview after the beat's evaluation."""
import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitoring.models import AlertRule
from monitoring.services.alerts import alerts_evaluate
from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)
DET = "OBJECT_DETECTION"


@pytest.fixture
def slow_deployment(deployments, monitor_payload):
    deployment = deployments[DET]
    for index in range(5):
        prediction_ingest(deployment=deployment, payload=monitor_payload(
            DET, latency=0.4, timestamp=(timezone.now() - dt.timedelta(minutes=index * 3 + 1)).timestamp()))
    stats_refresh(deployment=deployment)
    return deployment


def test_an_ml_lead_adds_a_rule_and_sees_it_fire_on_the_overview(page, live_server, users, slow_deployment,
                                                                 screenshot_dir):
    log_in(page, live_server, "ml_lead")
    page.goto(f"{live_server.url}/deployments/{slow_deployment.id}/monitoring/")
    expect(page.locator(".kpi:has-text('Alerts') strong")).to_have_text("None firing")
    page.click("a:has-text('Alert rules')")
    page.wait_for_url(re.compile(r"/monitoring/alerts/$"))

    form = page.locator("[data-testid=alert-rule-form]")
    form.locator("select[name=kind]").select_option("latency_p95")
    form.locator("input[name=threshold]").fill("lots")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=form-errors]")).to_contain_text("threshold")
    page.screenshot(path=screenshot_dir / "monitoring-alerts-error.png", full_page=True)

    form = page.locator("[data-testid=alert-rule-form]")
    form.locator("select[name=kind]").select_option("latency_p95")
    form.locator("input[name=threshold]").fill("150")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=alert-rule]")).to_have_count(1)
    assert AlertRule.objects.get().threshold == 150

    assert alerts_evaluate()["fired"] == 1  # what the beat does every minute
    page.reload()
    expect(page.locator("[data-testid=firing-alert]")).to_contain_text("p95 latency")
    page.screenshot(path=screenshot_dir / "monitoring-alerts.png", full_page=True)

    page.click("a:has-text('Monitoring')")
    expect(page.locator(".kpi:has-text('Alerts') strong")).to_have_text("1 firing")
    expect(page.locator(".kpi [data-testid=firing-alert]")).to_contain_text("p95 latency")
    page.locator(".kpi:has-text('Alerts')").screenshot(path=screenshot_dir / "monitoring-overview-alerts.png")
    page.screenshot(path=screenshot_dir / "monitoring-overview-firing.png")
