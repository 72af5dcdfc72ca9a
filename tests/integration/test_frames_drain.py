"""One message for many frames, with the broker's real Redis: ingest asks for a drain of the deployment's waiting
frames, a key in Redis keeps the request from sending again while one waits or works, and a frame stored while the
key is taken is never left behind."""
import json

import pytest
import redis
from celery import signals

from dashboard.models import PredictedAsset
from monitoring.services import frames
from monitoring.services.ingest import prediction_ingest
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DET = "OBJECT_DETECTION"


@pytest.fixture
def broker(celery_app_live, redis_server):
    """A client of the private Redis the app sends to, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    return client


def _queued(client, task_name: str) -> int:
    """Messages of `task_name` waiting in the default queue."""
    return sum(json.loads(raw)["headers"]["task"] == task_name for raw in client.lrange("celery", 0, -1))


@pytest.fixture
def ingest(deployments, monitor_payload, jpeg_bytes):
    """ingest(count) -> that many new frames of the detection deployment, stored as the API stores them."""
    seeds = iter(range(1, 10_000))

    def make(count: int) -> list[PredictedAsset]:
        return [prediction_ingest(deployment=deployments[DET], payload=monitor_payload(
            DET, image=jpeg_bytes(160, 120, seed=next(seeds)), width=160, height=120)).asset for _ in range(count)]

    return make


def test_a_burst_of_frames_sends_one_message_and_its_drain_does_them_all(broker, ingest, deployments):
    from monitoring.tasks import frames_drain

    deployment = deployments[DET]
    key = f"loupe:frames-drain:{deployment.pk}:0"
    ingest(12)
    assert _queued(broker, "monitoring.tasks.frames_drain") == 1
    assert 0 < broker.pttl(key) <= frames.DRAIN_KEY_SECONDS * 1000

    assert frames_drain(str(deployment.pk)) == 12  # the task's body, as the worker runs it
    assert not PredictedAsset.objects.filter(processed_at__isnull=True).exists()
    assert not broker.exists(key)
    ingest(1)  # the request was let go: the next frame sends again
    assert _queued(broker, "monitoring.tasks.frames_drain") == 2


def test_a_frame_stored_while_the_drain_holds_the_request_is_done_by_its_last_look(broker, ingest, deployments,
                                                                                    monkeypatch):
    from monitoring.tasks import frames_drain

    deployment = deployments[DET]
    ingest(3)
    late = []
    release = frames.send_key_release

    def frame_arrives_then_release(*, key):
        # The drain has just found nothing more; a frame commits before the request is let go, so its ingest
        # sees the key taken and sends nothing.
        late.extend(ingest(1))
        release(key=key)

    monkeypatch.setattr(frames, "send_key_release", frame_arrives_then_release)
    assert frames_drain(str(deployment.pk)) == 4
    assert _queued(broker, "monitoring.tasks.frames_drain") == 1  # the burst's one message, nothing for the late one
    assert PredictedAsset.objects.get(pk=late[0].pk).processed_at is not None


def test_without_redis_answering_a_frame_still_sends_its_message(celery_app_live, ingest, monkeypatch, caplog):
    # A key that cannot be taken holds nothing back: the message is tried (and, the broker down, the sweep's).
    from dashboard.services import background
    from monitoring.tasks import frames_drain

    monkeypatch.setattr(background, "_broker_redis", lambda: redis.Redis(port=1, socket_connect_timeout=0.2))
    sent = []
    monkeypatch.setattr(frames_drain, "apply_async", lambda args=None, kwargs=None, **options: sent.append(args))
    ingest(2)
    assert len(sent) == 2
    assert "not taken" in caplog.text


def test_a_live_worker_ranks_a_burst_with_a_few_messages(celery_worker_live, broker, ingest, deployments,
                                                        settings):
    settings.LOUPE_FRAME_BATCH = 8
    runs = []

    def count(sender=None, **_):
        if sender.name == "monitoring.tasks.frames_drain":
            runs.append(1)

    signals.task_prerun.connect(count, weak=False)
    try:
        ingest(40)
        wait_until(lambda: not PredictedAsset.objects.filter(processed_at__isnull=True).exists(), timeout=60,
                   message="frames still waiting")
    finally:
        signals.task_prerun.disconnect(count)
    # One task per frame before; now a drain, the helpers its full batches asked for, and the requests of frames
    # that came after a drain let go.
    assert 1 <= len(runs) < 20, len(runs)
    wait_until(lambda: not broker.keys("loupe:frames-drain:*"), timeout=15, message="a drain kept its request")
