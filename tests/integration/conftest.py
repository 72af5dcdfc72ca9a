"""Real servers for integration tests: a private redis-server and a Celery worker (in a thread) using it."""

import pytest

from tests.fixtures import *  # noqa: F401,F403  (the suite-wide data fixtures)
from tests.helpers import RedisServer, celery_app_configured, celery_worker_running


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """URL of a private, non-persistent redis-server on a free loopback port (stopped at session end)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def celery_app_live(redis_server):
    """The project's Celery app, sending to the private Redis (broker and result backend) for this test."""
    from dashboard.celery import app

    with celery_app_configured(
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
    with celery_worker_running(celery_app_live) as worker:
        yield worker
