"""Django's SQLite backend, with writers queued on a lock file beside the database.

SQLite lets one writer in at a time. A second one waits in SQLite's busy handler, which sleeps
1, 2, 5, 10, 15, 20, 25, 25... ms between tries: on a machine that fsyncs in a few milliseconds,
a waiting web worker usually sleeps past the moment the lock was freed while the other worker
takes it again, so under load one worker wrote and the other slept (issue 13: at 16 clients the
write API used a quarter of a core and waited the rest).

Here every transaction (`atomic`, which takes SQLite's write lock at BEGIN IMMEDIATE) first takes
an exclusive `flock` on `<database>.writer-lock` and lets it go at COMMIT or ROLLBACK: the next
writer starts within a fraction of a millisecond. A writer that finds the queue taken waits in
the kernel (a blocking `flock`, ended by an alarm at the busy timeout), which wakes it the moment
the holder lets go; polling it every 0.2 ms instead cost about 25 us of CPU a try, a few tenths
of a millisecond of every write when 16 clients kept both web workers writing (issue 13). Only the
main thread can take an alarm (and only when no other alarm is set): any other thread (the test
server's, runserver's) still polls every QUEUE_POLL_SECONDS. The lock file is
only a queue in front of SQLite's own lock, which still decides: a process that does not use it
(the sqlite3 shell, a backup) is waited for as before, and a writer that has not got the queue
within the busy timeout goes on to SQLite's own wait rather than failing. An in-memory database
has no file and no queue.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base

QUEUE_POLL_SECONDS = 0.0002


class _QueueTimeout(Exception):
    """Raised by the alarm that ends a blocking wait for the queue."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _QueueTimeout


def _wait_in_kernel(fd: int, timeout: float) -> bool | None:
    """Block in flock() until the queue is free, for at most `timeout` seconds: True when taken,
    False after the timeout; None when this thread cannot use an alarm (not the main thread, an
    alarm already set, another alarm handler installed), for the caller to poll instead."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0
        or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN)
    ):
        return None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _QueueTimeout:
        # The alarm may have come just after the lock was granted: let it go, so that the queue
        # is never held by a connection that does not know it holds it.
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue_fd: int | None = None
        self._queue_held = False

    def _queue_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name or name.startswith("file:"):
            return None
        return f"{name}.writer-lock"

    def _queue_take(self) -> None:
        if self._queue_fd is None:
            path = self._queue_path()
            if path is None:
                return
            self._queue_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._queue_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another writer holds the queue: wait below
        else:
            self._queue_held = True
            return
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        taken = _wait_in_kernel(self._queue_fd, timeout)
        if taken is not None:
            self._queue_held = taken  # not taken: SQLite's own busy timeout takes over
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # SQLite's own busy timeout takes over
                time.sleep(QUEUE_POLL_SECONDS)
                continue
            self._queue_held = True
            return

    def _queue_leave(self) -> None:
        if self._queue_held and self._queue_fd is not None:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
        self._queue_held = False

    def _start_transaction_under_autocommit(self) -> None:
        self._queue_take()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._queue_leave()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._queue_leave()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._queue_leave()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._queue_leave()
            if self._queue_fd is not None:
                os.close(self._queue_fd)
                self._queue_fd = None
