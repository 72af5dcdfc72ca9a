"""Shared test helpers; also loaded first as a pytest plugin (`-p tests.helpers` in pytest.ini).

Loaded that early (before pytest-django imports dashboard.settings) so that the settings see a
throwaway LOUPE_VAR: the suite never writes into a developer's var/ (media, broker folders, ...).
"""
import atexit
import os
import shutil
import socket
import tempfile
import time

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
