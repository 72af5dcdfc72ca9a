"""Alerts end to end: a real Redis, a real Celery worker and a real beat (Celery's scheduler, embedded in a thread
with a one-second schedule for the alerts task) evaluate a rule that becomes true once predictions are ingested; its
webhook reaches an HTTP server of the test, through a failed first attempt and the task's retry; then the condition
ends and exactly one resolved message follows."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.beat import EmbeddedService

from dashboard.models import PredictedAsset
from monitoring.models import Alert, AlertKind, AlertStatus, NotificationState
from monitoring.services.alerts import alert_rule_create
from monitoring.services.ingest import prediction_ingest
from tests.helpers import celery_app_configured, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DET = "OBJECT_DETECTION"


class Webhook:
    """An HTTP server on 127.0.0.1 recording every POST; it answers 503 to the first `failures` of them."""

    def __init__(self, failures: int = 0):
        self.received, self.failures, self.lock = [], failures, threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    failing = outer.failures > 0
                    outer.failures -= failing
                    outer.received.append({"body": body, "answered": 503 if failing else 200})
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accepted(self, event: str) -> list[dict]:
        with self.lock:
            return [hit["body"] for hit in self.received if hit["answered"] == 200 and hit["body"]["event"] == event]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def beat(celery_app_live, tmp_path):
    """Celery beat (its real scheduler, in a thread of this process) sending the alerts task every second."""
    schedule = {"alerts-evaluate": {"task": "monitoring.tasks.alerts_evaluate", "schedule": 1.0,
                                    "options": {"expires": 5}}}
    with celery_app_configured(celery_app_live, beat_schedule=schedule):
        service = EmbeddedService(celery_app_live, thread=True, max_interval=1,
                                  schedule_filename=str(tmp_path / "celerybeat-schedule"))
        service.start()
        try:
            yield service
        finally:
            service.stop()
            service.join(10)


def beat_runs(beat) -> int:
    """How many times the beat has sent the alerts task."""
    entry = beat.service.scheduler.schedule.get("alerts-evaluate")
    return entry.total_run_count if entry else 0


def test_a_latency_rule_fires_through_worker_and_beat_and_resolves_with_one_message(
        celery_worker_live, beat, deployments, monitor_payload, users):
    deployment = deployments[DET]
    with Webhook(failures=1) as webhook:
        rule = alert_rule_create(deployment=deployment, created_by=users["ml_lead"], kind=AlertKind.LATENCY_P95,
                                 threshold=1000, window_minutes=60, webhook_url=webhook.url)
        # No prediction yet: the beat has the rule evaluated twice and nothing fires.
        wait_until(lambda: beat_runs(beat) >= 2, timeout=10, message="the beat sent no alerts task")
        assert not Alert.objects.filter(rule=rule).exists()

        slow = prediction_ingest(deployment=deployment, payload=monitor_payload(DET, latency=3.0)).asset
        alert = wait_until(lambda: Alert.objects.filter(rule=rule, status=AlertStatus.FIRING).first(), timeout=20,
                           message="the rule did not fire within 20 s of the slow prediction")
        assert alert.value == pytest.approx(3000, rel=0.2)  # p95 read from the latency histogram's 3 s bin
        # The first POST was answered 503; the task's retry (2 s later) delivered it.
        wait_until(lambda: webhook.accepted("firing"), timeout=20, message="the firing message never arrived")
        firing = webhook.accepted("firing")
        assert len(firing) == 1 and firing[0]["alert_id"] == str(alert.pk) and firing[0]["status"] == "firing"
        assert firing[0]["rule"]["kind"] == "latency_p95" and firing[0]["deployment"]["id"] == str(deployment.id)
        assert [hit["answered"] for hit in webhook.received] == [503, 200]
        alert.refresh_from_db()
        assert (alert.firing_notification, alert.notification_attempts) == (NotificationState.SENT, 2)

        # Forty fast predictions: the window's p95 falls under the limit and the alert resolves.
        for _ in range(40):
            prediction_ingest(deployment=deployment, payload=monitor_payload(DET, latency=0.02))
        wait_until(lambda: Alert.objects.filter(pk=alert.pk, status=AlertStatus.RESOLVED).exists(), timeout=30,
                   message="the alert did not resolve within 30 s of the fast predictions")
        wait_until(lambda: webhook.accepted("resolved"), timeout=15, message="the resolved message never arrived")
        # More beat ticks: nothing else is sent, nothing fires again.
        ticks = beat_runs(beat)
        wait_until(lambda: beat_runs(beat) >= ticks + 3, timeout=15)
        resolved = webhook.accepted("resolved")
        assert len(resolved) == 1 and resolved[0]["alert_id"] == str(alert.pk) and resolved[0]["status"] == "resolved"
        assert len(webhook.received) == 3 and len(webhook.accepted("firing")) == 1
        assert Alert.objects.filter(rule=rule).count() == 1
        alert.refresh_from_db()
        assert alert.resolved_notification == NotificationState.SENT and alert.resolved_at is not None
        assert PredictedAsset.objects.filter(deployment=deployment).count() == 41 and slow.latency == 3.0
