"""API tokens (issue 12 item 2): listed, revoked and expiring in the UI, the JSON API and the CLI,
with the capability checked on every path and every change audited.

Before: no one could revoke a token (no route, no screen, no command), and `create-token` minted
a token for any user without asking who was acting."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client

from conftest import api_client, audit_count, staff_client
from ketaclinic.accounts.models import ApiToken
from ketaclinic.accounts.services import token_create
from ketaclinic.core import clock

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _cli(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_a_nurse_issues_lists_and_revokes_her_own_token_through_the_api(
    members: dict[str, Any],
) -> None:
    nurse = members["nurse"]
    client = api_client(nurse)
    response = client.post(
        "/api/v1/tokens", {"name": "lab interface", "days": 30}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    secret = created["secret"]
    assert created["state"] == "active"
    assert created["owner"] == nurse.user.username
    assert _bearer(secret).get("/api/v1/patients").status_code == 200

    listed = client.get("/api/v1/tokens").json()
    assert {t["name"] for t in listed} == {"", "lab interface"}  # api_client's own + the new one
    assert all("secret" not in t for t in listed)

    before = audit_count(action="accounts.token.revoked")
    revoked = client.post(f"/api/v1/tokens/{created['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    assert audit_count(action="accounts.token.revoked") == before + 1
    # At once: the very next request with it is refused.
    refused = _bearer(secret).get("/api/v1/patients")
    assert refused.status_code == 401
    assert _bearer(secret).get("/fhir/r4/Patient").status_code == 401
    assert client.post(f"/api/v1/tokens/{created['id']}/revoke").status_code == 409


def test_a_colleague_cannot_see_or_revoke_my_token_but_the_clinic_admin_can(
    members: dict[str, Any], outsider: Any
) -> None:
    _, secret = token_create(username=members["prescriber"].user.username, name="mine")
    token = ApiToken.objects.get(name="mine")
    nurse = api_client(members["nurse"])
    assert nurse.post(f"/api/v1/tokens/{token.public_id}/revoke").status_code == 404
    assert nurse.get("/api/v1/tokens?everyone=true").status_code == 403
    assert api_client(outsider).post(f"/api/v1/tokens/{token.public_id}/revoke").status_code == 404
    assert _bearer(secret).get("/api/v1/patients").status_code == 200

    admin = api_client(members["clinic_admin"])
    everyone = admin.get("/api/v1/tokens?everyone=true").json()
    owners = {t["owner"] for t in everyone}
    assert members["prescriber"].user.username in owners
    assert "outsider" not in owners  # another organization's tokens stay out of sight
    assert admin.post(f"/api/v1/tokens/{token.public_id}/revoke").status_code == 200
    assert _bearer(secret).get("/api/v1/patients").status_code == 401


def test_a_token_expires_on_its_date_and_answers_401_from_then_on(
    members: dict[str, Any],
) -> None:
    token, secret = token_create(username=members["nurse"].user.username, days=7)
    assert token.expires_at - clock.now() == pytest.approx(
        timedelta(days=7), abs=timedelta(seconds=5)
    )
    assert _bearer(secret).get("/api/v1/patients").status_code == 200
    with time_machine.travel(token.expires_at + timedelta(seconds=1)):
        assert _bearer(secret).get("/api/v1/patients").status_code == 401
        listed = api_client(members["nurse"]).get("/api/v1/tokens").json()
        assert {t["prefix"]: t["state"] for t in listed}[token.prefix] == "expired"


def test_every_token_expires_within_the_policy(members: dict[str, Any]) -> None:
    client = api_client(members["nurse"])
    response = client.post("/api/v1/tokens", {"days": 366}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "days"
    assert "365" in response.json()["errors"][0]["message"]
    default = client.post("/api/v1/tokens", {}, content_type="application/json").json()
    assert default["expires_at"] > (clock.now() + timedelta(days=89)).isoformat()


def test_issuing_for_someone_else_needs_tokens_manage_on_every_path(
    members: dict[str, Any],
) -> None:
    nurse, prescriber = members["nurse"], members["prescriber"]
    response = api_client(nurse).post(
        "/api/v1/tokens",
        {"username": prescriber.user.username},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert audit_count(action="accounts.token.refused", outcome="denied") == 1

    # The command line: a nurse may not mint a token for the prescriber...
    with pytest.raises(CommandError, match=r"tokens\.manage"):
        _cli(
            "create_token",
            "--username",
            prescriber.user.username,
            "--as",
            nurse.user.username,
        )
    assert not ApiToken.objects.filter(membership=prescriber).exists()
    # ...the clinic admin may, and the event names who issued it for whom.
    secret = _cli(
        "create_token",
        "--username",
        prescriber.user.username,
        "--as",
        members["clinic_admin"].user.username,
        "--days",
        "7",
    )
    assert _bearer(secret).get("/api/v1/patients").status_code == 200
    from ketaclinic.accounts.models import AuditEvent

    event = AuditEvent.objects.filter(action="accounts.token.created").latest("occurred_at")
    assert event.actor_username == members["clinic_admin"].user.username
    assert event.detail["owner"] == prescriber.user.username
    assert event.channel == "cli"


def test_the_command_line_lists_and_revokes(members: dict[str, Any]) -> None:
    nurse = members["nurse"].user.username
    secret = _cli("create_token", "--username", nurse, "--name", "pump")
    lines = _cli("list_tokens", "--username", nurse).splitlines()
    assert len(lines) == 1
    assert "pump" in lines[0]
    assert "active" in lines[0]
    assert secret not in lines[0]
    token_id = lines[0].split("\t")[0]
    with pytest.raises(CommandError, match="No such token"):
        _cli("revoke_token", token_id, "--username", members["therapist"].user.username)
    with pytest.raises(CommandError, match=r"tokens\.manage"):
        _cli("list_tokens", "--username", nurse, "--all")
    assert "revoked" in _cli("revoke_token", token_id, "--username", nurse)
    assert _bearer(secret).get("/api/v1/patients").status_code == 401
    everyone = _cli("list_tokens", "--username", members["clinic_admin"].user.username, "--all")
    assert "revoked" in everyone


def test_the_token_page_issues_shows_once_and_revokes(members: dict[str, Any]) -> None:
    browser = staff_client(members["therapist"])
    page = browser.get("/accounts/tokens/")
    assert page.status_code == 200
    assert b"No tokens yet" in page.content
    created = browser.post("/accounts/tokens/new", {"name": "notes sync", "days": "30"})
    assert created.status_code == 201
    secret = created.context["secret"]
    assert secret.encode() in created.content
    assert created["Cache-Control"].startswith("no-store") or "no-store" in created["Cache-Control"]
    again = browser.get("/accounts/tokens/")
    assert secret.encode() not in again.content
    assert b"notes sync" in again.content
    token = ApiToken.objects.get(name="notes sync")
    bad = browser.post("/accounts/tokens/new", {"name": "x", "days": "400"})
    assert bad.status_code == 400
    assert b"365" in bad.content
    revoked = browser.post(f"/accounts/tokens/{token.public_id}/revoke", follow=True)
    assert b"no longer works" in revoked.content
    assert _bearer(secret).get("/api/v1/patients").status_code == 401
    # A colleague's token is not there to revoke from the page either.
    other, _ = token_create(username=members["nurse"].user.username, name="nurse's")
    refused = browser.post(f"/accounts/tokens/{other.public_id}/revoke")
    assert refused.status_code == 404
    admin_page = staff_client(members["clinic_admin"]).get("/accounts/tokens/")
    assert b"nurse&#x27;s" in admin_page.content or b"nurse's" in admin_page.content
