"""Faults: the broker, the worker and the database go away during ingest and come back.

Every 201 is stored once, every error stored nothing, and every stored frame gets its thumbnail and outlier score
within a bounded time after recovery, without anyone doing anything but the beat's sweep.
"""
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dashboard.models import PredictedAsset
from monitoring.models import AssetFeatures
from tests.helpers import RedisServer, celery_app_configured, celery_worker_running, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DET = "OBJECT_DETECTION"
RECOVERY_SECONDS = 60  # every stored frame is processed within this long after the broker and a worker are back


@pytest.fixture
def killable_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def celery_app_killable(killable_redis):
    """The project's Celery app sending to the killable Redis (broker and results) for this test."""
    from dashboard.celery import app

    with celery_app_configured(app, broker_url=killable_redis.url, result_backend=killable_redis.url,
                               broker_transport_options={}, task_always_eager=False):
        yield app


def _send_frames(monitor_post, deployment, jwt, monitor_payload, jpeg_bytes, phase, count, answers):
    for index in range(count):
        filename = f"{phase}-{index}.jpg"
        payload = monitor_payload(DET, image=jpeg_bytes(160, 120, seed=hash(filename) % 10_000), width=160,
                                  height=120, filename=filename)
        response = monitor_post(deployment, payload, jwt, **{"Idempotency-Key": f"key-{filename}"})
        answers[filename] = (response.status_code, response.json())


def _unfinished() -> str:
    """Which frames lack what (processed, thumbnail, outlier score), for a failure's message."""
    lines = []
    for asset in PredictedAsset.objects.select_related("data"):
        missing = [name for name, done in (("processed", asset.processed_at), ("thumbnail", asset.data.thumbnail),
                                           ("score", asset.outlier_score is not None)) if not done]
        if missing:
            lines.append(f"{asset.filename} (no {', '.join(missing)})")
    return ", ".join(lines)


def _all_processed():
    assets = list(PredictedAsset.objects.select_related("data"))
    done = [a for a in assets if a.processed_at and a.data.thumbnail and a.outlier_score is not None]
    return len(done) == len(assets)


def test_redis_and_the_worker_killed_during_ingest_lose_no_frame_and_every_frame_catches_up(
    celery_app_killable, killable_redis, settings, deployments, api_tokens, api_login, monitor_post,
    monitor_payload, jpeg_bytes,
):
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10
    settings.LOUPE_WORK_GRACE_SECONDS = 1
    # Each of the sweep's messages does its own frame only, so each frame of the outage shows its send.
    settings.LOUPE_FRAME_BATCH = 1
    deployment = deployments[DET]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    answers = {}

    with celery_worker_running(celery_app_killable):
        _send_frames(monitor_post, deployment, jwt, monitor_payload, jpeg_bytes, "before", 8, answers)
    # The worker is gone, then the broker: Redis killed, its queued messages (and drain requests) with it.
    killable_redis.kill()
    started = time.monotonic()
    _send_frames(monitor_post, deployment, jwt, monitor_payload, jpeg_bytes, "outage", 10, answers)
    outage_seconds = time.monotonic() - started
    # A client retrying a frame whose answer it lost gets the stored prediction, not a copy.
    retried = monitor_post(deployment, monitor_payload(DET, filename="outage-0.jpg"), jwt,
                           **{"Idempotency-Key": "key-outage-0.jpg"})
    assert retried.status_code == 409 and retried.json()["id"] == answers["outage-0.jpg"][1]["id"]
    stored = {a.filename: a for a in PredictedAsset.objects.filter(deployment=deployment)}
    # Not one frame of the outage had its work sent, and that is recorded with each of them.
    assert all(stored[f"outage-{i}.jpg"].processed_at is None for i in range(10))
    print(f"\n10 frames ingested with Redis down in {outage_seconds:.2f} s ({outage_seconds / 10 * 1000:.0f} ms each)")

    # Recovery: Redis and a worker again, and the beat's sweep alone (sent to the worker as beat sends it; no new
    # frame's drain) until all caught up; then new frames, whose drain requests work again.
    from monitoring.tasks import predicted_assets_catch_up

    killable_redis.start()
    with celery_worker_running(celery_app_killable):
        recovered = time.monotonic()
        deadline = recovered + RECOVERY_SECONDS
        while not _all_processed():
            assert time.monotonic() < deadline, (
                f"frames not processed {RECOVERY_SECONDS} s after recovery: {_unfinished()}")
            predicted_assets_catch_up.delay()
            time.sleep(2)
        print(f"all {len(answers)} frames thumbnailed and scored {time.monotonic() - recovered:.1f} s after recovery")
        assert PredictedAsset.objects.filter(process_sends__gt=0, filename__startswith="outage").count() == 10
        _send_frames(monitor_post, deployment, jwt, monitor_payload, jpeg_bytes, "after", 4, answers)
        wait_until(_all_processed, timeout=RECOVERY_SECONDS, message="the frames after recovery were not processed")

    # Every answer is the truth: all 201, each stored exactly once, with the id it answered.
    assert {status for status, _ in answers.values()} == {201}, {k: v for k, v in answers.items() if v[0] != 201}
    stored = {a.filename: a for a in PredictedAsset.objects.filter(deployment=deployment)}
    assert sorted(stored) == sorted(answers)
    assert PredictedAsset.objects.count() == len(answers) == 22
    for filename, (_, body) in answers.items():
        assert str(stored[filename].oracle_prediction_id) == body["id"]
    assert AssetFeatures.objects.count() == len(answers)
    # The new frames' work came from their drain, not from the sweep.
    assert not PredictedAsset.objects.filter(process_sends__gt=0, filename__startswith="after").exists()


# ---------------------------------------------------------------- PostgreSQL restarted during ingest


@pytest.fixture
def pg_ctl():
    """pg_ctl(*args) on scripts/with_postgres.sh's throwaway cluster (as its owner, postgres, when run as root)."""
    pgdata, bindir = os.environ.get("LOUPE_TEST_PGDATA"), os.environ.get("LOUPE_TEST_PG_BINDIR")
    if not pgdata:
        pytest.fail("this test restarts the throwaway PostgreSQL of scripts/with_postgres.sh: run it through that "
                    "script (scripts/test.sh's PostgreSQL pass does)")
    as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    def run(*args):
        subprocess.run([*as_owner, str(Path(bindir) / "pg_ctl"), "-D", pgdata, *args], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)

    return run


@pytest.mark.pg_restart
def test_a_postgresql_restart_during_ingest_answers_503_for_what_it_did_not_store_and_loses_no_frame(
    pg_ctl, celery_worker_live, settings, deployments, api_tokens, api_login, monitor_post, monitor_payload,
    jpeg_bytes,
):
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10
    settings.LOUPE_WORK_GRACE_SECONDS = 1
    deployment = deployments[DET]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    restarted = threading.Event()

    failures = []

    def restart():
        time.sleep(0.5)
        try:
            pg_ctl("restart", "-m", "fast", "-w", "-t", "60")  # every open connection (web's, worker's) is cut
        except Exception as error:  # told to the test's thread below, not lost in this one
            failures.append(error)
        finally:
            restarted.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    answers, refusals, index = {}, [], 0
    # A client that sends each frame with its Idempotency-Key and sends it again after a 503, as loupe_sdk does.
    while index < 12 or not restarted.is_set():
        filename = f"frame-{index}.jpg"
        payload = monitor_payload(DET, image=jpeg_bytes(160, 120, seed=index), width=160, height=120,
                                  filename=filename)
        for _ in range(100):
            response = monitor_post(deployment, payload, jwt, **{"Idempotency-Key": f"key-{filename}"})
            if response.status_code != 503:
                break
            refusals.append(response)
            time.sleep(0.1)
        answers[filename] = (response.status_code, response.json())
        index += 1
    restarter.join()
    assert not failures, failures

    assert refusals, "no request met the restart: the test did not exercise the fault"
    for refusal in refusals:
        body = refusal.json()
        assert refusal["Retry-After"] and body["errors"] == [{"field": "database", "message": "unavailable"}], body
    # A frame answered 201, or 409 with its own id for a send whose answer was a 503 after all (none here: the
    # commit is the last thing before the answer), and stored exactly once.
    assert {status for status, _ in answers.values()} == {201}, {k: v for k, v in answers.items() if v[0] != 201}
    stored = {a.filename: a for a in PredictedAsset.objects.filter(deployment=deployment)}
    assert sorted(stored) == sorted(answers)
    for filename, (_, body) in answers.items():
        assert str(stored[filename].oracle_prediction_id) == body["id"]
    print(f"\n{len(answers)} frames sent across a PostgreSQL restart: {len(refusals)} answers 503, each sent again")

    # The worker's tasks cut by the restart are sent again by the sweep; every frame ends up processed.
    from monitoring.tasks import predicted_assets_catch_up

    deadline = time.monotonic() + RECOVERY_SECONDS
    while not _all_processed():
        assert time.monotonic() < deadline, "frames not processed after the restart: " + _unfinished()
        predicted_assets_catch_up.delay()
        time.sleep(2)
    assert AssetFeatures.objects.count() == len(answers)
