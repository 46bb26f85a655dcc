"""Privilege changes (issue 12 item 1): nobody grants themselves a role, privileged roles need a
second clinic admin, every change is one audit event, and the Django admin cannot bypass it."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_member, staff_client
from ketaclinic.accounts import staffing
from ketaclinic.accounts.models import AuditEvent, Membership, RoleChange
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def admins(org_a: Any) -> tuple[Membership, Membership]:
    return make_member(org_a, "clinic_admin", "admin-one"), make_member(
        org_a, "clinic_admin", "admin-two"
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_a_nurse_account_is_usable_at_once_with_secrets_shown_once(admins: Any) -> None:
    actor = actor_for(admins[0])
    with scope(organization=actor.organization):
        created = staffing.staff_create(actor=actor, username="nina", role="nurse")
    membership = created.membership
    assert membership.is_active
    assert membership.role == "nurse"
    assert created.change.status == RoleChange.Status.APPLIED
    assert membership.user.check_password(created.password)
    assert created.totp_url.startswith("otpauth://totp/")
    assert len(created.totp_secret) >= 32
    [event] = events("accounts.staff.created")
    assert event.actor_username == "admin-one"
    assert event.detail["role"] == "nurse"
    assert created.password not in str(event.detail)


def test_a_prescriber_needs_a_second_admin(admins: Any) -> None:
    first, second = actor_for(admins[0]), actor_for(admins[1])
    with scope(organization=first.organization):
        created = staffing.staff_create(actor=first, username="doc", role="prescriber")
        assert created.pending
        assert not created.membership.is_active  # cannot log in before approval
        with pytest.raises(Forbidden, match="second clinic admin"):
            staffing.role_change_decide(actor=first, change=created.change, approve=True)
        assert events("accounts.role_change.approve.denied")[0].outcome == "denied"
        staffing.role_change_decide(actor=second, change=created.change, approve=True)
    created.membership.refresh_from_db()
    assert created.membership.is_active
    assert created.membership.role == "prescriber"
    [approved] = events("accounts.role_change.approved")
    assert approved.actor_username == "admin-two"
    assert approved.detail["requested_by"] == "admin-one"


def test_nobody_changes_their_own_role(admins: Any) -> None:
    actor = actor_for(admins[0])
    with scope(organization=actor.organization), pytest.raises(Forbidden, match="own"):
        staffing.staff_role_change(actor=actor, membership=admins[0], role="prescriber")
    admins[0].refresh_from_db()
    assert admins[0].role == "clinic_admin"
    assert not RoleChange.objects.exists()
    [refusal] = events("accounts.role_change.self.denied")
    assert refusal.outcome == "denied"
    assert refusal.detail["to_role"] == "prescriber"


def test_a_pending_grant_is_not_approved_by_the_person_it_concerns(admins: Any) -> None:
    first, second = actor_for(admins[0]), actor_for(admins[1])
    with scope(organization=first.organization):
        # admin-one asks for admin-two to become prescriber; admin-two may not approve it.
        change = staffing.staff_role_change(actor=first, membership=admins[1], role="prescriber")
        with pytest.raises(Forbidden):
            staffing.role_change_decide(actor=second, change=change, approve=True)
        with pytest.raises(Conflict, match="already waiting"):
            staffing.staff_role_change(actor=first, membership=admins[1], role="compliance")
    admins[1].refresh_from_db()
    assert admins[1].role == "clinic_admin"


def test_a_lower_role_applies_at_once_and_is_audited(org_a: Any, admins: Any) -> None:
    nurse = make_member(org_a, "nurse", "nurse-x")
    actor = actor_for(admins[0])
    with scope(organization=actor.organization):
        change = staffing.staff_role_change(
            actor=actor, membership=nurse, role="front_desk", reason="moves to reception"
        )
        with pytest.raises(ValidationFailed, match="already is"):
            staffing.staff_role_change(actor=actor, membership=nurse, role="front_desk")
    nurse.refresh_from_db()
    assert nurse.role == "front_desk"
    assert change.status == RoleChange.Status.APPLIED
    [event] = events("accounts.membership.role_changed")
    assert event.detail == {
        "username": "nurse-x",
        "from_role": "nurse",
        "to_role": "front_desk",
        "reason": "moves to reception",
    }


def test_deactivation_ends_access_and_a_pending_grant(admins: Any) -> None:
    first = actor_for(admins[0])
    with scope(organization=first.organization):
        created = staffing.staff_create(actor=first, username="gone", role="compliance")
        staffing.staff_deactivate(actor=first, membership=created.membership, reason="left")
        with pytest.raises(Conflict):
            staffing.role_change_decide(
                actor=actor_for(admins[1]), change=created.change, approve=True
            )
        with pytest.raises(Forbidden):
            staffing.staff_deactivate(actor=first, membership=admins[0])
    created.membership.refresh_from_db()
    assert not created.membership.is_active
    assert len(events("accounts.staff.deactivated")) == 1


def test_only_staff_managers_manage_staff(members: Any) -> None:
    prescriber = actor_for(members["prescriber"])
    with scope(organization=prescriber.organization), pytest.raises(Forbidden):
        staffing.staff_create(actor=prescriber, username="x", role="nurse")
    assert events("accounts.staff.manage.denied")[0].outcome == "denied"


def test_the_admin_cannot_make_a_clinic_admin_prescriber(admins: Any) -> None:
    """Regression (issue 12): /admin/ let a clinic admin edit their own membership's role, with no
    approval and no audit event. Memberships are read-only there now."""
    client = staff_client(admins[0])
    membership = admins[0]
    url = f"/admin/accounts/membership/{membership.pk}/change/"
    before = AuditEvent.objects.count()
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="role"' not in page.content  # shown, not editable
    response = client.post(url, {"role": "prescriber", "is_active": "on"})
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "clinic_admin"
    assert client.get("/admin/accounts/membership/add/").status_code == 403
    with scopes_disabled():
        assert not RoleChange.objects.exists()
    assert AuditEvent.objects.count() == before  # nothing changed, nothing to record


def test_the_staff_screen_refuses_a_self_grant_and_audits_each_change(admins: Any) -> None:
    client = staff_client(admins[0])
    me = admins[0].user.public_id
    response = client.post(f"/setup/staff/{me}/role/", {f"m{admins[0].pk}-role": "prescriber"})
    assert response.status_code == 403
    assert b"Nobody may change their own" in response.content
    admins[0].refresh_from_db()
    assert admins[0].role == "clinic_admin"

    created = client.post(
        "/setup/staff/new/",
        {"new-username": "dr-new", "new-role": "prescriber", "new-reason": "new hire"},
    )
    assert created.status_code == 201
    assert b"once another clinic admin approves" in created.content
    assert created["Cache-Control"] == "no-store"
    with scopes_disabled():
        change = RoleChange.objects.get(membership__user__username="dr-new")
    # The requester sees no approve button and cannot approve by posting.
    assert b"Approve dr-new" not in client.get("/setup/staff/").content
    refused = client.post(
        f"/setup/role-changes/{change.public_id}/decide/", {"decision": "approve"}
    )
    assert refused.status_code == 403
    second = staff_client(admins[1])
    assert b"Approve dr-new" in second.get("/setup/staff/").content
    approved = second.post(
        f"/setup/role-changes/{change.public_id}/decide/", {"decision": "approve"}
    )
    assert approved.status_code == 302
    with scopes_disabled():
        assert Membership.objects.get(user__username="dr-new").is_active
    actions = [
        e.action
        for e in AuditEvent.objects.filter(action__startswith="accounts.").order_by("pk")
        if e.action.startswith(("accounts.staff", "accounts.role", "accounts.membership"))
    ]
    assert actions == [
        "accounts.role_change.self.denied",
        "accounts.staff.created",
        "accounts.role_change.approve.denied",
        "accounts.role_change.approved",
    ]


def test_a_deactivated_account_comes_back_only_through_a_role_change(
    org_a: Any, admins: Any
) -> None:
    first, second = actor_for(admins[0]), actor_for(admins[1])
    nurse = make_member(org_a, "nurse", "back-nurse")
    doctor = make_member(org_a, "prescriber", "back-doc")
    with scope(organization=first.organization):
        staffing.staff_deactivate(actor=first, membership=nurse)
        staffing.staff_deactivate(actor=first, membership=doctor)
        staffing.staff_role_change(actor=first, membership=nurse, role="nurse")
        change = staffing.staff_role_change(actor=first, membership=doctor, role="prescriber")
        doctor.refresh_from_db()
        assert not doctor.is_active  # a prescriber comes back with a second admin's approval
        staffing.role_change_decide(actor=second, change=change, approve=True)
    nurse.refresh_from_db()
    doctor.refresh_from_db()
    assert nurse.is_active
    assert doctor.is_active
    [event] = events("accounts.membership.role_changed")
    assert event.detail["reactivates"] is True
