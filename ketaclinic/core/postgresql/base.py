"""Django's PostgreSQL backend, with a health check that does not ask the server each request.

Persistent connections (CONN_MAX_AGE=None) are checked at the first query of every request
(CONN_HEALTH_CHECKS), so that a connection the server closed while the worker was idle (a
restart, an administrator's pg_terminate_backend, a failover) is replaced before the request
uses it instead of answering 500. Django checks by running `SELECT 1`: one round trip to the
server on every request, which on a loaded machine means the web worker sleeps until the server
answers and then waits for a CPU again (issue 13: a JSON write on PostgreSQL made six round
trips, this was one of them).

Here a connection that is idle (no transaction open) and whose socket has nothing to read is
usable without asking: a server that closes a connection says so on its socket (an error
message and end-of-file, or a reset), which then is readable, and an idle, healthy connection
receives nothing unasked (ketaclinic does not LISTEN). Anything else (something to read, a
transaction open or failed, a connection psycopg marked broken) is checked Django's way with
`SELECT 1`, which also reads whatever was waiting. A peer that vanished without a word (no
end-of-file, no reset) is not seen here; `SELECT 1` would have waited for TCP's timeout on it.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq

_IDLE = pq.TransactionStatus.IDLE
_OK = pq.ConnStatus.OK


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        driver = self.connection
        if driver is None or driver.closed or driver.broken:
            return False
        pgconn = driver.pgconn
        if pgconn.status == _OK and pgconn.transaction_status == _IDLE and not _readable(pgconn):
            return True
        return bool(super().is_usable())

    def close_if_unusable_or_obsolete(self) -> None:
        super().close_if_unusable_or_obsolete()
        # After an error Django checks the connection here and marks it checked: the next
        # request would then skip its own check, however long the worker idles in between (a
        # server restart meanwhile answered 500). Django's second call at request_started used
        # to clear the mark; that call is dropped (core.request_signals), so it is cleared here.
        self.health_check_done = False


def _readable(pgconn: Any) -> bool:
    """Something (or end-of-file, or an error) waits on the connection's socket."""
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):  # no socket any more: ask Django's way
        return True
