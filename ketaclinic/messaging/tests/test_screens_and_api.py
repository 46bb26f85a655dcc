"""The Today page's notice, the patient's contact answers through UI and API, the policy API."""

from __future__ import annotations

from django.urls import reverse
from django_scopes import scope

from conftest import api_client, make_patient, staff_client
from ketaclinic.messaging.models import ContactPreference


def test_the_admins_today_page_says_when_no_channel_is_configured(members, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = ""
    settings.SMS_PROVIDER = ""
    page = staff_client(members["clinic_admin"]).get(reverse("core:dashboard"))
    assert "No message channel is configured" in page.content.decode()

    settings.EMAIL_HOST = "smtp.example.org"
    page = staff_client(members["clinic_admin"]).get(reverse("core:dashboard"))
    assert "No message channel is configured" not in page.content.decode()


def test_front_desk_records_an_opt_out_on_the_chart(prescriber, members):
    patient = make_patient(prescriber, email="ada@example.org")
    client = staff_client(members["front_desk"])
    url = reverse("messaging:contact-set", kwargs={"patient_id": patient.public_id})
    client.post(url, {"channel": "email", "allowed": "no"})
    section = client.get(
        reverse(
            "patients:chart-section",
            kwargs={"patient_id": patient.public_id, "section": "messages"},
        )
    )
    assert "the patient opted out" in section.content.decode()
    with scope(organization=prescriber.organization):
        assert ContactPreference.objects.get(patient=patient).allowed is False


def test_contact_answers_and_messages_through_the_api(prescriber, members, outsider):
    patient = make_patient(prescriber, email="ada@example.org")
    client = api_client(members["front_desk"])
    base = f"/api/v1/patients/{patient.public_id}"
    answer = client.put(f"{base}/contact/email", {"allowed": True}, content_type="application/json")
    assert answer.status_code == 200
    assert answer.json()["reason"] == "allowed by the patient"
    assert client.get(f"{base}/messages").json() == []
    assert api_client(members["researcher"]).get(f"{base}/contact").status_code == 403
    assert api_client(outsider).get(f"{base}/contact").status_code == 404
    bad = client.put(f"{base}/contact/fax", {"allowed": True}, content_type="application/json")
    assert bad.status_code in (400, 422)


def test_the_contact_policy_through_the_api_refuses_a_bad_phone(members):
    client = api_client(members["clinic_admin"])
    answer = client.put(
        "/api/v1/messaging/policy",
        {
            "email_allowed_by_default": True,
            "sms_allowed_by_default": False,
            "on_call_phone": "call me",
        },
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "on_call_phone"
    ok = client.put(
        "/api/v1/messaging/policy",
        {"email_allowed_by_default": True, "sms_allowed_by_default": False},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["email_allowed_by_default"] is True
    assert api_client(members["nurse"]).get("/api/v1/messaging/policy").status_code == 403
