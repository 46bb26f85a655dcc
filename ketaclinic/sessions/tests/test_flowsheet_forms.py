"""The flowsheet forms behind the session services that had no screen: dissociation (CADSS) and
sedation (MOAA/S) observations, the side-effects checklist, medications given, abort with a
reason, and the SPRAVATO REMS form (enrollment, staff answers, submission). Each: the happy path
through the real service and its audit event, per-field errors with nothing written, the
roles that lack the capability refused (403), another organization's session a 404; and the
flowsheet's query count pinned with a realistic number of vitals rows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from conftest import SESSION_DAY, audit_count, staff_client
from ketaclinic.sessions import services
from ketaclinic.sessions.models import (
    Intervention,
    PatientMonitoringForm,
    RemsEnrollment,
    SessionNote,
    SessionObservation,
    SessionTransition,
    TreatmentSession,
)
from ketaclinic.sessions.tests.builders import NORMAL, draw_for, session_prechecked

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
HX = {"HX-Request": "true"}
ASSESSED = {
    "alert_and_oriented": True,
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "clinically_stable": True,
    "escort_present": True,
}
PMF_ANSWERS = {
    "concomitant_benzodiazepines": "no",
    "concomitant_non_benzodiazepine_sedative_hypnotics": "no",
    "concomitant_psychostimulants": "yes",
    "concomitant_maois": "no",
    "minutes_until_ready_without_two_hour_rule": "90",
    "monitoring_hcp_phone": "+1 (312) 555-0100",
    "monitoring_hcp_email": "monitor@clinic.example",
    "setting_address": "1 Main St, Chicago IL",
}


@pytest.fixture
def nurse_ui(members: Any) -> Any:
    return staff_client(members["nurse"])


def url(session: Any, action: str) -> str:
    return f"/sessions/{session.public_id}/{action}/"


def fresh(session: Any) -> TreatmentSession:
    with scopes_disabled():
        return TreatmentSession.objects.get(pk=session.pk)


def count(model: Any, session: Any) -> int:
    with scopes_disabled():
        return model.objects.filter(session_id=session.pk).count()


def refused_for_roles_without(members: Any, session: Any, action: str, data: dict) -> None:
    """Therapist and compliance see the flowsheet but may not write on it."""
    for role in ("therapist", "compliance"):
        response = staff_client(members[role]).post(url(session, action), data, headers=HX)
        assert response.status_code == 403, role


def monitoring(actor: Any, patient: Any, protocol_id: str = "iv-ketamine-induction") -> Any:
    """A session whose dose was given at T0 (drawn from stock, so the ledger balances for
    esketamine; IV draws 50 mg for a 40 mg dose)."""
    esketamine = protocol_id.startswith("esketamine")
    with scope(organization=actor.organization):
        session = session_prechecked(actor, patient, protocol_id)
        services.dose_order_sign(actor=actor, session=session)
        given = services.dose_administer(
            actor=actor,
            session=session,
            dose_mg="56" if esketamine else "40",
            lot_number="SPR-1" if esketamine else "L1",
            ended_at=T0,
        )
        draw_for(actor, given, None if esketamine else "50")
    return fresh(session)


def esketamine_discharged(actor: Any, patient: Any, traveller: Any) -> Any:
    """An esketamine session discharged at 121 minutes, BP rechecked at 40 minutes."""
    session = monitoring(actor, patient, "esketamine-trd")
    with scope(organization=actor.organization):
        traveller.move_to(T0 + timedelta(minutes=40))
        services.vitals_record(actor=actor, session=session, samples=[NORMAL])
        traveller.move_to(T0 + timedelta(minutes=121))
        services.vitals_record(actor=actor, session=session, samples=[NORMAL])
        services.discharge_check(actor=actor, session=session, assessment=ASSESSED)
        services.session_discharge(actor=actor, session=session)
        services.note_save(actor=actor, session=session, text="Esketamine 56 mg, tolerated.")
    return fresh(session)


# --- observations -------------------------------------------------------------------------------


def test_cadss_sedation_and_side_effects_are_recorded(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    page = nurse_ui.get(f"/sessions/{session.public_id}/").content.decode()
    assert "<html" in page
    watching = staff_client(members["therapist"]).get(f"/sessions/{session.public_id}/")
    forms = ('id="cadss-form"', 'id="sedation-form"', 'id="side-effects-form"')
    for form in (*forms, 'id="intervention-form"', 'id="abort-form"'):
        assert form in page, form
        assert form not in watching.content.decode(), form  # read-only for the therapist
    cadss = url(session, "observations/cadss")

    over = nurse_ui.post(cadss, {"score": "93"}, headers=HX)
    assert over.status_code == 400
    assert "less than or equal to 92" in over.content.decode()
    assert b'id="cadss-score-error"' in over.content  # on the field, not just at the top
    assert b"<html" not in over.content
    blank = nurse_ui.post(cadss, {"score": ""}, headers=HX)
    assert blank.status_code == 400
    assert b"Enter the CADSS total (0-92)." in blank.content
    assert count(SessionObservation, session) == 0

    done = nurse_ui.post(cadss, {"score": "12", "note": "40 min post-dose"}, headers=HX)
    assert done.status_code == 200
    body = done.content.decode()
    assert "<html" not in body
    assert 'id="observations-panel"' in body
    assert "Dissociation (CADSS)" in body
    assert "<td>12</td>" in body

    sedation = url(session, "observations/sedation")
    bad = nurse_ui.post(sedation, {"score": "6"}, headers=HX)
    assert bad.status_code == 400
    assert b"Select a valid choice" in bad.content
    assert nurse_ui.post(sedation, {"score": "4"}, headers=HX).status_code == 200

    effects = url(session, "observations/side_effects")
    unknown = nurse_ui.post(effects, {"effects": ["nausea", "hiccups"]}, headers=HX)
    assert unknown.status_code == 400
    assert b"hiccups is not one of the available choices" in unknown.content
    # Escalating events are adverse events, never a quiet tick on the checklist.
    escalating = nurse_ui.post(effects, {"effects": ["respiratory_depression"]}, headers=HX)
    assert escalating.status_code == 400
    ticked = nurse_ui.post(effects, {"effects": ["nausea", "dizziness"]}, headers=HX)
    assert ticked.status_code == 200
    assert b"Dizziness, Nausea" in ticked.content
    none = nurse_ui.post(effects, {}, headers=HX)
    assert b"None of the listed side effects" in none.content

    with scopes_disabled():
        rows = list(SessionObservation.objects.filter(session_id=session.pk).order_by("pk"))
    assert [(r.kind, r.score, r.instrument) for r in rows[:2]] == [
        ("cadss", 12, "cadss@1"),
        ("sedation", 4, "moaa-s@1"),
    ]
    assert rows[2].data["nausea"] is True
    assert rows[2].data["headache"] is False  # every item recorded, ticked or not
    assert not any(rows[3].data.values())
    assert audit_count(action="sessions.observation.recorded") == 4

    assert nurse_ui.post(url(session, "observations/mood"), {"score": "1"}).status_code == 404
    refused_for_roles_without(members, session, "observations/cadss", {"score": "3"})
    assert staff_client(outsider).post(cadss, {"score": "3"}).status_code == 404
    assert count(SessionObservation, session) == 4


def test_nothing_is_observed_before_check_in(
    prescriber: Any, nurse_ui: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh

    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a)
        plan = make_plan(prescriber, patient_a)
        session = services.session_schedule(actor=prescriber, plan=plan, scheduled_at=T0)
    page = nurse_ui.get(f"/sessions/{session.public_id}/").content
    assert b'id="cadss-form"' not in page
    assert b'id="intervention-form"' not in page
    early = nurse_ui.post(url(session, "observations/cadss"), {"score": "3"}, headers=HX)
    assert early.status_code == 409
    assert b"Nothing can be observed in a session that is scheduled" in early.content
    assert count(SessionObservation, session) == 0


# --- medications given --------------------------------------------------------------------------


def test_a_medication_given_is_recorded_against_its_adverse_event(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    with scope(organization=prescriber.organization):
        nausea = services.adverse_event_record(
            actor=prescriber, session=session, event_code="nausea", grade=1
        )
    page = nurse_ui.get(f"/sessions/{session.public_id}/").content.decode()
    assert 'id="intervention-form"' in page
    assert f'value="{nausea.public_id}"' in page  # the session's events are offered

    target = url(session, "medications")
    empty = nurse_ui.post(target, {}, headers=HX)
    assert empty.status_code == 400
    body = empty.content.decode()
    for field in ("drug_name", "dose_text", "route", "reason"):
        assert f'id="intervention-{field}-error"' in body, field
    data = {"drug_name": "Ondansetron", "dose_text": "4 mg", "route": "oral", "reason": "Nausea"}
    bad_code = nurse_ui.post(target, {**data, "rxnorm_code": "ond-4"}, headers=HX)
    assert bad_code.status_code == 400
    assert b"An RxNorm code is digits only." in bad_code.content
    bad_route = nurse_ui.post(target, {**data, "route": "rectal-ish"}, headers=HX)
    assert bad_route.status_code == 400
    assert count(Intervention, session) == 0

    given = nurse_ui.post(target, {**data, "adverse_event": str(nausea.public_id)}, headers=HX)
    assert given.status_code == 200
    assert b"<html" not in given.content
    assert b"Ondansetron" in given.content
    with scopes_disabled():
        row = Intervention.objects.get(session_id=session.pk)
    assert (row.dose_text, row.route, row.adverse_event_id) == ("4 mg", "oral", nausea.pk)
    assert audit_count(action="sessions.intervention.recorded") == 1

    refused_for_roles_without(members, session, "medications", data)
    assert staff_client(outsider).post(target, data).status_code == 404
    assert count(Intervention, session) == 1


# --- abort --------------------------------------------------------------------------------------


def test_abort_needs_a_reason(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    assert b'id="abort-form"' in nurse_ui.get(f"/sessions/{session.public_id}/").content
    transitions = count(SessionTransition, session)
    blank = nurse_ui.post(url(session, "abort"), {"reason": "   "}, headers=HX)
    assert blank.status_code == 400
    assert b"Say why the session is aborted." in blank.content
    assert b'id="abort-reason-error"' in blank.content
    assert fresh(session).state == "monitoring"
    assert count(SessionTransition, session) == transitions
    refused_for_roles_without(members, session, "abort", {"reason": "Patient asked to stop"})
    assert staff_client(outsider).post(url(session, "abort"), {"reason": "x"}).status_code == 404
    assert fresh(session).state == "monitoring"

    reason = "Transferred to the emergency department for chest pain"
    stopped = nurse_ui.post(url(session, "abort"), {"reason": reason}, headers=HX)
    assert stopped.status_code == 200
    body = stopped.content.decode()
    assert "<html" not in body
    assert '<dd id="session-state">Aborted</dd>' in body
    assert reason in body
    assert 'id="abort-form"' not in body
    assert 'id="cadss-form"' not in body
    assert fresh(session).abort_reason == reason
    assert audit_count(action="sessions.session.aborted") == 1
    again = nurse_ui.post(url(session, "abort"), {"reason": reason}, headers=HX)
    assert again.status_code == 409
    assert b"already aborted" in again.content


# --- the SPRAVATO REMS form ---------------------------------------------------------------------


def test_rems_answers_complete_the_form_so_the_note_can_be_signed(
    prescriber: Any, members: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = esketamine_discharged(prescriber, patient_a, traveller)
    nurse_ui = staff_client(members["nurse"])
    page = nurse_ui.get(f"/sessions/{session.public_id}/").content.decode()
    assert 'id="pmf-panel"' in page
    assert "incomplete" in page
    assert 'data-field="concomitant_maois" class="warning"' in page
    # Enrolled before the dose (esketamine is refused without it); the enrolment form itself is
    # tested in test_floor_stops.py on a patient not yet enrolled.
    assert "enrolled in the REMS on" in page
    watching = staff_client(members["compliance"]).get(f"/sessions/{session.public_id}/")
    assert b'id="pmf-answers"' in watching.content
    assert b'id="pmf-form"' not in watching.content
    early = nurse_ui.post(url(session, "note/sign"), {"text": "Tolerated."}, headers=HX)
    assert early.status_code == 422
    assert b"REMS Patient Monitoring Form is incomplete" in early.content

    target = url(session, "rems/answers")
    bad = {
        **PMF_ANSWERS,
        "concomitant_maois": "maybe",
        "minutes_until_ready_without_two_hour_rule": "-5",
        "monitoring_hcp_email": "nurse at clinic",
        "monitoring_hcp_phone": "call the desk",
    }
    refused = nurse_ui.post(target, bad, headers=HX)
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "<html" not in body
    for field in (
        "concomitant_maois",
        "minutes_until_ready_without_two_hour_rule",
        "monitoring_hcp_email",
        "monitoring_hcp_phone",
    ):
        assert f'id="pmf-{field}-error"' in body, field
    late = {**PMF_ANSWERS, "minutes_until_ready_without_two_hour_rule": "150"}
    too_late = nurse_ui.post(target, late, headers=HX)
    assert too_late.status_code == 400
    assert b"monitored for 121 minutes" in too_late.content
    with scopes_disabled():
        pmf = PatientMonitoringForm.objects.get(session_id=session.pk)
    assert "concomitant_maois" not in pmf.data
    refused_for_roles_without(members, session, "rems/answers", PMF_ANSWERS)
    assert staff_client(outsider).post(target, PMF_ANSWERS).status_code == 404

    saved = nurse_ui.post(target, PMF_ANSWERS, headers=HX)
    assert saved.status_code == 200
    assert b"<strong>complete</strong>" in saved.content
    with scopes_disabled():
        pmf.refresh_from_db()
    assert pmf.missing == []
    assert pmf.data["concomitant_psychostimulants"] is True
    assert pmf.data["concomitant_maois"] is False
    assert pmf.data["minutes_until_ready_without_two_hour_rule"] == 90
    assert pmf.data["setting_address"] == "1 Main St, Chicago IL"
    assert audit_count(action="sessions.pmf.updated") == 1
    # A blank answer leaves the earlier one as it was.
    nurse_ui.post(target, {"concomitant_opioids": "no"}, headers=HX)
    with scopes_disabled():
        pmf.refresh_from_db()
    assert (pmf.data["concomitant_maois"], pmf.data["concomitant_opioids"]) == (False, False)

    enroll = url(session, "rems/enrollment")
    with scopes_disabled():
        pmf.refresh_from_db()
    assert pmf.data["patient_enrolled_in_rems"] is True
    twice = nurse_ui.post(enroll, {"enrolled_on": "2026-02-21"}, headers=HX)
    assert twice.status_code == 409
    with scopes_disabled():
        assert RemsEnrollment.objects.filter(patient_id=patient_a.pk).count() == 1

    signed = nurse_ui.post(url(session, "note/sign"), {"text": "Tolerated."}, headers=HX)
    assert signed.status_code == 200, signed.content.decode()[:3000]
    with scopes_disabled():
        assert SessionNote.objects.get(session_id=session.pk).signed_at is not None

    submit = url(session, "rems/submitted")
    ahead = nurse_ui.post(submit, {"submitted_on": "2026-03-05"}, headers=HX)
    assert ahead.status_code == 400
    assert b"The date is in the future." in ahead.content
    sent = nurse_ui.post(submit, {"submitted_on": "2026-03-02"}, headers=HX)
    assert sent.status_code == 200
    assert b"submitted 2026-03-02" in sent.content
    assert b'id="pmf-form"' not in sent.content  # the sent form is not edited in place
    with scopes_disabled():
        pmf.refresh_from_db()
    assert pmf.submitted_on == date(2026, 3, 2)
    assert audit_count(action="sessions.pmf.submitted") == 1


def test_an_iv_session_has_no_rems_form(
    prescriber: Any, nurse_ui: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    assert b'id="pmf-panel"' not in nurse_ui.get(f"/sessions/{session.public_id}/").content
    for action in ("rems/answers", "rems/enrollment", "rems/submitted"):
        assert nurse_ui.post(url(session, action), PMF_ANSWERS).status_code == 404
    with scopes_disabled():
        assert not PatientMonitoringForm.objects.filter(session_id=session.pk).exists()


# --- the flowsheet's query count ----------------------------------------------------------------

# Pinned. Login session, user, TOTP device and membership (4); the session (1); the audit write
# (5, in a savepoint); the flowsheet selector (10); the REMS enrollment (1); the idle-timeout
# session save (3); the therapy pre-check panel (4: latest integration note, latest risk
# assessment, risk flags, the therapists on the session or plan, each a bounded query).
# A failing count means a missing select_related, not a bigger number.
FLOWSHEET_QUERIES = 28


def test_the_flowsheet_reads_a_fixed_number_of_queries(
    prescriber: Any,
    members: Any,
    patient_a: Any,
    traveller: Any,
    django_assert_max_num_queries: Any,
) -> None:
    """A 2-hour esketamine session charted every 5 minutes: 25 vitals rows, observations,
    medications, adverse events. More rows do not mean more queries."""
    session = monitoring(prescriber, patient_a, "esketamine-trd")
    traveller.move_to(T0 + timedelta(minutes=125))
    nurse_ui = staff_client(members["nurse"])
    page = f"/sessions/{session.public_id}/"

    def chart(rows: int) -> None:
        with scope(organization=prescriber.organization):
            samples = [{**NORMAL, "taken_at": T0 + timedelta(minutes=5 * m)} for m in range(rows)]
            services.vitals_record(actor=prescriber, session=session, samples=samples)
            services.observation_record(actor=prescriber, session=session, kind="cadss", score=4)
            services.observation_record(
                actor=prescriber, session=session, kind="side_effects", data={"nausea": True}
            )
            event = services.adverse_event_record(
                actor=prescriber, session=session, event_code="nausea", grade=1
            )
            services.intervention_record(
                actor=prescriber,
                session=session,
                drug_name="Ondansetron",
                dose_text="4 mg",
                route="oral",
                reason="Nausea",
                adverse_event=event,
            )
            services.pmf_update(actor=prescriber, session=session, answers={})

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert nurse_ui.get(page).status_code == 200
        return len(captured)

    chart(5)
    queries()  # the browser session's first request resolves who it is (cached per process)
    few = queries()
    chart(20)
    with django_assert_max_num_queries(FLOWSHEET_QUERIES):
        response = nurse_ui.get(page)
    assert response.content.count(b'<tr class="severity-') == 26  # 25 + the pre-dose row
    assert queries() == few, few
    with django_assert_max_num_queries(FLOWSHEET_QUERIES):
        assert nurse_ui.get(page, {"partial": "vitals-table"}, headers=HX).status_code == 200
