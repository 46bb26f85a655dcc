"""Issue 15, the portal a patient understands: they stay logged in whatever the browser asks for,
log in with their e-mail or a readable username, see what is pending on one page, and withdraw a
consent only after confirming, which the prescriber then sees on their Today page."""

from __future__ import annotations

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import make_patient, staff_client
from ketaclinic.consent.models import ConsentSignature
from ketaclinic.consent.tests.test_consent import PATIENT_PASSWORD, portal_patient, seeded
from ketaclinic.measures import services as measures

pytestmark = pytest.mark.django_db
__all__ = ["seeded"]  # the fixture, used by name


def test_the_patient_stays_logged_in_across_favicon_and_static_requests(prescriber):
    _, client = portal_patient(prescriber)
    assert client.get("/favicon.ico").status_code == 301
    assert client.get("/static/css/app.css").status_code in (200, 404)
    assert client.get("/patients/").status_code == 302  # a staff page: refused, not logged out
    assert client.get("/portal/").status_code == 200


def test_a_readable_username_and_login_by_email(prescriber):
    patient, _ = portal_patient(prescriber)  # Ada Lovelace, ada@example.org
    with scopes_disabled():
        from ketaclinic.consent.models import PortalAccount

        account = PortalAccount.objects.get(patient=patient)
    assert account.user.username == "ada.lovelace"
    by_email = Client().post(
        "/portal/login/", {"username": "ADA@example.org", "password": PATIENT_PASSWORD}
    )
    assert by_email.status_code == 302
    wrong = Client().post("/portal/login/", {"username": "ada@example.org", "password": "nope"})
    assert wrong.status_code == 400
    assert b"E-mail, username or password is not right." in wrong.content
    second = make_patient(prescriber, given_name="Ada", family_name="Lovelace")
    with scope(organization=prescriber.organization):
        from ketaclinic.consent import services

        other, _ = services.portal_invite(actor=prescriber, patient=second)
    assert other.user.username == "ada.lovelace2"


def test_home_lists_pending_questionnaires_visits_documents_contact_and_crisis(
    prescriber, django_assert_max_num_queries
):
    patient, client = portal_patient(prescriber)
    with scope(organization=prescriber.organization):
        measures.measure_link_create(actor=prescriber, patient=patient, instrument_id="phq9")
    with django_assert_max_num_queries(20):
        html = client.get("/portal/").content.decode()
    assert "Questionnaire <strong>PHQ-9</strong>" in html
    assert 'id="upcoming-visits"' in html
    assert "Your documents" in html
    assert 'id="clinic-contact"' in html
    assert 'href="tel:988"' in html


def test_withdrawal_asks_to_confirm_then_shows_on_the_prescribers_today(
    seeded, prescriber, members
):
    patient, client = portal_patient(prescriber)
    version = seeded["intravenous"]
    data = {f"ack_{a['key']}": "on" for a in version.acknowledgements}
    data["printed_name"] = "Ada Lovelace"
    client.post(f"/portal/consents/{version.public_id}/sign/", data)
    with scopes_disabled():
        signature = ConsentSignature.objects.get()
    url = f"/portal/consents/signed/{signature.public_id}/revoke/"
    assert url in client.get("/portal/").content.decode()
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "What happens next" in confirm.content.decode()
    signature.refresh_from_db()
    assert signature.revoked_at is None  # asking is not withdrawing
    today = staff_client(members["prescriber"]).get("/").content.decode()
    assert 'id="consent-withdrawals"' not in today
    assert client.post(url, {"reason": "I changed my mind"}).status_code == 302
    signature.refresh_from_db()
    assert signature.revoked_at is not None
    today = staff_client(members["prescriber"]).get("/").content.decode()
    assert 'id="consent-withdrawals"' in today
    assert "Ada Lovelace" in today
    assert "Consent withdrawn" in today
