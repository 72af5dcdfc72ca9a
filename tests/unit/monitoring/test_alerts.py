"""Alert rules: firing and resolving from the rollups, the webhook to a real local server (retries, cool-down),
and the alerts page's roles, CSRF and errors."""
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.utils import timezone

from monitoring import tasks
from monitoring.models import Alert, AlertKind, AlertRule, AlertStatus, NotificationState, QualityReport
from monitoring.services.alerts import (alert_rule_create, alert_rule_update, alerts_active, alerts_evaluate)
from monitoring.services.ingest import prediction_ingest
from monitoring.services.stats import stats_refresh
from tests.fixtures import PASSWORD

DET = "OBJECT_DETECTION"


class WebhookServer:
    """An HTTP server on 127.0.0.1 recording every POST and answering the statuses it is given, then 200."""

    def __init__(self, statuses=()):
        self.bodies, self.statuses = [], list(statuses)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.bodies.append(json.loads(body))
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook():
    servers = []

    def start(statuses=()):
        servers.append(WebhookServer(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def detection(deployments):
    return deployments[DET]


@pytest.fixture
def slow_frames(detection, monitor_payload):
    """Three predictions of 250 ms in the last minutes, counted into the rollups."""
    for index in range(3):
        prediction_ingest(deployment=detection, payload=monitor_payload(
            DET, latency=0.25, timestamp=(timezone.now() - dt.timedelta(minutes=index + 1)).timestamp()))
    stats_refresh(deployment=detection)


def queued_notifications(callbacks) -> list:
    return [(callback.keywords["args"][0], callback.keywords["args"][1]) for callback in callbacks
            if getattr(callback, "keywords", {}).get("task") is tasks.alert_notify]


def test_a_latency_rule_fires_then_resolves_and_posts_each_transition_once(
        detection, users, slow_frames, webhook, django_capture_on_commit_callbacks):
    server = webhook()
    rule = alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95,
                             threshold=100, window_minutes=60, webhook_url=server.url)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate() == {"evaluated": 1, "fired": 1, "resolved": 0}
    [alert] = alerts_active(deployment=detection)
    assert 200 < alert.value < 350 and "p95 latency" in alert.message
    assert queued_notifications(callbacks) == [(str(alert.pk), "firing")]
    assert tasks.alert_notify.apply(args=[str(alert.pk), "firing"]).get() == "sent"
    # A duplicate of the same message (a redelivered task) sends nothing.
    assert tasks.alert_notify.apply(args=[str(alert.pk), "firing"]).get() == "skipped"
    assert [body["event"] for body in server.bodies] == ["firing"]
    assert server.bodies[0]["rule"]["kind"] == "latency_p95" and server.bodies[0]["deployment"]["id"] == str(detection.id)

    # Still slow a minute later: the same alert, no new message.
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=timezone.now() + dt.timedelta(minutes=1))["fired"] == 0
    assert queued_notifications(callbacks) == []

    # Two hours on, the window is empty: resolved, and the resolution is posted once.
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=timezone.now() + dt.timedelta(hours=2))["resolved"] == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None
    assert alerts_active(deployment=detection) == []
    assert queued_notifications(callbacks) == [(str(alert.pk), "resolved")]
    tasks.alert_notify.apply(args=[str(alert.pk), "resolved"])
    assert [body["event"] for body in server.bodies] == ["firing", "resolved"]
    assert server.bodies[1]["status"] == "resolved" and server.bodies[1]["resolved_at"]


def test_a_rule_under_its_limit_does_not_fire(detection, users, slow_frames):
    alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95, threshold=2000)
    assert alerts_evaluate()["fired"] == 0 and not Alert.objects.exists()


def test_a_webhook_answering_500_is_retried_until_it_takes_the_message(detection, users, slow_frames, webhook):
    server = webhook(statuses=[500, 500])
    alert_rule_create(deployment=detection, created_by=users["admin"], kind=AlertKind.LATENCY_P95, threshold=100,
                      webhook_url=server.url)
    alerts_evaluate()
    alert = Alert.objects.get()
    assert tasks.alert_notify.apply(args=[str(alert.pk), "firing"]).get() == "sent"
    assert [body["event"] for body in server.bodies] == ["firing"] * 3
    alert.refresh_from_db()
    assert alert.firing_notification == NotificationState.SENT and alert.notification_attempts == 3


def test_a_webhook_that_keeps_failing_is_recorded_as_failed(detection, users, slow_frames, webhook):
    server = webhook(statuses=[503] * 10)
    alert_rule_create(deployment=detection, created_by=users["admin"], kind=AlertKind.LATENCY_P95, threshold=100,
                      webhook_url=server.url)
    alerts_evaluate()
    alert = Alert.objects.get()
    assert tasks.alert_notify.apply(args=[str(alert.pk), "firing"]).get().startswith("failed")
    alert.refresh_from_db()
    assert len(server.bodies) == tasks.alert_notify.max_retries + 1
    assert alert.firing_notification == NotificationState.FAILED and "503" in alert.notification_error


def test_a_condition_that_flaps_within_the_cool_down_sends_one_message(
        detection, users, slow_frames, webhook, django_capture_on_commit_callbacks):
    server = webhook()
    alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95, threshold=100,
                      webhook_url=server.url)
    with django_capture_on_commit_callbacks() as callbacks:
        alerts_evaluate()
    for alert_id, event in queued_notifications(callbacks):
        tasks.alert_notify.apply(args=[alert_id, event])
    # The window empties (an old `now`), then fills again: a second alert, but no second message.
    rule = AlertRule.objects.get()
    Alert.objects.filter(rule=rule).update(status=AlertStatus.RESOLVED, resolved_at=timezone.now(),
                                           resolved_notification=NotificationState.SENT)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate()["fired"] == 1
    assert queued_notifications(callbacks) == []
    second = Alert.objects.get(status=AlertStatus.FIRING)
    assert second.firing_notification == NotificationState.SUPPRESSED
    assert len(server.bodies) == 1


def test_silence_fires_when_no_prediction_came_for_n_minutes(detection, users, slow_frames):
    alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.SILENCE, threshold=30)
    assert alerts_evaluate()["fired"] == 0
    assert alerts_evaluate(now=timezone.now() + dt.timedelta(minutes=45))["fired"] == 1
    assert "no prediction since" in Alert.objects.get().message


def test_map_rules_read_the_stored_quality_reports(detection, users):
    below = alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.MAP_BELOW, threshold=0.5)
    drop = alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.MAP_DROP, threshold=0.1)
    assert alerts_evaluate()["fired"] == 0
    QualityReport.objects.create(deployment=detection, key="a", computed_at=timezone.now() - dt.timedelta(hours=1),
                                 result={"champion": {"coco_stats": [0.7] + [0.0] * 11}})
    assert alerts_evaluate()["fired"] == 0
    QualityReport.objects.create(deployment=detection, key="b", computed_at=timezone.now(),
                                 result={"champion": {"coco_stats": [0.45] + [0.0] * 11}})
    assert alerts_evaluate()["fired"] == 2
    assert {alert.rule_id for alert in alerts_active(deployment=detection)} == {below.pk, drop.pk}
    assert Alert.objects.get(rule=drop).value == pytest.approx(0.25)


def test_rules_refuse_values_out_of_range_by_field(detection, users):
    from dashboard.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.UNDER_THRESHOLD,
                          threshold=3)
    assert refused.value.errors[0].field == "threshold"
    with pytest.raises(ValidationFailed) as refused:
        alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind="nonsense", threshold=1)
    assert refused.value.errors[0].field == "kind"


def test_updating_a_rules_condition_resolves_its_firing_alert(detection, users, slow_frames):
    rule = alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95,
                             threshold=100)
    alerts_evaluate()
    alert_rule_update(rule=rule, threshold=5000)
    assert alerts_active(deployment=detection) == []
    assert alerts_evaluate()["fired"] == 0


# The page


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_an_ml_lead_adds_edits_and_deletes_a_rule_on_the_page(client, detection, users):
    login(client, users["ml_lead"])
    url = f"/deployments/{detection.id}/monitoring/alerts/"
    answer = client.post(url, {"kind": "latency_p95", "threshold": "150", "window_minutes": "30", "webhook_url": ""})
    assert answer.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.threshold, rule.window_minutes, rule.created_by) == ("latency_p95", 150, 30, users["ml_lead"])
    answer = client.post(f"{url}{rule.pk}/", {"kind": "latency_p95", "threshold": "abc", "window_minutes": "30"})
    assert answer.status_code == 400 and "<code>threshold</code> must be a number" in answer.content.decode()
    client.post(f"{url}{rule.pk}/", {"kind": "silence", "threshold": "10", "window_minutes": "30", "active": "on"})
    rule.refresh_from_db()
    assert (rule.kind, rule.threshold) == ("silence", 10)
    client.post(f"{url}{rule.pk}/", {"action": "delete"})
    assert not AlertRule.objects.exists()


def test_labelers_read_the_alerts_page_but_cannot_change_rules_and_outsiders_get_404(client, detection, users,
                                                                                     outsider):
    rule = alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.SILENCE, threshold=5,
                             webhook_url="https://example.org/<b>hook</b>")
    login(client, users["labeler"])
    url = f"/deployments/{detection.id}/monitoring/alerts/"
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and 'data-testid="alert-rule"' in body and "alert-rule-form" not in body
    assert "<b>hook</b>" not in body
    assert client.post(url, {"kind": "silence", "threshold": "5", "window_minutes": "60"}).status_code == 403
    assert client.post(f"{url}{rule.pk}/", {"action": "delete"}).status_code == 403
    assert AlertRule.objects.count() == 1
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_the_rule_form_needs_the_csrf_token(detection, users):
    client = Client(enforce_csrf_checks=True)
    login(client, users["ml_lead"])
    answer = client.post(f"/deployments/{detection.id}/monitoring/alerts/",
                         {"kind": "silence", "threshold": "5", "window_minutes": "60"})
    assert answer.status_code == 403 and not AlertRule.objects.exists()


def test_the_overview_shows_firing_alerts_to_an_ml_lead(client, detection, users, slow_frames):
    alert_rule_create(deployment=detection, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95, threshold=100)
    alerts_evaluate()
    login(client, users["ml_lead"])
    body = client.get(f"/deployments/{detection.id}/monitoring/").content.decode()
    assert "1 firing" in body and 'data-testid="firing-alert"' in body and "p95 latency" in body
    assert f"/deployments/{detection.id}/monitoring/alerts/" in body
