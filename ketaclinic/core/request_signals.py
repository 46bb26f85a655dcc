"""Request-signal receivers Django connects that have nothing to do in this deployment.

Django connects, for every request, `reset_queries` and `close_old_connections` to
request_started, and `close_old_connections`, `close_caches` and `reset_urlconf` to
request_finished. Sending them
cost about 30 us of a JSON write's ~0.9 ms of CPU (issue 13; bench/inprocess-style A/B in one
process: about 20 us for the two at request_started, 10 us for close_caches). Each is dropped
here only under the settings that make it a no-op:

- `close_old_connections` at request_started repeats what request_finished did at the end of the
  previous request, with nothing in between: a web worker (gunicorn's sync workers) touches the
  database only while it answers a request, and every response's close() sends request_finished
  (its closers cannot stop it). That call closes a connection whose autocommit was left off or
  whose error was not cleared by a working check, and one past CONN_MAX_AGE. Ages are the one
  thing that could change in between: so only when every database has CONN_MAX_AGE None
  (persistent, no age) or 0 (closed at every request's end). The health check flag: a clean
  connection leaves request_finished with `health_check_done` False, so the next request's first
  query checks it (CONN_HEALTH_CHECKS); after an error, Django's check at request_finished sets
  it True, and only the second call at request_started used to make the next request check again
  (a connection the server closed while the worker idled). ketaclinic's PostgreSQL backend
  resets it itself (core.postgresql.DatabaseWrapper.close_if_unusable_or_obsolete), so this holds
  only when every database with health checks uses that backend.
- `reset_queries` empties each connection's query log, which is written only under DEBUG or a
  forced debug cursor (CaptureQueriesContext, django_assert_num_queries: they disconnect this
  receiver themselves while they record, and connect it again when they stop). Kept under DEBUG.
- `close_caches` calls each cache's close(), a no-op for the backends that do not override
  BaseCache.close (the local-memory cache this deployment configures); kept when any backend
  has one of its own (memcached, for instance).
- `reset_urlconf` (request_finished) forgets the URLconf the request resolved with. Every request
  starts by setting settings.ROOT_URLCONF (BaseHandler.get_response), and no middleware here gives
  a request a URLconf of its own (`request.urlconf`), so what it forgets is the root URLconf,
  which is also what reverse() and resolve() use when none is set: the same answers either way.
  A change of ROOT_URLCONF (override_settings, pytest-django's urls marker) clears the URL caches
  and the thread's URLconf itself. About 5 us a request (issue 13: two context-local
  operations). A middleware that sets `request.urlconf` would need it back.

Django's test client takes close_old_connections off request_started and request_finished
around the requests it makes and connects it again afterwards (so, in tests, it may be back on
request_started after a client request; that is Django's own behaviour, and harmless).
"""

from __future__ import annotations

from typing import Any

from django.core import signals
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, reset_queries
from django.utils.module_loading import import_string

# The PostgreSQL backend that leaves the health check to the next request (see above).
HEALTH_CHECK_RESETTING_ENGINES = frozenset({"ketaclinic.core.postgresql"})


def drop_idle_receivers(
    *, debug: bool, databases: dict[str, dict[str, Any]], caches: dict[str, dict[str, Any]]
) -> list[str]:
    """Disconnect the receivers that these settings make no-ops (see the module's note); returns
    their names, for the record and the tests."""
    dropped = []
    if not debug:
        signals.request_started.disconnect(reset_queries)
        dropped.append("request_started: reset_queries")
    if _connections_need_no_start_check(databases):
        signals.request_started.disconnect(close_old_connections)
        dropped.append("request_started: close_old_connections")
    if _caches_close_nothing(caches):
        signals.request_finished.disconnect(close_caches)
        dropped.append("request_finished: close_caches")
    signals.request_finished.disconnect(reset_urlconf)
    dropped.append("request_finished: reset_urlconf")
    return dropped


def _connections_need_no_start_check(databases: dict[str, dict[str, Any]]) -> bool:
    return all(
        database.get("CONN_MAX_AGE", 0) in (None, 0)
        and (
            not database.get("CONN_HEALTH_CHECKS", False)
            or database.get("ENGINE") in HEALTH_CHECK_RESETTING_ENGINES
        )
        for database in databases.values()
    )


def _caches_close_nothing(caches: dict[str, dict[str, Any]]) -> bool:
    return all(
        import_string(cache["BACKEND"]).close is BaseCache.close for cache in caches.values()
    )
