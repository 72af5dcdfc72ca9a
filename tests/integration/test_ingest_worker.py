"""The per-frame worker as production runs it (a `celery worker` process): killed mid-batch it loses no frame and
no frame is processed twice; it keeps its database connection between tasks and survives a database restart."""
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from dashboard.models import PredictedAsset
from monitoring.models import AssetFeatures, StatsContribution
from monitoring.services.ingest import prediction_ingest
from tests.helpers import wait_until
from tests.integration.test_faults import pg_ctl  # noqa: F401  (the fixture restarting the throwaway PostgreSQL)

pytestmark = pytest.mark.django_db(transaction=True)

DET = "OBJECT_DETECTION"
ROOT = Path(__file__).resolve().parents[2]
PROCESSED = re.compile(r"frames processed: ([0-9a-f\- ]*)")


def _database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    return (f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST']}:{settings['PORT']}"
            f"/{settings['NAME']}")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@pytest.fixture
def worker_process(celery_app_live, redis_server, settings, tmp_path):
    """worker_process(name, **environment) -> (process, log path): `celery -A dashboard worker -c 1` on the test's
    database, Redis and media; stopped (its whole process group) after the test."""
    started = []

    def start(name: str, **environment):
        log = tmp_path / f"{name}.log"
        env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": redis_server,
               "MEDIA_ROOT": str(settings.MEDIA_ROOT), "LOUPE_OUTLIER_REFERENCE_SIZE": "10",
               **{key: str(value) for key, value in environment.items()}}
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-c", "1", "--loglevel", "info",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process)
        return process, log

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _ingest(deployments, monitor_payload, jpeg_bytes, count: int, start: int = 0) -> list[PredictedAsset]:
    return [prediction_ingest(deployment=deployments[DET], payload=monitor_payload(
        DET, image=jpeg_bytes(160, 120, seed=start + index), width=160, height=120)).asset
        for index in range(start, start + count)]


def _processed_in_logs(*logs: Path) -> Counter:
    counts: Counter = Counter()
    for log in logs:
        for match in PROCESSED.finditer(log.read_text(errors="replace")):
            counts.update(match.group(1).split())
    return counts


def test_a_worker_killed_mid_batch_loses_no_frame_and_no_frame_is_processed_twice(
    worker_process, deployments, monitor_payload, jpeg_bytes,
):
    from monitoring.services.frames import predicted_assets_catch_up

    assets = _ingest(deployments, monitor_payload, jpeg_bytes, 30)  # their one drain waits in Redis
    # The fifth frame's image becomes a pipe nobody writes to: the first batch (the 8 oldest frames) stops there,
    # its first four frames computed, nothing committed.
    blocked = Path(default_storage.path(assets[4].data.image.name))
    content = blocked.read_bytes()
    blocked.unlink()
    os.mkfifo(blocked)

    first, first_log = worker_process("first", LOUPE_FRAME_BATCH=8)

    def reading_the_pipe():
        return any(Path(f"/proc/{child}/wchan").read_text() == "wait_for_partner" for child in _children(first.pid))

    wait_until(reading_the_pipe, timeout=60, message="the worker never reached the fifth frame")
    assert not PredictedAsset.objects.filter(processed_at__isnull=False).exists()
    assert not AssetFeatures.objects.exists()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    blocked.unlink()
    blocked.write_bytes(content)

    # Its drain's message waits in Redis for its visibility timeout, and its request's key for a few seconds: the
    # sweep (sent here as the beat does) brings every frame to the next worker.
    second, second_log = worker_process("second", LOUPE_FRAME_BATCH=8)
    predicted_assets_catch_up(older_than=dt.timedelta(0), limit=100)
    wait_until(lambda: not PredictedAsset.objects.filter(processed_at__isnull=True).exists(), timeout=120,
               message="frames still waiting after the restart")

    counts = _processed_in_logs(first_log, second_log)
    assert set(counts) == {str(asset.pk) for asset in assets}
    assert set(counts.values()) == {1}, {pk: n for pk, n in counts.items() if n != 1}
    assert AssetFeatures.objects.count() == StatsContribution.objects.count() == 30
    # The frames processed before the reference existed are scored by the rescore its build sent.
    wait_until(lambda: not PredictedAsset.objects.filter(outlier_score__isnull=True).exists(), timeout=60)
    assert not PredictedAsset.objects.filter(data__thumbnail="").exists()


def _worker_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.pg_restart
def test_the_worker_keeps_its_connection_between_tasks_and_survives_a_database_restart(
    worker_process, deployments, monitor_payload, jpeg_bytes, pg_ctl,
):
    def processed(asset):
        return PredictedAsset.objects.filter(pk=asset.pk, processed_at__isnull=False).exists()

    worker, log = worker_process("worker", DATABASE_CONN_MAX_AGE=600)
    first = _ingest(deployments, monitor_payload, jpeg_bytes, 1)[0]
    wait_until(lambda: processed(first), timeout=60, message="the first frame was not processed")
    time.sleep(2)  # the stats refresh the frame asked for runs a second later, on the same connection
    backends = _worker_backends()
    assert backends
    second = _ingest(deployments, monitor_payload, jpeg_bytes, 1, start=1)[0]
    wait_until(lambda: processed(second), timeout=30, message="the second frame was not processed")
    time.sleep(2)
    # Celery's own fixup would have closed it after each task: a new backend (a new pid) every task.
    assert _worker_backends() == backends

    pg_ctl("restart", "-m", "fast", "-w")
    connection.close()  # the test's own connection died with the server too
    third = _ingest(deployments, monitor_payload, jpeg_bytes, 1, start=2)[0]
    # Without the health check the task's first query fails on the dead connection, and the frame would wait
    # for the sweep (LOUPE_WORK_GRACE_SECONDS, 30 s, then the beat): here no beat runs at all.
    wait_until(lambda: processed(third), timeout=20, message=f"the frame after the restart was not processed:\n"
                                                             f"{log.read_text(errors='replace')[-3000:]}")
    assert _worker_backends().isdisjoint(backends)
