"""core.postgresql: the per-request health check asks the socket, not the server, and still
replaces a connection the server closed (PostgreSQL only: `make test-pg`)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the PostgreSQL backend (make test-pg)"
    ),
]


def _last_query(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row[0] if row else ""


@pytest.fixture
def other() -> Any:
    """A second connection of the same settings, idle in autocommit (outside the test's
    transaction), as a web worker's connection is between requests."""
    wrapper = connection.copy()
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 'before the check'")
    yield wrapper
    wrapper.close()


def test_an_idle_quiet_connection_is_usable_without_a_round_trip(other: Any) -> None:
    pid = other.connection.info.backend_pid
    assert other.is_usable() is True
    assert _last_query(pid) == "SELECT 'before the check'"  # no SELECT 1 was sent
    other.health_check_done = False
    other.close_if_health_check_failed()
    assert other.connection is not None
    assert _last_query(pid) == "SELECT 'before the check'"


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(
    other: Any,
) -> None:
    pid = other.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while _last_query(pid) and time.monotonic() < deadline:  # until the backend has gone
        time.sleep(0.01)
    assert other.is_usable() is False
    other.health_check_done = False
    other.close_if_health_check_failed()  # what the first query of a request runs
    with other.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert other.connection.info.backend_pid != pid


def test_a_connection_inside_a_transaction_is_asked_djangos_way(other: Any) -> None:
    pid = other.connection.info.backend_pid
    other.set_autocommit(False)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT 'in a transaction'")
        assert other.is_usable() is True
        assert _last_query(pid) == "SELECT 1"
    finally:
        other.rollback()
        other.set_autocommit(True)


def test_a_request_end_after_an_error_leaves_the_next_request_its_health_check(
    other: Any,
) -> None:
    """Django checks a connection that saw an error at the request's end and marks it checked;
    with request_started's second call gone (core.request_signals), the backend clears the mark
    so the next request checks again (the server may close it while the worker idles)."""
    other.errors_occurred = True
    other.close_if_unusable_or_obsolete()  # what request_finished runs
    assert other.connection is not None
    assert other.errors_occurred is False
    assert other.health_check_done is False
