"""The screening policy screens: clinic admins see each threshold beside its cited default, publish
new immutable versions with per-field errors, and read the history; every other role gets 403."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, audit_count, make_member, staff_client
from ketaclinic.core.errors import Forbidden
from ketaclinic.screening import services
from ketaclinic.screening.models import ScreeningPolicyVersion
from ketaclinic.screening.policy import ScreeningPolicy
from ketaclinic.screening.policy_docs import THRESHOLDS

pytestmark = pytest.mark.django_db
PAGE, EDIT = "/screening/policy/", "/screening/policy/edit/"


def form_data(**changes: Any) -> dict[str, Any]:
    """The edit form as it arrives with the defaults, plus `changes`."""
    policy = ScreeningPolicy().to_dict()
    data: dict[str, Any] = {"note": "Clinical lead review, March."}
    for item in THRESHOLDS:
        value = policy[item.name]
        if isinstance(value, dict):
            data[f"{item.name}__systolic"] = value["systolic_mmhg"]
            data[f"{item.name}__diastolic"] = value["diastolic_mmhg"]
        elif isinstance(value, bool):
            if value:
                data[item.name] = "on"
        else:
            data[item.name] = value
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def versions() -> list[ScreeningPolicyVersion]:
    with scopes_disabled():
        return list(ScreeningPolicyVersion.objects.order_by("version"))


def row_of(html: str, field: str) -> str:
    match = re.search(rf'<tr data-field="{field}">(.*?)</tr>', html, re.S)
    assert match, field
    return match.group(1)


def test_admin_sees_every_threshold_with_its_cited_default(members, django_assert_max_num_queries):
    client = staff_client(members["clinic_admin"])
    with django_assert_max_num_queries(8):
        response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No clinic version published yet" in html
    for item in THRESHOLDS:
        row = row_of(html, item.name)
        assert item.source.replace("'", "&#x27;").replace(">", "&gt;").replace("<", "&lt;") in row
        assert ("conservative default, clinic setting" in row) is item.unconfirmed
    # The reference's [U] items carry the note; confirmed ones do not.
    assert "conservative default, clinic setting" in row_of(html, "bp_hold_above")
    assert "conservative default, clinic setting" not in row_of(html, "bp_review_above")
    assert "180/100 mmHg" in row_of(html, "bp_hold_above")
    assert 'data-rule="hypersensitivity"' in html
    # Linked from the staff navigation for admins only.
    assert f'href="{PAGE}"' in client.get("/").content.decode()
    assert f'href="{PAGE}"' not in staff_client(members["nurse"]).get("/").content.decode()


@pytest.mark.parametrize(
    "role", ["prescriber", "nurse", "therapist", "front_desk", "compliance", "researcher"]
)
def test_every_other_role_gets_403(members, role):
    client = staff_client(members[role])
    assert client.get(PAGE).status_code == 403
    assert client.get(EDIT).status_code == 403
    assert client.post(EDIT, form_data(decision_validity_days=14)).status_code == 403
    assert versions() == []


def test_publishing_creates_an_immutable_version_shown_in_the_history(
    members, django_assert_max_num_queries
):
    client = staff_client(members["clinic_admin"])
    with django_assert_max_num_queries(8):
        assert client.get(EDIT).status_code == 200
    response = client.post(
        EDIT,
        form_data(
            decision_validity_days=14,
            bp_hold_above__systolic=170,
            benzodiazepine_limit_lorazepam_equivalent_mg_per_day="2.5",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    [v1] = versions()
    assert v1.version == 1
    assert v1.published_by == members["clinic_admin"].user
    assert v1.data["decision_validity_days"] == 14
    assert v1.data["bp_hold_above"] == {"systolic_mmhg": 170, "diastolic_mmhg": 100}
    assert v1.data["benzodiazepine_limit_lorazepam_equivalent_mg_per_day"] == "2.5"
    assert v1.note == "Clinical lead review, March."
    assert audit_count(action="screening.policy.published") == 1
    with pytest.raises(PermissionError):
        v1.save()
    assert (
        client.post(EDIT, form_data(decision_validity_days=7, note="Shorter.")).status_code == 302
    )
    assert [v.version for v in versions()] == [1, 2]
    with django_assert_max_num_queries(8):
        page = client.get(PAGE).content.decode()
    assert "Version 2" in page
    assert "7 days" in row_of(page, "decision_validity_days")
    history = page[page.index('id="policy-history"') :]
    assert "How long a screening decision stays valid: 14 → 7" in history
    assert (
        "Screening blood pressure that makes every route ineligible (above): 180/100 → 170/100"
        in (history)
    )
    old = client.get(PAGE, {"version": 1}).content.decode()
    assert "Not the current version" in old
    assert "14 days" in row_of(old, "decision_validity_days")
    assert client.get(PAGE, {"version": 9}).status_code == 404
    # The next screening runs under the new version.
    organization = members["clinic_admin"].organization
    with scope(organization=organization):
        assert services.selectors.screening_policy_current(organization).version == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"bp_hold_above__systolic": 130}, "bp_hold_above__systolic", "hold threshold"),
        ({"bp_review_above__diastolic": 150}, "bp_review_above__systolic", "Diastolic"),
        ({"minimum_failed_adequate_trials": 1}, "minimum_failed_adequate_trials", "below 2"),
        ({"decision_validity_days": 0}, "decision_validity_days", "at least 1 day"),
        ({"decision_validity_days": "soon"}, "decision_validity_days", "whole number"),
        ({"note": "", "decision_validity_days": 14}, "note", "required"),
        ({}, None, "Nothing changed"),
    ],
)
def test_invalid_values_are_refused_on_their_field_and_write_nothing(
    members, changes, field, message
):
    client = staff_client(members["clinic_admin"])
    response = client.post(EDIT, form_data(**changes))
    assert response.status_code == 400
    html = response.content.decode()
    if field is None:
        assert message in html[html.index("form-errors") :][:500]
    else:
        assert f'id="id_{field}-error"' in html
        error = html[html.index(f'id="id_{field}-error"') :][:300]
        assert message in error
    assert versions() == []
    assert audit_count(action="screening.policy.published") == 0


def test_the_service_requires_the_policy_capability_and_keeps_organizations_apart(
    members, prescriber, org_b
):
    with scope(organization=prescriber.organization):
        with pytest.raises(Forbidden):
            services.screening_policy_publish(
                actor=prescriber, changes={"decision_validity_days": 14}, note="Prescriber."
            )
        admin = actor_for(members["clinic_admin"])
        services.screening_policy_publish(
            actor=admin, changes={"decision_validity_days": 14}, note="Clinic A."
        )
    other_admin = make_member(org_b, "clinic_admin", username="admin-b")
    page = staff_client(other_admin).get(PAGE).content.decode()
    assert "No clinic version published yet" in page
    assert "Clinic A." not in page
