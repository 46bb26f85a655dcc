"""Who is calling is resolved once per worker process and kept for IDENTITY_CACHE_SECONDS, but a
revoked or expired token, a deactivated account and an ended session stop working at once in
the process that made the change, and within the TTL in the others (accounts.identity_cache)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope

from conftest import actor_for, staff_client
from ketaclinic.accounts import identity_cache
from ketaclinic.accounts.models import ApiToken
from ketaclinic.accounts.services import token_create, token_revoke

pytestmark = pytest.mark.django_db
ME = "/api/v1/patients?limit=1"


@pytest.fixture(autouse=True)
def _empty_cache() -> Any:
    identity_cache.clear()
    yield
    identity_cache.clear()


def _client(members: Any, role: str = "nurse") -> tuple[Client, ApiToken]:
    token, secret = token_create(username=members[role].user.username)
    return Client(headers={"Authorization": f"Bearer {secret}"}), token


def test_a_known_token_costs_no_query_after_the_first_request(members: Any) -> None:
    client, _ = _client(members)
    assert client.get(ME).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME).status_code == 200
    assert not [q for q in queries.captured_queries if "accounts_apitoken" in q["sql"]]


def test_a_revoked_token_stops_working_at_once(members: Any) -> None:
    client, token = _client(members)
    assert client.get(ME).status_code == 200
    token_revoke(token=token, actor=actor_for(members["clinic_admin"]))
    assert client.get(ME).status_code == 401


def test_an_expired_token_stops_working_at_once(members: Any) -> None:
    client, token = _client(members)
    assert client.get(ME).status_code == 200
    with time_machine.travel(token.expires_at + timedelta(seconds=1), tick=False):
        assert client.get(ME).status_code == 401


def test_a_revocation_made_by_another_process_applies_within_the_ttl(
    members: Any, settings: Any
) -> None:
    settings.IDENTITY_CACHE_SECONDS = 0.3
    client, token = _client(members)
    assert client.get(ME).status_code == 200
    # Another worker revokes: this process sees no save signal, only the row.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_apitoken SET revoked_at = %s WHERE id = %s",
            [timezone.now(), token.pk],
        )
    assert client.get(ME).status_code == 200  # still trusted, for at most the TTL
    time.sleep(0.35)
    assert client.get(ME).status_code == 401


def test_a_deactivated_account_loses_its_token_and_its_session_at_once(members: Any) -> None:
    from ketaclinic.accounts.staffing import staff_deactivate

    client, _ = _client(members)
    browser = staff_client(members["nurse"])
    assert client.get(ME).status_code == 200
    assert browser.get("/patients/").status_code == 200
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        staff_deactivate(actor=admin, membership=members["nurse"], reason="left")
    assert client.get(ME).status_code == 401
    assert browser.get("/patients/").status_code in (302, 403)


def test_a_page_view_renews_the_session_at_most_once_a_minute(members: Any) -> None:
    browser = staff_client(members["nurse"])
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        browser.get("/patients/")
        with CaptureQueriesContext(connection) as queries:
            assert browser.get("/patients/").status_code == 200
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]
                and not q["sql"].startswith("SELECT")]  # fmt: skip
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        with CaptureQueriesContext(connection) as queries:
            assert browser.get("/patients/").status_code == 200
    assert [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "django_session"')]
