"""Who may open which measures screen and endpoint: every role from the table, plus an outsider."""

from __future__ import annotations

import pytest
from django_scopes import scope

from conftest import api_client, make_patient, staff_client
from ketaclinic.accounts.roles import Cap, Role, role_can
from ketaclinic.measures import services
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.tests.builders import phq9

pytestmark = pytest.mark.django_db

SCREENS = [
    (
        "enter measure",
        "ui",
        "get",
        "/measures/patients/{patient}/new/?instrument=phq9",
        Cap.MEASURE_RECORD,
        None,
    ),
    ("choose measure", "ui", "get", "/measures/patients/{patient}/new/", Cap.MEASURE_RECORD, None),
    ("link form", "ui", "get", "/measures/patients/{patient}/link/", Cap.MEASURE_RECORD, None),
    (
        "schedule form",
        "ui",
        "get",
        "/measures/patients/{patient}/schedule/",
        Cap.MEASURE_RECORD,
        None,
    ),
    ("response detail", "ui", "get", "/measures/responses/{response}/", Cap.MEASURE_VIEW, None),
    ("alert detail", "ui", "get", "/measures/alerts/{alert}/", Cap.MEASURE_VIEW, None),
    ("alerts page", "ui", "get", "/measures/alerts/", Cap.MEASURE_VIEW, None),
    ("api responses", "api", "get", "/api/v1/patients/{patient}/responses", Cap.MEASURE_VIEW, None),
    ("api response", "api", "get", "/api/v1/responses/{response}", Cap.MEASURE_VIEW, None),
    (
        "api outcomes",
        "api",
        "get",
        "/api/v1/patients/{patient}/outcomes/phq9",
        Cap.MEASURE_VIEW,
        None,
    ),
    ("api alerts", "api", "get", "/api/v1/alerts", Cap.MEASURE_VIEW, None),
    (
        "api record response",
        "api",
        "post",
        "/api/v1/patients/{patient}/responses",
        Cap.MEASURE_RECORD,
        {"instrument_id": "phq9", "answers": phq9()},
    ),
    (
        "api acknowledge",
        "api",
        "post",
        "/api/v1/alerts/{alert}/acknowledge",
        Cap.ALERT_ACKNOWLEDGE,
        {"note": "called"},
    ),
    (
        "api link",
        "api",
        "post",
        "/api/v1/patients/{patient}/measure-links",
        Cap.MEASURE_RECORD,
        {"instrument_id": "phq9"},
    ),
]


@pytest.fixture
def chart(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        response = services.response_record(
            actor=prescriber, patient=patient, instrument_id="phq9", answers=phq9(item9=1)
        )
        alert = SafetyAlert.objects.get()
    return {"patient": patient.public_id, "response": response.public_id, "alert": alert.public_id}


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
    assert call(client, method, url.format(**chart), body).status_code == 404, name


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_the_measures_section_shows_results_only_to_roles_that_may_see_them(members, chart, role):
    response = staff_client(members[role]).get(f"/patients/{chart['patient']}/measures/")
    if not role_can(role, Cap.PATIENT_VIEW):
        assert response.status_code == 403
        return
    html = response.content.decode()
    assert ('id="responses-table"' in html) == role_can(role, Cap.MEASURE_VIEW)
    assert ('id="measure-alert-banner"' in html) == role_can(role, Cap.MEASURE_VIEW)
