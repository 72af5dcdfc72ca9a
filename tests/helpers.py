"""Shared test helpers; also loaded first as a pytest plugin (`-p tests.helpers` in pytest.ini).

Loaded that early (before pytest-django imports dashboard.settings) so that the settings see a
throwaway LOUPE_VAR: the suite never writes into a developer's var/ (media, broker folders, ...).
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager

from scripts.run import redis_up  # whether a Redis answers PING on a loopback port

# Always a fresh dir, even if the shell exports LOUPE_VAR for `make run`. Paths and the broker then
# derive from it (filesystem broker; tests/integration points Celery at its own Redis), never from a
# developer's own dirs or servers. DATABASE_URL is kept: scripts/with_postgres.sh sets it.
_TEST_VAR = tempfile.mkdtemp(prefix="loupe-test-var-")
os.environ["LOUPE_VAR"] = _TEST_VAR
# Connections closed after each request: the live server's request threads end, and a connection they kept
# open would stop PostgreSQL from dropping the test database at the end of the run.
os.environ["DATABASE_CONN_MAX_AGE"] = "0"
for _name in ("MEDIA_ROOT", "STATIC_ROOT", "REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(_name, None)
os.makedirs(os.path.join(_TEST_VAR, "static"))  # STATIC_ROOT's default: WhiteNoise warns when it is missing
# atexit, not pytest_unconfigure: also runs when pytest stops early (e.g. the settings fail to import).
atexit.register(shutil.rmtree, _TEST_VAR, ignore_errors=True)


def wait_until(predicate, timeout=15.0, interval=0.1, message=None):
    """Poll `predicate` until it returns a truthy value (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(interval)


def free_port():
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _celery_cached_connections_drop(app):
    # Celery caches its broker pool, producer pool and result backend on first use; after a URL
    # change they must be rebuilt, or sends would still go to the previous (filesystem) broker.
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@contextmanager
def celery_app_configured(app, **conf):
    """The Celery `app` with `conf` applied (and its cached connections rebuilt) inside the block."""
    saved = {key: app.conf[key] for key in conf}
    app.conf.update(conf)
    _celery_cached_connections_drop(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _celery_cached_connections_drop(app)


class RedisServer:
    """A private, non-persistent redis-server on a free loopback port, which a test may kill and start again
    (on the same port, empty: what it had queued is lost, as in a real crash)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise AssertionError("redis-server is not installed: apt-get install redis-server (make test does it)")
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self.proc.poll() is not None or redis_up(self.port), timeout=15)
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}; see {self.workdir / 'redis.log'}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def celery_worker_running(app, **options):
    """A real Celery worker (solo pool, in a thread) consuming for `app` inside the block; leaving the block
    stops it. The worker thread's database connections are closed after each task: they must not outlive the test,
    or dropping the PostgreSQL test database at session end fails ("being accessed by other users")."""
    from celery import signals
    from celery.contrib.testing.worker import start_worker
    from django.db import connections

    def close_own_connections(**_):
        for conn in connections.all(initialized_only=True):
            conn.close()

    signals.task_postrun.connect(close_own_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30,
                          **options) as worker:
            yield worker
    finally:
        signals.task_postrun.disconnect(close_own_connections)
