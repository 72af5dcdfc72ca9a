"""Real servers for integration tests: a private redis-server and a Celery worker (in a thread) using it."""
import shutil
import socket
import subprocess
from contextlib import contextmanager

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker

from tests.fixtures import *  # noqa: F401,F403  (the suite-wide data fixtures)
from tests.helpers import free_port, wait_until


def _redis_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """URL of a private, non-persistent redis-server on a free loopback port (stopped at session end)."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.fail("redis-server is not installed: apt-get install redis-server (make test does it as root)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--logfile", str(workdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: proc.poll() is not None or _redis_answers(port), timeout=15)
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}; log: {workdir / 'redis.log'}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drop_cached_connections(app):
    # Celery caches its broker pool, producer pool and result backend on first use; after a URL
    # change they must be rebuilt, or sends would still go to the previous (filesystem) broker.
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@contextmanager
def _app_configured(app, **conf):
    saved = {key: app.conf[key] for key in conf}
    app.conf.update(conf)
    _drop_cached_connections(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _drop_cached_connections(app)


@pytest.fixture
def celery_app_live(redis_server):
    """The project's Celery app, sending to the private Redis (broker and result backend) for this test."""
    from dashboard.celery import app

    with _app_configured(
        app,
        broker_url=redis_server,
        result_backend=redis_server,
        broker_transport_options={},  # the filesystem transport's folders mean nothing to Redis
        task_always_eager=False,
    ):
        yield app


@pytest.fixture
def celery_worker_live(celery_app_live, transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming from the private Redis during this test.

    Requests transactional_db: the worker's thread only sees committed rows.
    """
    from django.db import connections

    def close_own_connections(**_):
        # The worker thread's connections must not outlive the test, or dropping the PostgreSQL test
        # database at session end fails ("being accessed by other users").
        for conn in connections.all(initialized_only=True):
            conn.close()

    signals.task_postrun.connect(close_own_connections, weak=False)
    try:
        with start_worker(celery_app_live, pool="solo", perform_ping_check=False,
                          loglevel="WARNING", shutdown_timeout=30) as worker:
            yield worker
    finally:
        signals.task_postrun.disconnect(close_own_connections)
