"""Faults: a committed frame answers 201 with the broker down, its work is recorded with it (processed_at), and the
sweep sends what was lost again, oldest first, in bounded batches; the queue page shows the backlog."""
import datetime as dt
import json
from contextlib import contextmanager

import pytest
from django.utils import timezone

from dashboard.models import PredictedAsset
from monitoring import tasks
from monitoring.services.frames import MAX_PROCESS_SENDS, predicted_assets_catch_up
from monitoring.services.ingest import prediction_ingest
from tests.helpers import free_port

DET = "OBJECT_DETECTION"


@contextmanager
def broker_down():
    """The project's Celery app sending to a Redis port nothing listens on: the broker is down."""
    from dashboard.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    app.conf.update(broker_url=f"redis://127.0.0.1:{free_port()}/0", broker_transport_options={})
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield app
    finally:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


@pytest.fixture
def jwt(deployments, api_tokens, api_login):
    return api_login(api_tokens["ml_lead"], deployments[DET])


def _age(asset_ids, seconds):
    PredictedAsset.objects.filter(pk__in=asset_ids).update(created_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_a_frame_stored_while_the_broker_is_down_answers_201_once_and_waits_for_its_work(
        deployments, monitor_payload, monitor_post, jwt, django_capture_on_commit_callbacks):
    payload = monitor_payload(DET, filename="outage.jpg")
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        response = monitor_post(deployments[DET], payload, jwt, **{"Idempotency-Key": "k-outage-1"})
    assert response.status_code == 201, response.content
    stored = PredictedAsset.objects.filter(deployment=deployments[DET], filename="outage.jpg")
    assert stored.count() == 1
    assert str(stored.get().oracle_prediction_id) == response.json()["id"]
    assert stored.get().processed_at is None
    # The client's retry after the lost answer: the stored prediction, no copy.
    with broker_down():
        again = monitor_post(deployments[DET], payload, jwt, **{"Idempotency-Key": "k-outage-1"})
    assert again.status_code == 409 and again.json()["id"] == response.json()["id"]
    assert stored.count() == 1


def test_the_send_after_commit_logs_instead_of_raising(deployments, monitor_payload, caplog,
                                                       django_capture_on_commit_callbacks):
    with broker_down(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET))
    assert len(callbacks) == 1
    assert PredictedAsset.objects.filter(pk=result.asset.pk).exists()
    assert any("not sent (the broker is unavailable" in record.getMessage() for record in caplog.records)


def test_the_worker_marks_the_frame_processed_once_its_work_is_done(deployments, monitor_payload):
    asset = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset
    assert asset.processed_at is None
    tasks.predicted_asset_process(str(asset.pk))
    asset.refresh_from_db()
    assert asset.processed_at is not None and asset.data.thumbnail


def test_the_sweep_sends_unprocessed_frames_past_the_grace_oldest_first_in_bounded_batches(deployments,
                                                                                          monitor_payload, settings):
    settings.LOUPE_FRAME_BATCH = 1  # a task does its own frame only: which frames wait is what this test sets
    assets = [prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset for _ in range(5)]
    for index, asset in enumerate(assets):
        _age([asset.pk], 600 - index * 60)  # assets[0] is the oldest
    fresh = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset
    tasks.predicted_asset_process(str(assets[1].pk))  # already processed: not sent

    assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=30), limit=2) == 2
    sends = dict(PredictedAsset.objects.values_list("pk", "process_sends"))
    assert [sends[asset.pk] for asset in assets] == [1, 0, 1, 0, 0]
    assert sends[fresh.pk] == 0  # within its grace period: its own message is probably on its way

    # The two just sent wait for their own grace period; the next oldest go.
    assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=30), limit=200) == 2
    sends = dict(PredictedAsset.objects.values_list("pk", "process_sends"))
    assert [sends[asset.pk] for asset in assets] == [1, 0, 1, 1, 1] and sends[fresh.pk] == 0
    assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=30), limit=200) == 0
    # A grace period later, the frames still not done are sent once more, the longest waiting first.
    PredictedAsset.objects.filter(process_sends=1).update(process_sent_at=timezone.now() - dt.timedelta(seconds=40))
    assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=30), limit=200) == 4


def test_the_sweep_gives_up_on_a_frame_whose_work_keeps_failing(deployments, monitor_payload):
    asset = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset
    _age([asset.pk], 600)
    for _ in range(MAX_PROCESS_SENDS):
        assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=0), limit=10) == 1
    assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=0), limit=10) == 0


def test_the_sweep_sends_nothing_and_stops_while_the_broker_is_down(deployments, monitor_payload):
    assets = [prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset for _ in range(3)]
    _age([asset.pk for asset in assets], 600)
    with broker_down():
        assert predicted_assets_catch_up(older_than=dt.timedelta(seconds=30), limit=10) == 0
    assert set(PredictedAsset.objects.values_list("process_sends", flat=True)) == {0}


def test_a_replaced_prediction_waits_for_its_own_work(deployments, monitor_payload):
    first = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset
    tasks.predicted_asset_process(str(first.pk))
    replaced = prediction_ingest(deployment=deployments[DET],
                                 payload=monitor_payload(DET, image=..., data_id=str(first.data_id),
                                                         filename=..., content_type=...)).asset
    assert replaced.pk == first.pk
    replaced.refresh_from_db()
    assert replaced.processed_at is None


def test_the_queue_page_says_how_many_frames_wait_to_be_scored(client, users, deployments, monitor_payload):
    assets = [prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset for _ in range(3)]
    client.force_login(users["labeler"])
    page = client.get(f"/deployments/{deployments[DET].pk}/queue/")
    assert page.status_code == 200
    assert "<strong>3</strong> frames wait to be scored" in page.content.decode()
    for asset in assets:
        tasks.predicted_asset_process(str(asset.pk))
    assert 'data-testid="backlog"' not in client.get(f"/deployments/{deployments[DET].pk}/queue/").content.decode()


def test_the_beat_runs_the_sweep_with_an_expiry(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["frames-catch-up"]
    assert entry["task"] == "monitoring.tasks.predicted_assets_catch_up"
    assert 0 < entry["options"]["expires"] < entry["schedule"]
    exports = settings.CELERY_BEAT_SCHEDULE["export-jobs-catch-up"]
    assert 0 < exports["options"]["expires"] < exports["schedule"]
    json.dumps(settings.CELERY_BEAT_SCHEDULE)  # plain data, as beat's schedule file keeps it
