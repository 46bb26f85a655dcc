"""SQLite writers queue on the lock file (core.queued_sqlite3): the second writer starts as soon as
the first commits or rolls back, never while it is still writing."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from config.settings.database import sqlite_database
from ketaclinic.core.queued_sqlite3.base import DatabaseWrapper


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker: Any) -> Iterator[None]:
    """These tests open their own SQLite files (not the test database)."""
    with django_db_blocker.unblock():
        yield


def _wrapper(path: Path, alias: str) -> DatabaseWrapper:
    settings = dict(connections["default"].settings_dict)
    settings.update(sqlite_database(path))
    settings["ENGINE"] = "ketaclinic.core.queued_sqlite3"
    wrapper = DatabaseWrapper(settings, alias=alias)
    wrapper.ensure_connection()
    return wrapper


def _write(wrapper: Any, value: int) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", [value])


def test_the_next_writer_starts_when_the_first_commits(tmp_path: Path) -> None:
    first, second = _wrapper(tmp_path / "q.sqlite3", "q1"), _wrapper(tmp_path / "q.sqlite3", "q2")
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v INTEGER)")
    events: list[tuple[str, float]] = []

    def other_writer() -> None:
        second._start_transaction_under_autocommit()
        events.append(("second began", time.monotonic()))
        _write(second, 2)
        second._commit()

    first._start_transaction_under_autocommit()
    _write(first, 1)
    second.inc_thread_sharing()  # used from the thread below
    thread = threading.Thread(target=other_writer)
    thread.start()
    time.sleep(0.3)
    assert events == []  # still queued behind the first writer
    committed = time.monotonic()
    first._commit()
    thread.join(timeout=5)
    assert [name for name, _ in events] == ["second began"]
    assert events[0][1] - committed < 0.1  # no busy-handler sleep between the two
    with first.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert cursor.fetchall() == [(1,), (2,)]
    first.close()
    second.dec_thread_sharing()
    second.close()


def test_a_rollback_and_a_failed_begin_leave_the_queue(tmp_path: Path) -> None:
    first, second = _wrapper(tmp_path / "q.sqlite3", "q1"), _wrapper(tmp_path / "q.sqlite3", "q2")
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v INTEGER)")
    first._start_transaction_under_autocommit()
    assert first._queue_held
    first._rollback()
    assert not first._queue_held
    started = time.monotonic()
    second._start_transaction_under_autocommit()
    assert second._queue_held
    assert time.monotonic() - started < 0.1
    second._commit()
    first.close()
    second.close()
    assert not first._queue_held


def _hold_queue(holder: Any, seconds: float, released: list[float]) -> threading.Thread:
    """A thread that holds the queue for `seconds`, then lets go (recording when)."""
    taken = threading.Event()

    def hold() -> None:
        holder._queue_take()
        taken.set()
        time.sleep(seconds)
        released.append(time.monotonic())
        holder._queue_leave()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(timeout=5)
    return thread


def test_the_main_thread_waits_in_the_kernel_and_starts_when_the_queue_is_free(
    tmp_path: Path,
) -> None:
    # Gunicorn's sync workers write from their main thread: there the wait is a blocking flock
    # (no polling), woken when the holder lets go, and the alarm that bounds it is cleared.
    waiter, holder = _wrapper(tmp_path / "q.sqlite3", "q1"), _wrapper(tmp_path / "q.sqlite3", "q2")
    released: list[float] = []
    thread = _hold_queue(holder, 0.3, released)
    waiter._queue_take()
    taken = time.monotonic()
    thread.join(timeout=5)
    assert waiter._queue_held
    assert released
    assert 0 <= taken - released[0] < 0.1
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    waiter._queue_leave()
    waiter.close()
    holder.close()


def test_a_queue_held_past_the_busy_timeout_is_left_to_sqlite(tmp_path: Path) -> None:
    waiter, holder = _wrapper(tmp_path / "q.sqlite3", "q1"), _wrapper(tmp_path / "q.sqlite3", "q2")
    waiter.settings_dict["OPTIONS"] = {**waiter.settings_dict["OPTIONS"], "timeout": 0.2}
    released: list[float] = []
    thread = _hold_queue(holder, 0.6, released)
    started = time.monotonic()
    waiter._queue_take()
    waited = time.monotonic() - started
    assert not waiter._queue_held  # SQLite's own busy timeout decides from here
    assert 0.15 < waited < 0.5
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    thread.join(timeout=5)
    waiter._queue_take()  # and the queue was not kept by the timed-out wait
    assert waiter._queue_held
    waiter._queue_leave()
    waiter.close()
    holder.close()
