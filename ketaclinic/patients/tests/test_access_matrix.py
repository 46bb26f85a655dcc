"""Who may open what: every screen and endpoint against every role, plus an outsider.

Generated from the role table (accounts.roles), NetBox-style: adding a screen here or changing the
table changes what is asserted.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django_scopes import scope

from conftest import api_client, audit_count, make_patient, staff_client
from ketaclinic.accounts.roles import Cap, Role, role_can
from ketaclinic.patients import services

pytestmark = pytest.mark.django_db

# (name, channel, method, url template, capability, JSON body)
SCREENS = [
    ("patient list", "ui", "get", "/patients/", Cap.PATIENT_LIST, None),
    ("register form", "ui", "get", "/patients/new/", Cap.PATIENT_CREATE, None),
    ("chart", "ui", "get", "/patients/{patient}/", Cap.PATIENT_VIEW, None),
    ("chart history", "ui", "get", "/patients/{patient}/history/", Cap.PATIENT_VIEW, None),
    (
        "edit demographics",
        "ui",
        "get",
        "/patients/{patient}/edit/",
        Cap.PATIENT_EDIT_DEMOGRAPHICS,
        None,
    ),
    (
        "record weight",
        "ui",
        "get",
        "/patients/{patient}/weights/new/",
        Cap.MEASUREMENT_RECORD,
        None,
    ),
    ("add condition", "ui", "get", "/patients/{patient}/conditions/new/", Cap.CLINICAL_EDIT, None),
    (
        "add medication",
        "ui",
        "get",
        "/patients/{patient}/medications/new/",
        Cap.CLINICAL_EDIT,
        None,
    ),
    ("add allergy", "ui", "get", "/patients/{patient}/allergies/new/", Cap.CLINICAL_EDIT, None),
    ("audit trail", "ui", "get", "/audit/", Cap.AUDIT_VIEW, None),
    ("audit export", "ui", "get", "/audit/export.csv", Cap.AUDIT_EXPORT, None),
    ("api patient list", "api", "get", "/api/v1/patients", Cap.PATIENT_LIST, None),
    ("api patient", "api", "get", "/api/v1/patients/{patient}", Cap.PATIENT_VIEW, None),
    (
        "api conditions",
        "api",
        "get",
        "/api/v1/patients/{patient}/conditions",
        Cap.CLINICAL_VIEW,
        None,
    ),
    ("api weights", "api", "get", "/api/v1/patients/{patient}/weights", Cap.CLINICAL_VIEW, None),
    ("api condition", "api", "get", "/api/v1/conditions/{condition}", Cap.CLINICAL_VIEW, None),
    (
        "api record weight",
        "api",
        "post",
        "/api/v1/patients/{patient}/weights",
        Cap.MEASUREMENT_RECORD,
        {"value": "70.5", "unit": "kg"},
    ),
    (
        "api add allergy",
        "api",
        "post",
        "/api/v1/patients/{patient}/allergies",
        Cap.CLINICAL_EDIT,
        {"substance": "latex"},
    ),
    (
        "api register patient",
        "api",
        "post",
        "/api/v1/patients",
        Cap.PATIENT_CREATE,
        {
            "given_name": "Kim",
            "family_name": "Lee",
            "birth_date": "1990-01-02",
            "sex_at_birth": "male",
        },
    ),
]


@pytest.fixture
def chart(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        condition = services.condition_add(
            actor=prescriber, patient=patient, data={"code": "F33.1"}
        )
    return {"patient": patient.public_id, "condition": condition.public_id}


def call(client, method, url, body):
    if method == "get":
        return client.get(url)
    return client.post(url, body, content_type="application/json")


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize(("name", "channel", "method", "url", "capability", "body"), SCREENS)
def test_each_role_gets_exactly_the_capabilities_of_the_table(
    members, chart, role, name, channel, method, url, capability, body
):
    membership = members[role]
    client = staff_client(membership) if channel == "ui" else api_client(membership)
    response = call(client, method, url.format(**chart), body)
    if role_can(role, capability):
        assert response.status_code in (200, 201), f"{role} should reach {name}"
    else:
        assert response.status_code == 403, f"{role} must not reach {name}"


@pytest.mark.parametrize(
    ("name", "channel", "method", "url", "capability", "body"),
    [s for s in SCREENS if "{" in s[3]],
)
def test_an_outsider_gets_404_for_every_object_of_another_organization(
    outsider, chart, name, channel, method, url, capability, body
):
    client = staff_client(outsider) if channel == "ui" else api_client(outsider)
    before_denied = audit_count(outcome="denied")
    response = call(client, method, url.format(**chart), body)
    assert response.status_code == 404, name
    assert audit_count(outcome="denied") >= before_denied  # recorded where it was looked up


def test_an_outsider_search_never_lists_another_organizations_patients(outsider, chart):
    response = api_client(outsider).get("/api/v1/patients?q=Lovelace")
    assert response.json()["count"] == 0
    page = staff_client(outsider).get("/patients/?q=Lovelace")
    assert b"No patient matches." in page.content
    assert str(chart["patient"]).encode() not in page.content


def test_the_admin_is_only_for_clinic_admins(members):
    assert staff_client(members["clinic_admin"]).get("/admin/").status_code == 200
    response = staff_client(members["prescriber"]).get("/admin/", follow=True)
    assert response.status_code == 403
    anonymous = Client().get("/admin/", follow=True)
    assert anonymous.redirect_chain[-1][0].startswith("/accounts/login/")


def test_clinical_rows_are_read_only_in_the_admin(members, chart):
    client = staff_client(members["clinic_admin"])
    assert client.get("/admin/patients/patient/").status_code == 200
    assert client.get("/admin/patients/patient/add/").status_code == 403
