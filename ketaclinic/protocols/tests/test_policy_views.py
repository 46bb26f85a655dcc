"""The session safety policy screen: current values with cited defaults and [U] marks, a change
published as a new version through the service, the version history; clinic admins only."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import audit_count, make_member, staff_client
from ketaclinic.protocols.citations import POLICY_FIELDS
from ketaclinic.protocols.models import SafetyPolicyVersion
from ketaclinic.sessions.policy import DEFAULT_POLICY, UNCONFIRMED_FIELDS, SessionSafetyPolicy

pytestmark = pytest.mark.django_db
URL = "/protocols/safety-policy/"
EDIT = "/protocols/safety-policy/edit/"


@pytest.fixture
def admin_ui(members: Any) -> Any:
    return staff_client(members["clinic_admin"])


def policy_post(policy: SessionSafetyPolicy = DEFAULT_POLICY, **changes: Any) -> dict[str, Any]:
    """The form as a browser submits it: unticked checkboxes are simply absent."""
    data: dict[str, Any] = {"note": "Reviewed by the medical director"}
    for f in fields(SessionSafetyPolicy):
        if f.name in ("policy_id", "version"):
            continue
        value = changes.get(f.name, getattr(policy, f.name))
        if isinstance(value, bool):
            if value:
                data[f.name] = "on"
        else:
            data[f.name] = str(value)
    if "note" in changes:
        data["note"] = changes["note"]
    return data


def versions() -> list[SafetyPolicyVersion]:
    with scopes_disabled():
        return list(SafetyPolicyVersion.objects.order_by("version"))


def test_every_policy_field_has_a_label_and_a_source() -> None:
    names = {f.name for f in fields(SessionSafetyPolicy)} - {"policy_id", "version"}
    assert set(POLICY_FIELDS) == names
    for name in UNCONFIRMED_FIELDS:
        assert POLICY_FIELDS[name][2].startswith("[U]"), name


def test_the_page_shows_the_cited_defaults_and_marks_the_unconfirmed_ones(
    admin_ui: Any, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(8):
        page = admin_ui.get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert "No clinic version published yet" in text
    assert "At least 2 h after each dose (label floor), §2.1 [C] #1, #16" in text
    assert "Label guide &gt;140 systolic: consider delaying, §2.1 [S] #7, #8" in text
    table = text[text.index('id="policy-table"') : text.index('id="policy-history"')]
    rows = table.split("<tr data-field=")[1:]
    assert len(rows) == len(POLICY_FIELDS)
    for row in rows:
        name = row.split('"')[1]
        marked = "conservative default, clinic setting" in row
        assert marked == (name in UNCONFIRMED_FIELDS), name


@pytest.mark.parametrize("role", ["prescriber", "nurse", "therapist", "front_desk", "compliance"])
def test_only_a_clinic_admin_sees_or_changes_the_policy(members: Any, role: str) -> None:
    ui = staff_client(members[role])
    assert ui.get(URL).status_code == 403
    assert ui.get(EDIT).status_code == 403
    assert ui.post(EDIT, policy_post(weight_max_age_days=14)).status_code == 403
    assert versions() == []
    assert audit_count(action="sessions.policy.published") == 0


def test_an_outsiders_admin_changes_only_their_own_clinics_policy(
    admin_ui: Any, org_b: Any
) -> None:
    other = staff_client(make_member(org_b, "clinic_admin", username="admin-b"))
    assert other.post(EDIT, policy_post(weight_max_age_days=14)).status_code == 302
    assert b"No clinic version published yet" in admin_ui.get(URL).content


def test_an_admin_publishes_a_new_version_and_sees_it_in_the_history(admin_ui: Any) -> None:
    form = admin_ui.get(EDIT)
    assert form.status_code == 200
    assert b'name="weight_max_age_days"' in form.content
    response = admin_ui.post(
        EDIT, policy_post(weight_max_age_days=14, predose_override_allowed=False)
    )
    assert response.status_code == 302
    (stored,) = versions()
    assert stored.version == 2  # the built-in defaults are version 1
    assert stored.policy.weight_max_age_days == 14
    assert stored.policy.predose_override_allowed is False
    assert stored.note == "Reviewed by the medical director"
    assert audit_count(action="sessions.policy.published") == 1

    response = admin_ui.post(EDIT, policy_post(stored.policy, spo2_low_warning=95, note="SpO2"))
    assert response.status_code == 302
    assert [v.version for v in versions()] == [2, 3]
    text = admin_ui.get(URL).content.decode()
    assert "Version 3, published" in text
    history = text[text.index('id="policy-history"') :]
    assert "SpO2 low: warning: 94 → 95" in history
    assert "Body weight at most this old: 30 → 14" in history
    assert history.index("v3") < history.index("v2")  # newest first


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"minimum_observation_minutes_esketamine": 60},
            "minimum_observation_minutes_esketamine",
            "the esketamine label requires at least 120 minutes of observation",
        ),
        (
            {"predose_systolic_max": 190},
            "predose_systolic_max",
            "must not be above predose_systolic_hard_ceiling",
        ),
        ({"weight_max_age_days": 0}, "weight_max_age_days", "must be positive"),
        ({"spo2_low_warning": "ninety"}, "spo2_low_warning", "Enter a whole number."),
        ({"note": ""}, "note", "This field is required."),
    ],
)
def test_an_unsafe_or_malformed_value_is_refused_on_its_field_and_nothing_is_published(
    admin_ui: Any, changes: dict[str, Any], field: str, message: str
) -> None:
    response = admin_ui.post(EDIT, policy_post(**changes))
    assert response.status_code == 400
    assert message in response.context["form"].errors[field]
    assert f'id="id_{field}-error"'.encode() in response.content
    assert versions() == []
    assert audit_count(action="sessions.policy.published") == 0


def test_submitting_no_change_publishes_nothing(admin_ui: Any) -> None:
    response = admin_ui.post(EDIT, policy_post())
    assert response.status_code == 400
    assert b"Nothing changed" in response.content
    assert versions() == []
