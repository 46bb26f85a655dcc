"""core.request_signals: Django's per-request receivers are dropped only where they do nothing,
and what they did still happens at the end of each request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connection, reset_queries
from django.test import override_settings
from django.urls import get_urlconf, resolve, reverse

from ketaclinic.core import request_signals

SQLITE = {"ENGINE": "ketaclinic.core.queued_sqlite3", "CONN_MAX_AGE": None}
LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def receivers() -> Iterator[None]:
    """Every receiver connected as Django connects them; the state the tests found, after."""
    saved = {s: list(s.receivers) for s in (signals.request_started, signals.request_finished)}
    signals.request_started.connect(reset_queries)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    signals.request_finished.connect(close_caches)
    signals.request_finished.connect(reset_urlconf)
    yield
    for signal, kept in saved.items():
        with signal.lock:
            signal.receivers[:] = kept
            signal.sender_receivers_cache.clear()


def _connected(signal: Any, receiver: Any) -> bool:
    return any(ref() is receiver for _, ref, *_ in signal.receivers)


def test_the_deployments_settings_drop_all_four(receivers: None) -> None:
    dropped = request_signals.drop_idle_receivers(
        debug=False, databases={"default": SQLITE}, caches=LOCAL_MEMORY
    )
    assert dropped == [
        "request_started: reset_queries",
        "request_started: close_old_connections",
        "request_finished: close_caches",
        "request_finished: reset_urlconf",
    ]
    assert not signals.request_started.has_listeners()
    # What closes a broken or unfinished connection at every request's end stays.
    assert _connected(signals.request_finished, close_old_connections)


def test_debug_keeps_the_query_log_reset(receivers: None) -> None:
    request_signals.drop_idle_receivers(
        debug=True, databases={"default": SQLITE}, caches=LOCAL_MEMORY
    )
    assert _connected(signals.request_started, reset_queries)


@pytest.mark.parametrize(
    "database",
    [
        {**SQLITE, "CONN_MAX_AGE": 60},  # may age out between two requests
        # Django's own backend marks a connection checked after an error and would skip the
        # next request's health check without the second call.
        {
            "ENGINE": "django.db.backends.postgresql",
            "CONN_MAX_AGE": None,
            "CONN_HEALTH_CHECKS": True,
        },
    ],
    ids=["max-age", "django-postgresql-health-checks"],
)
def test_connections_the_start_check_still_serves_keep_it(
    receivers: None, database: dict[str, Any]
) -> None:
    request_signals.drop_idle_receivers(
        debug=False, databases={"default": database}, caches=LOCAL_MEMORY
    )
    assert _connected(signals.request_started, close_old_connections)


def test_the_projects_postgresql_backend_with_health_checks_drops_it(receivers: None) -> None:
    database = {"ENGINE": "ketaclinic.core.postgresql", "CONN_MAX_AGE": None,
                "CONN_HEALTH_CHECKS": True}  # fmt: skip
    request_signals.drop_idle_receivers(
        debug=False, databases={"default": database}, caches=LOCAL_MEMORY
    )
    assert not _connected(signals.request_started, close_old_connections)


def test_a_cache_that_closes_something_keeps_close_caches(receivers: None) -> None:
    caches = {
        **LOCAL_MEMORY,
        "shared": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache"},
    }
    request_signals.drop_idle_receivers(debug=False, databases={"default": SQLITE}, caches=caches)
    assert _connected(signals.request_finished, close_caches)


@pytest.mark.django_db(transaction=True)
def test_a_request_end_still_closes_a_connection_left_unfinished(receivers: None) -> None:
    """The one check left (request_finished) drops a connection whose autocommit a request did
    not restore, so the next request starts on a fresh one."""
    request_signals.drop_idle_receivers(
        debug=False, databases=settings.DATABASES, caches=settings.CACHES
    )
    connection.ensure_connection()
    connection.set_autocommit(False)
    signals.request_finished.send(sender=None)
    assert connection.connection is None
    connection.ensure_connection()
    assert connection.get_autocommit() is True


@pytest.mark.django_db
def test_after_a_request_urls_resolve_and_reverse_as_before(client: Any) -> None:
    """Without reset_urlconf the thread keeps the root URLconf the request set: the same one
    resolve() and reverse() use when none is set."""
    assert not _connected(signals.request_finished, reset_urlconf)  # dropped at start-up
    client.get("/healthz")
    assert get_urlconf() in (None, settings.ROOT_URLCONF)
    assert reverse("healthz") == "/healthz"
    assert resolve("/healthz").url_name == "healthz"


@pytest.mark.django_db
def test_a_changed_root_urlconf_applies_after_a_request(client: Any) -> None:
    client.get("/healthz")
    with override_settings(ROOT_URLCONF="ketaclinic.core.tests.urls_elsewhere"):
        assert get_urlconf() is None
        assert reverse("healthz") == "/elsewhere/healthz"
        assert client.get("/elsewhere/healthz").status_code == 200
    assert reverse("healthz") == "/healthz"
