"""Smoke tests of the integration infrastructure itself: private Redis, live Celery worker, shared test DB."""
import os

import redis
from django.contrib.auth.models import User
from django.db import connection

from dashboard.celery import app


@app.task(name="tests.integration.create_user", ignore_result=False)  # settings ignore results
def create_user(username):
    # Runs in the worker's thread: proves it reaches the same test database through the ORM.
    User.objects.create(username=username)
    return username


def test_database_is_the_one_in_database_url():
    # scripts/with_postgres.sh exports a postgres:// DATABASE_URL; without it the suite runs on SQLite.
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected


def test_redis_server_answers(redis_server):
    assert redis.Redis.from_url(redis_server).ping()


def test_worker_writes_through_orm(celery_worker_live, wait_until):
    create_user.delay("infra-smoke-worker")
    wait_until(lambda: User.objects.filter(username="infra-smoke-worker").exists())


def test_result_backend_round_trip(celery_worker_live):
    assert create_user.delay("infra-smoke-result").get(timeout=15) == "infra-smoke-result"
    assert User.objects.filter(username="infra-smoke-result").exists()


def test_worker_answers_control_ping(celery_worker_live, wait_until):
    name = celery_worker_live.hostname

    def answered():
        # A broadcast sent before the worker's control consumer is up reaches nobody: ask again until it is.
        replies = celery_worker_live.app.control.ping(destination=[name], limit=1, timeout=2)
        return any(name in reply for reply in replies)

    wait_until(answered, timeout=30, interval=0.5, message=f"worker {name} never answered a control ping")
