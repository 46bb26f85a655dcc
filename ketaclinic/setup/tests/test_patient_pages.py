"""Issue 15: the clinic's patient-portal settings (e-mailed sign-in links, crisis numbers) through
the JSON API and the set-up screen, and the numbers a patient then sees everywhere they appear."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.accounts.models import Clinic
from ketaclinic.consent.tests.test_consent import portal_patient
from ketaclinic.measures import services as measures
from ketaclinic.measures.tests.builders import phq9
from ketaclinic.messaging import services as messaging
from ketaclinic.messaging.models import PatientPagesPolicy

pytestmark = pytest.mark.django_db
URL = "/api/v1/setup/patient-portal"
UK = {
    "sign_in_links_allowed": True,
    "crisis_line_number": "116 123",
    "crisis_line_name": "Samaritans",
    "crisis_line_name_es": "",
    "crisis_line_takes_texts": False,
    "emergency_number": "999",
    "note": "Our clinic is in the UK.",
}


def put(client: Any, body: dict[str, Any]) -> Any:
    return client.put(URL, json.dumps(body), content_type="application/json")


def test_the_api_reads_the_us_defaults_and_publishes_a_new_audited_version(
    members: Any, django_assert_max_num_queries: Any
) -> None:
    client = api_client(members["clinic_admin"])
    client.get(URL)  # the bearer token is looked up once, then cached (docs/ARCHITECTURE.md)
    with django_assert_max_num_queries(2):  # the policy, and the one audit event of the read
        first = client.get(URL)
    assert first.status_code == 200
    assert first.json() == {
        "version": 0,
        "sign_in_links_allowed": False,
        "crisis_line_number": "988",
        "crisis_line_name": "Suicide & Crisis Lifeline",
        "crisis_line_name_es": "Línea de Prevención del Suicidio y Crisis",
        "crisis_line_takes_texts": True,
        "emergency_number": "911",
        "note": "",
        "sign_in_link_minutes": 15,
    }
    saved = put(client, UK)
    assert saved.status_code == 200, saved.content
    assert saved.json() == {**UK, "version": 1, "sign_in_link_minutes": 15}
    assert client.get(URL).json()["crisis_line_number"] == "116 123"
    assert audit_count(action="messaging.patient_pages_policy.published", outcome="success") == 1


def test_the_api_refuses_a_number_nobody_can_dial_and_writes_nothing(members: Any) -> None:
    client = api_client(members["clinic_admin"])
    refused = put(client, {**UK, "crisis_line_number": "call us", "emergency_number": "9"})
    assert refused.status_code == 400
    fields = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert set(fields) == {"crisis_line_number", "emergency_number"}
    assert "digits" in fields["crisis_line_number"]
    assert put(api_client(members["nurse"]), UK).status_code == 403
    with scopes_disabled():
        assert not PatientPagesPolicy.objects.exists()


def test_the_set_up_screen_changes_the_numbers_and_keeps_what_was_typed(members: Any) -> None:
    client = staff_client(members["clinic_admin"])
    page = client.get("/setup/patient-portal/")
    assert page.status_code == 200
    assert b"988" in page.content
    form = {**UK, "sign_in_links_allowed": "on"}
    form.pop("crisis_line_takes_texts")
    refused = client.post("/setup/patient-portal/", {**form, "emergency_number": "99a"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert re.search(r'id="id_emergency_number-error"[^>]*>[^<]*digits', html), html
    assert 'value="116 123"' in html
    saved = client.post("/setup/patient-portal/", form)
    assert saved.status_code == 302
    shown = client.get("/setup/patient-portal/").content.decode()
    assert "call 116 123 (Samaritans) or call 999" in shown


@pytest.fixture
def uk_clinic(members: Any) -> Any:
    admin = actor_for(members["clinic_admin"])
    client = api_client(members["clinic_admin"])
    assert put(client, UK).status_code == 200
    with scope(organization=admin.organization):
        messaging.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
    return admin


def test_a_patient_sees_the_clinics_own_numbers_everywhere(
    uk_clinic: Any,
    prescriber: Any,
    org_a: Any,
    smtp_inbox: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, portal = portal_patient(prescriber)
    home = portal.get("/portal/").content.decode()
    assert 'href="tel:116123"' in home
    assert 'href="tel:999"' in home
    assert "Samaritans" in home
    assert "988" not in home
    assert "911" not in home
    intake = portal.get("/portal/intake/").content.decode()
    assert "call 116 123 (Samaritans) or call 999" in intake
    assert "988" not in intake

    # A positive PHQ-9 item 9: the review and the page after it show the clinic's numbers.
    patient = make_patient(prescriber, email="kit@example.org", given_name="Kit")
    with (
        scope(organization=prescriber.organization),
        django_capture_on_commit_callbacks(execute=True),
    ):
        issued = measures.measure_link_create(
            actor=prescriber, patient=patient, instrument_id="phq9"
        )
    [mail] = smtp_inbox.to("kit@example.org")
    assert "call 116 123 (Samaritans) or call 999" in mail.get_content()
    assert "988" not in mail.get_content()
    link = f"/portal/m/{issued.token}/"
    client = Client()
    form = {f"item_{k}": str(v) for k, v in phq9(item9=1).items()}
    review = client.post(link, {**form, "step": "review"}).content.decode()
    assert 'href="tel:116123"' in review
    done = client.post(link, {**form, "step": "send"}).content.decode()
    assert "Your care team has been alerted" in done
    assert 'href="tel:116123"' in done
    assert 'href="tel:999"' in done
    assert "988" not in done

    # The clinic's public page too.
    with scopes_disabled():
        clinic = Clinic.objects.get(organization=org_a)
    front = Client().get(f"/c/{clinic.public_id}/").content.decode()
    assert "call 116 123 (Samaritans) or call 999" in front
    assert "988" not in front
