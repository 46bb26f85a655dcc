"""Messages really delivered: to a local SMTP server and a local SMS endpoint, with retries,
failures shown on the patient's page, opt-outs honoured and alert escalations to the on-call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_patient, staff_client
from ketaclinic.measures import services as measures
from ketaclinic.measures.tests.builders import phq9
from ketaclinic.messaging import backoff, services
from ketaclinic.messaging.models import DeliveryAttempt, Message

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def email_default(members):
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        services.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
    return admin


def _issue_phq9_link(actor, patient, capture):
    with scope(organization=actor.organization), capture(execute=True):
        return measures.measure_link_create(actor=actor, patient=patient, instrument_id="phq9")


def _messages(**filters):
    with scopes_disabled():
        return list(Message.objects.filter(**filters).order_by("pk"))


def test_a_phq9_link_arrives_by_email_with_its_one_time_url(
    prescriber, email_default, smtp_inbox, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, email="ada@example.org")
    issued = _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)

    [mail] = smtp_inbox.to("ada@example.org")
    body = mail.get_content()
    assert issued.token in body
    assert "http://127.0.0.1:8000/portal/m/" in body
    assert "PHQ" not in body
    assert "depress" not in body.lower()
    [message] = _messages(patient=patient)
    assert message.status == "sent"
    assert message.sealed_secret == ""  # the token is gone from the outbox once sent


def test_the_token_is_never_stored_in_clear_while_queued(
    prescriber, email_default, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, email="ada@example.org")
    with scope(organization=prescriber.organization), django_capture_on_commit_callbacks():
        issued = measures.measure_link_create(
            actor=prescriber, patient=patient, instrument_id="phq9"
        )
    [message] = _messages(patient=patient)
    assert message.status == "queued"
    stored = f"{message.context} {message.sealed_secret} {message.attachments}"
    assert issued.token not in stored
    assert issued.token.split(":")[0] not in stored


def test_the_worker_delivers_a_queued_link_within_30_seconds(
    prescriber, email_default, smtp_inbox, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, email="ada@example.org")
    with scope(organization=prescriber.organization), django_capture_on_commit_callbacks():
        measures.measure_link_create(actor=prescriber, patient=patient, instrument_id="phq9")
    # The task queued on commit was dropped here; the worker's periodic outbox job sends it.
    call_command("worker", "--once")
    [message] = _messages(patient=patient)
    assert message.status == "sent"
    assert message.sent_at - message.created_at < timedelta(seconds=30)
    assert len(smtp_inbox.to("ada@example.org")) == 1


def test_an_sms_reaches_the_provider_endpoint_in_twilio_shape(
    prescriber, members, sms_endpoint, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, phone="+15125550123")
    with scope(organization=prescriber.organization):
        services.contact_preference_set(
            actor=prescriber, patient=patient, channel="sms", allowed=True
        )
    issued = _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)

    [request] = sms_endpoint.received
    assert (
        request["path"] == "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    )
    assert request["type"] == "application/x-www-form-urlencoded"
    assert request["auth"] == "AC0123456789abcdef0123456789abcdef:test-auth-token"
    assert request["form"]["To"] == "+15125550123"
    assert request["form"]["From"] == "+15005550006"
    assert issued.token in request["form"]["Body"]
    [message] = _messages(patient=patient)
    assert (message.status, message.channel, message.provider_message_id[:2]) == (
        "sent",
        "sms",
        "SM",
    )


def test_a_provider_outage_is_retried_then_shown_as_failed_on_the_patients_page(
    prescriber, members, sms_endpoint, django_capture_on_commit_callbacks
):
    sms_endpoint.fail_with = 503
    with time_machine.travel(START, tick=False) as traveller:
        patient = make_patient(prescriber, phone="+15125550123")
        with scope(organization=prescriber.organization):
            services.contact_preference_set(
                actor=prescriber, patient=patient, channel="sms", allowed=True
            )
        _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)
        [message] = _messages(patient=patient)
        assert message.status == "queued"
        assert message.attempt_count == 1

        # Nothing is retried before its back-off has passed ...
        assert services.outbox_deliver_due(now=START + timedelta(seconds=10)).retrying == 0
        now = START
        for attempt in range(1, backoff.MAX_ATTEMPTS):
            now += backoff.retry_delay(attempt)
            traveller.move_to(now)
            services.outbox_deliver_due(now=now)
    [message] = _messages(patient=patient)
    assert message.status == "failed"
    assert message.attempt_count == backoff.MAX_ATTEMPTS == len(sms_endpoint.received)
    assert "503" in message.status_reason
    with scopes_disabled():
        outcomes = list(
            DeliveryAttempt.objects.filter(message=message).values_list("outcome", flat=True)
        )
    assert outcomes == ["retry"] * (backoff.MAX_ATTEMPTS - 1) + ["gave_up"]

    client = staff_client(members["front_desk"])
    chart = client.get(reverse("patients:chart", kwargs={"patient_id": patient.public_id}))
    assert "1 message to this patient not delivered" in chart.content.decode()
    section = client.get(
        reverse(
            "patients:chart-section",
            kwargs={"patient_id": patient.public_id, "section": "messages"},
        )
    )
    html = section.content.decode()
    assert "1 message not delivered" in html
    assert "gave up after 6 attempts" in html


def test_a_refused_address_fails_at_once_like_a_bounce(
    prescriber, email_default, smtp_inbox, django_capture_on_commit_callbacks
):
    smtp_inbox.refuse.add("nobody@example.org")
    patient = make_patient(prescriber, email="nobody@example.org")
    _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)
    [message] = _messages(patient=patient)
    assert message.status == "failed"
    assert message.attempt_count == 1
    assert "550" in message.status_reason
    assert smtp_inbox.messages == []


def test_an_unreachable_mail_server_is_retried(
    prescriber, email_default, settings, django_capture_on_commit_callbacks
):
    from ketaclinic.messaging.tests.servers import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    patient = make_patient(prescriber, email="ada@example.org")
    _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)
    [message] = _messages(patient=patient)
    assert message.status == "queued"
    assert message.next_attempt_at is not None
    assert "could not be reached" in message.status_reason


def test_an_opted_out_patient_receives_nothing(
    prescriber, email_default, smtp_inbox, sms_endpoint, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, email="ada@example.org", phone="+15125550123")
    with scope(organization=prescriber.organization):
        services.contact_preference_set(
            actor=prescriber, patient=patient, channel="email", allowed=False
        )
    _issue_phq9_link(prescriber, patient, django_capture_on_commit_callbacks)
    assert smtp_inbox.messages == []
    assert sms_endpoint.received == []
    [message] = _messages(patient=patient)
    assert message.status == "suppressed"
    assert "opted out" in message.status_reason


def test_an_opt_out_after_queueing_stops_the_waiting_message(
    prescriber, email_default, smtp_inbox, django_capture_on_commit_callbacks
):
    patient = make_patient(prescriber, email="ada@example.org")
    with scope(organization=prescriber.organization), django_capture_on_commit_callbacks():
        measures.measure_link_create(actor=prescriber, patient=patient, instrument_id="phq9")
    with scope(organization=prescriber.organization):
        services.contact_preference_set(
            actor=prescriber, patient=patient, channel="email", allowed=False
        )
    call_command("worker", "--once")
    assert smtp_inbox.messages == []
    [message] = _messages(patient=patient)
    assert (message.status, message.sealed_secret) == ("suppressed", "")


def test_without_an_address_or_agreement_nothing_is_sent(prescriber, members, smtp_inbox):
    no_email = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        measures.measure_link_create(actor=prescriber, patient=no_email, instrument_id="phq9")
        # The clinic's conservative default: an address alone is not consent.
        with_email = make_patient(prescriber, mrn="M2", email="b@example.org")
        measures.measure_link_create(actor=prescriber, patient=with_email, instrument_id="phq9")
    assert [m.status for m in _messages()] == ["suppressed", "suppressed"]
    assert "no address" in _messages(patient=no_email)[0].status_reason
    assert "asks first" in _messages(patient=with_email)[0].status_reason


def test_an_unacknowledged_item9_alert_reaches_the_on_call_clinician(
    prescriber, members, smtp_inbox, sms_endpoint, django_capture_on_commit_callbacks
):
    admin = actor_for(members["clinic_admin"])
    with time_machine.travel(START, tick=False):
        with scope(organization=admin.organization):
            services.contact_policy_set(
                actor=admin,
                email_allowed_by_default=False,
                sms_allowed_by_default=False,
                on_call_email="oncall@clinic.example.org",
                on_call_phone="+15125550199",
            )
            measures.measure_policy_publish(actor=admin, escalation_minutes=20)
        patient = make_patient(prescriber, given_name="Zebulon")
        with scope(organization=prescriber.organization):
            measures.response_record(
                actor=prescriber, patient=patient, instrument_id="phq9", answers=phq9(item9=2)
            )
    later = START + timedelta(minutes=21)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        measures.alerts_escalate_overdue(now=later)
        measures.alerts_escalate_overdue(now=later)  # a second worker: still one page

    [mail] = smtp_inbox.to("oncall@clinic.example.org")
    assert "/measures/alerts/" in mail.get_content()
    assert "Zebulon" not in mail.get_content()
    assert "Zebulon" not in mail["Subject"]
    [text] = sms_endpoint.bodies_to("+15125550199")
    assert "critical safety alert" in text
    assert "Zebulon" not in text


def test_without_on_call_addresses_the_escalation_role_is_emailed(
    prescriber, members, smtp_inbox, django_capture_on_commit_callbacks
):
    user = members["prescriber"].user
    user.email = "dr.on.call@example.org"
    user.save()
    with time_machine.travel(START, tick=False):
        patient = make_patient(prescriber)
        with scope(organization=prescriber.organization):
            measures.response_record(
                actor=prescriber, patient=patient, instrument_id="phq9", answers=phq9(item9=1)
            )
    later = START + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        measures.alerts_escalate_overdue(now=later)
    assert len(smtp_inbox.to("dr.on.call@example.org")) == 1


def test_a_portal_invitation_is_sent_as_the_consent_request(
    prescriber, email_default, smtp_inbox, django_capture_on_commit_callbacks
):
    from ketaclinic.consent.services import portal_invite

    patient = make_patient(prescriber, email="ada@example.org")
    with (
        scope(organization=prescriber.organization),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _, token = portal_invite(actor=prescriber, patient=patient)
    [mail] = smtp_inbox.to("ada@example.org")
    assert f"/portal/invite/{token}/" in mail.get_content()


def test_an_appointment_reminder_reaches_the_sms_endpoint(
    prescriber, members, sms_endpoint, django_capture_on_commit_callbacks
):
    from ketaclinic.scheduling import services as scheduling
    from ketaclinic.scheduling.tests.helpers import open_every_day, types

    admin = actor_for(members["clinic_admin"])
    with time_machine.travel(START, tick=False):
        patient = make_patient(prescriber, phone="+15125550123")
        with scope(organization=prescriber.organization):
            open_every_day(admin, members["nurse"])
            services.contact_preference_set(
                actor=prescriber, patient=patient, channel="sms", allowed=True
            )
            with django_capture_on_commit_callbacks(execute=True):
                scheduling.appointment_book(
                    actor=prescriber,
                    patient=patient,
                    appointment_type=types(prescriber.organization)["iv_infusion"],
                    starts_at=START + timedelta(hours=23),  # 8:00 in Chicago
                    notify=False,
                )
        with django_capture_on_commit_callbacks(execute=True):
            assert scheduling.reminders_send_due(now=START) == 1
    [text] = sms_endpoint.bodies_to("+15125550123")
    assert "reminder of your appointment" in text
    assert "ketamine" not in text.lower()  # no treatment in an SMS
