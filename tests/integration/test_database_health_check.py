"""The PostgreSQL backend's health check (dashboard/backends/postgresql): a kept connection is reused without a
round trip, and one the server ended is found and replaced before a request uses it."""
import psycopg
import pytest
from django.db import close_old_connections, connection, connections

from tests.helpers import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

DET = "OBJECT_DETECTION"


def _server_ends(pid: int) -> None:
    """The server ends backend `pid`, as a restart or an administrator does."""
    params = connection.get_connection_params()
    with psycopg.connect(**{key: value for key, value in params.items() if key != "cursor_factory"},
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_an_idle_connection_is_checked_without_a_statement(monkeypatch):
    assert connection.vendor == "postgresql" and type(connections["default"]).__module__ == "dashboard.backends.postgresql.base"
    connection.ensure_connection()
    statements = []
    raw = connection.connection
    monkeypatch.setattr(type(raw), "cursor", lambda self, *a, **k: statements.append(a) or psycopg.Connection.cursor(
        self, *a, **k))
    assert connection.is_usable()
    assert statements == []


def test_a_connection_the_server_ended_is_not_usable():
    connection.ensure_connection()
    _server_ends(connection.connection.info.backend_pid)
    wait_until(lambda: not connection.is_usable(), timeout=5, message="the ended connection still looks usable")
    connection.close()  # the test database's flush after the test needs a connection of its own


def test_a_request_after_the_server_ended_its_connection_is_answered(deployments, api_tokens, api_login,
                                                                     monitor_post, monitor_payload, settings):
    deployment = deployments[DET]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    connection.ensure_connection()
    # Kept between requests, as CONN_MAX_AGE keeps it in production.
    connection.close_at = None
    ended = connection.connection.info.backend_pid
    _server_ends(ended)
    wait_until(lambda: not connection.is_usable(), timeout=5)
    close_old_connections()  # what the next request's start does: the health check runs before its first statement
    response = monitor_post(deployment, monitor_payload(DET), jwt)
    assert response.status_code == 201, response.content
    assert connection.connection.info.backend_pid != ended
