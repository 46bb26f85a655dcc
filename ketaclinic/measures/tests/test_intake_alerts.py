"""Active suicidal ideation with intent or a plan, reported in the intake history (by the patient
in the portal or by staff), alerts a clinician through the same safety alerts as a questionnaire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from conftest import api_client, audit_count, make_patient, staff_client
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.core import clock
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.measures import services as measures
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.tests.builders import phq9
from ketaclinic.portal.tests.test_portal_intake import URL, answers, portal_login
from ketaclinic.screening import services as screening
from ketaclinic.screening.models import IntakeHistory

pytestmark = pytest.mark.django_db
WITH_PLAN = "active_with_intent_or_plan"
SUMMARY = "Intake: active suicidal ideation with intent or a plan"


def alerts() -> list[SafetyAlert]:
    with scopes_disabled():
        return list(SafetyAlert.objects.select_related("intake", "patient").order_by("pk"))


def intake_count() -> int:
    with scopes_disabled():
        return IntakeHistory.objects.count()


def last_intake_event() -> AuditEvent:
    with scopes_disabled():
        return AuditEvent.objects.filter(action="screening.intake.recorded").latest("pk")


def report_with_plan(client: Any, **changes: str) -> Any:
    return client.post(URL, answers(suicidal_ideation=WITH_PLAN, **changes), follow=True)


# --- the portal path ---------------------------------------------------------------------------


def test_portal_report_with_a_plan_reaches_the_prescriber_who_acknowledges_it(members, prescriber):
    patient = make_patient(prescriber)
    account, client = portal_login(prescriber, patient)
    before = audit_count(action="screening.intake.recorded")

    home = report_with_plan(client)

    # The patient is told, at once, that the care team was alerted and where to call now.
    assert home.status_code == 200
    assert b"Your care team has been alerted" in home.content
    assert b"988" in home.content
    # One intake, one alert on it, in the same write, named in the intake's one audit event.
    [alert] = alerts()
    with scopes_disabled():
        intake = IntakeHistory.objects.get()
    assert intake.suicidal_ideation == WITH_PLAN
    assert (alert.source_kind, alert.intake_id, alert.response_id) == ("intake", intake.pk, None)
    assert (alert.patient_id, alert.organization_id) == (patient.pk, patient.organization_id)
    assert alert.severity == "critical"
    assert alert.rule == "suicidal-ideation-active-with-intent-or-plan@1"
    assert alert.summary.startswith(SUMMARY)
    assert "portal" in alert.summary
    assert "§3.2 [S] #53" in alert.findings[0]["source"]
    assert alert.responsible is None  # nobody sent this form: the whole team sees it
    # Escalated by the clinic's measure policy, as a questionnaire alert (default 30 minutes).
    waits = alert.escalate_after - alert.created_at
    assert timedelta(minutes=29) < waits <= timedelta(minutes=30)
    assert audit_count(action="screening.intake.recorded") == before + 1
    event = last_intake_event()
    assert event.channel == "portal"
    assert event.detail["alert"] == str(alert.public_id)
    assert event.detail["alert_already_open"] is False

    # The prescriber sees it on the dashboard and in the chart's alert banner.
    staff = staff_client(members["prescriber"])
    dashboard = staff.get("/").content.decode()
    assert f'id="alert-{alert.public_id}"' in dashboard
    assert SUMMARY in dashboard
    assert patient.full_name in dashboard
    assert "From the intake history" in dashboard
    assert f"/screening/patients/{patient.public_id}/" in dashboard
    chart = staff.get(f"/patients/{patient.public_id}/").content.decode()
    assert 'id="measure-alert-banner"' in chart
    assert SUMMARY in chart

    # ...and acknowledges it, with what was done.
    url = f"/measures/alerts/{alert.public_id}/"
    refused = staff.post(url, {"note": "  "})
    assert refused.status_code == 400
    done = staff.post(url, {"note": "Called the patient; same-day safety assessment booked."})
    assert done.status_code == 302
    [alert] = alerts()
    assert alert.acknowledged_by == members["prescriber"].user
    assert audit_count(action="measures.alert.acknowledged") == 1
    assert b"No open safety alerts." in staff.get("/").content
    assert b'id="measure-alert-banner"' not in staff.get(f"/patients/{patient.public_id}/").content


@pytest.mark.parametrize(
    "answer", ["none", "passive", "active_without_intent", "unsure"], ids=lambda a: a
)
def test_no_alert_when_the_answer_is_not_intent_or_plan(prescriber, answer):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    home = client.post(URL, answers(suicidal_ideation=answer), follow=True)
    assert home.status_code == 200
    assert b"Your care team has been alerted" not in home.content
    assert intake_count() == 1
    assert alerts() == []
    assert last_intake_event().detail["alert"] is None


def test_a_second_report_while_the_alert_is_open_raises_no_second_alert(prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    report_with_plan(client)
    [first] = alerts()

    again = report_with_plan(client)

    assert b"Your care team has been alerted" in again.content  # still told where to call
    assert intake_count() == 2
    assert alerts() == [first]
    event = last_intake_event()
    assert event.detail["alert"] == str(first.public_id)
    assert event.detail["alert_already_open"] is True
    # Once acknowledged, a new report is news again: a new alert.
    with scope(organization=prescriber.organization):
        measures.alert_acknowledge(actor=prescriber, alert=first, note="Safety plan reviewed.")
    report_with_plan(client)
    [acknowledged, new] = alerts()
    assert (acknowledged.pk, acknowledged.is_open, new.is_open) == (first.pk, False, True)


def test_an_open_questionnaire_alert_does_not_hide_the_intake_alert(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        measures.response_record(
            actor=prescriber, patient=patient, instrument_id="phq9", answers=phq9(item9=2)
        )
    _, client = portal_login(prescriber, patient)
    report_with_plan(client)
    assert sorted(a.source_kind for a in alerts()) == ["intake", "questionnaire"]


def test_bad_portal_input_writes_neither_intake_nor_alert(prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    before = audit_count()
    data = answers(suicidal_ideation=WITH_PLAN, hypertension="sort of")
    del data["pregnant"]
    response = client.post(URL, data)
    assert response.status_code == 400
    assert b'id="id_pregnant-error"' in response.content  # the message next to its field
    too_long = client.post(URL, answers(suicidal_ideation=WITH_PLAN, medication_changes="x" * 1001))
    assert too_long.status_code == 400
    assert (intake_count(), alerts(), audit_count()) == (0, [], before)


def test_the_service_refuses_bad_answers_before_raising_anything(prescriber):
    patient = make_patient(prescriber)
    account, _ = portal_login(prescriber, patient)
    before = audit_count()
    with scope(organization=prescriber.organization):
        with pytest.raises(ValidationFailed) as staff_only:
            screening.intake_record_portal(
                account=account, data={"suicidal_ideation": WITH_PLAN, "note": "mine"}
            )
        with pytest.raises(ValidationFailed) as unknown:
            screening.intake_record(
                actor=prescriber,
                patient=patient,
                data={"suicidal_ideation": WITH_PLAN, "pregnant": "perhaps"},
            )
    assert [e.field for e in staff_only.value.errors] == ["note"]
    assert [e.field for e in unknown.value.errors] == ["pregnant"]
    assert (intake_count(), alerts(), audit_count()) == (0, [], before)


# --- the staff path ----------------------------------------------------------------------------


def test_staff_recording_intent_or_plan_on_the_intake_page_raises_the_same_alert(
    members, prescriber
):
    nurse = members["nurse"]
    patient = make_patient(prescriber)
    client = staff_client(nurse)
    url = f"/screening/patients/{patient.public_id}/intake/"
    page = client.post(url, {"suicidal_ideation": WITH_PLAN}, follow=True)
    # The clinician is told on the spot, not only on the dashboard.
    assert "A critical safety alert was raised" in page.content.decode()
    [alert] = alerts()
    assert alert.source_kind == "intake"
    assert alert.summary.startswith(SUMMARY)
    assert "recorded in the intake history" in alert.summary
    assert alert.responsible == nurse.user  # the clinician who recorded it answers first
    assert last_intake_event().detail["alert"] == str(alert.public_id)
    # Saving the page again while it is open: no second alert.
    again = client.post(url, {"suicidal_ideation": WITH_PLAN}, follow=True)
    assert "A critical safety alert was raised" in again.content.decode()  # still open
    assert len(alerts()) == 1
    calm = client.post(url, {"suicidal_ideation": "none"}, follow=True)
    assert "A critical safety alert was raised" not in calm.content.decode()
    assert SUMMARY in staff_client(members["prescriber"]).get("/").content.decode()


def test_a_partial_save_that_carries_the_answer_over_raises_no_alert(prescriber):
    """Only an answer given in this save alerts: the staff API may send one field."""
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        screening.intake_record(
            actor=prescriber, patient=patient, data={"suicidal_ideation": WITH_PLAN}
        )
        [alert] = alerts()
        measures.alert_acknowledge(actor=prescriber, alert=alert, note="Assessed today.")
        intake = screening.intake_record(
            actor=prescriber, patient=patient, data={"hypertension": "controlled"}
        )
    assert intake.suicidal_ideation == WITH_PLAN
    assert len(alerts()) == 1
    assert intake.safety_alert is None


def test_an_outsider_never_sees_the_intake_alert(members, outsider, prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    report_with_plan(client)
    [alert] = alerts()
    other = staff_client(outsider)
    assert SUMMARY not in other.get("/").content.decode()
    assert other.get(f"/measures/alerts/{alert.public_id}/").status_code == 404


# --- the alert API, the database guard, query counts -------------------------------------------


def test_the_alerts_api_lists_and_acknowledges_an_intake_alert(members, prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    report_with_plan(client)
    [alert] = alerts()
    api = api_client(members["nurse"])
    [listed] = api.get("/api/v1/alerts").json()
    assert listed["source_kind"] == "intake"
    assert listed["intake"] == str(alert.intake.public_id)
    assert listed["response"] is None
    done = api.post(
        f"/api/v1/alerts/{alert.public_id}/acknowledge",
        {"note": "Patient called back."},
        content_type="application/json",
    )
    assert done.status_code == 200
    assert done.json()["acknowledged_at"] is not None


def test_the_database_refuses_a_second_open_intake_alert_and_a_sourceless_one(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        intake = screening.intake_record(
            actor=prescriber, patient=patient, data={"suicidal_ideation": WITH_PLAN}
        )
        [alert] = alerts()
        row = {
            "organization": alert.organization,
            "patient": patient,
            "rule": "x",
            "severity": "critical",
            "summary": "x",
            "policy_reference": "measure-policy@0",
            "escalate_after": clock.now(),
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            SafetyAlert.objects.create(source_kind="intake", intake=intake, **row)
        with pytest.raises(IntegrityError), transaction.atomic():
            SafetyAlert.objects.create(source_kind="questionnaire", **row)


def test_dashboard_and_banner_query_counts_do_not_grow_with_intake_alerts(
    members, prescriber, django_assert_num_queries
):
    from ketaclinic.measures.templatetags.measures import (
        measures_alert_banner,
        measures_alert_panel,
    )

    client = staff_client(members["prescriber"])
    first = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        screening.intake_record(
            actor=prescriber, patient=first, data={"suicidal_ideation": WITH_PLAN}
        )
    client.get("/")
    with CaptureQueriesContext(connection) as one:
        client.get("/")
    for n in range(4):
        patient = make_patient(prescriber, mrn=f"I{n}")
        with scope(organization=prescriber.organization):
            screening.intake_record(
                actor=prescriber, patient=patient, data={"suicidal_ideation": WITH_PLAN}
            )
            measures.response_record(
                actor=prescriber, patient=patient, instrument_id="phq9", answers=phq9(item9=1)
            )
    with CaptureQueriesContext(connection) as many:
        client.get("/")
    assert len(many) == len(one)
    context = {"caps": {"measures.view"}}
    with scope(organization=prescriber.organization):
        with django_assert_num_queries(1):
            measures_alert_banner(context, patient)
        with django_assert_num_queries(1):
            measures_alert_panel(context)


def test_an_unanswered_intake_alert_escalates_like_a_questionnaire_alert(members, prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    report_with_plan(client)
    [alert] = alerts()
    assert measures.alerts_escalate_overdue(now=alert.escalate_after) == 1
    [alert] = alerts()
    assert alert.escalated_to_role == "prescriber"
    assert audit_count(action="measures.alert.escalated") == 1
    assert "Escalated to prescriber" in staff_client(members["nurse"]).get("/").content.decode()
