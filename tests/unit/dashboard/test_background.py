"""Faults: follow-up work is sent without letting a broker outage raise, and the export sweep sends lost jobs again."""
import datetime as dt

import pytest
from django.utils import timezone

from dashboard import tasks
from dashboard.models import Dataset, DatasetVersion, ExportJob, JobStatus
from dashboard.services.background import task_send, task_send_on_commit
from dashboard.services.datasets import export_jobs_catch_up
from tests.helpers import free_port


@pytest.fixture
def broker_down():
    from dashboard.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    app.conf.update(broker_url=f"redis://127.0.0.1:{free_port()}/0", broker_transport_options={})
    app._pool = None
    app.amqp._producer_pool = None
    yield app
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def version(organization):
    dataset = Dataset.objects.create(organization=organization, name="cars")
    return DatasetVersion.objects.create(dataset=dataset, version="v1", type="OBJECT_DETECTION", labels={"1": "car"})


def test_a_send_to_a_working_broker_is_true(db):
    assert task_send(task=tasks.data_thumbnail_make, args=["00000000-0000-0000-0000-000000000000"]) is True


def test_a_send_to_a_broker_that_is_down_is_false_logged_and_quick(broker_down, caplog):
    started = timezone.now()
    assert task_send(task=tasks.data_thumbnail_make, args=["00000000-0000-0000-0000-000000000000"]) is False
    assert (timezone.now() - started).total_seconds() < 5
    assert any("not sent (the broker is unavailable" in record.getMessage() for record in caplog.records)


def test_a_send_on_commit_waits_for_the_commit_and_never_raises(db, broker_down, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task_send_on_commit(task=tasks.data_thumbnail_make, args=["00000000-0000-0000-0000-000000000000"])
        pass
    assert len(callbacks) == 1  # queued for the commit, and its failure to send did not raise


def test_the_export_sweep_sends_pending_jobs_once_per_grace_period(version):
    old = ExportJob.objects.create(version=version, format="coco")
    ready = ExportJob.objects.create(version=version, format="coco", status=JobStatus.READY)
    new = ExportJob.objects.create(version=version, format="yolo")
    ExportJob.objects.filter(pk__in=[old.pk, ready.pk]).update(created_at=timezone.now() - dt.timedelta(minutes=5))

    assert export_jobs_catch_up(older_than=dt.timedelta(seconds=60), limit=10) == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.resent_at is not None and new.resent_at is None
    assert export_jobs_catch_up(older_than=dt.timedelta(seconds=60), limit=10) == 0  # its own grace period first


def test_the_export_sweep_stops_while_the_broker_is_down(version, broker_down):
    job = ExportJob.objects.create(version=version, format="coco")
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    assert export_jobs_catch_up(older_than=dt.timedelta(seconds=60), limit=10) == 0
    job.refresh_from_db()
    assert job.resent_at is None
