"""The flowsheet's workflow forms (htmx): each view's happy path, a refusal shown on the form with
its 4xx and nothing written, and another organization's 404. The services are the real ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import PASSWORD, SESSION_DAY, staff_client
from ketaclinic.sessions import services
from ketaclinic.sessions.models import (
    DoseAdministration,
    DoseOrder,
    NoteAmendment,
    Precheck,
    SessionNote,
    SessionTransition,
    TreatmentSession,
)
from ketaclinic.sessions.services import COMPUTED_ITEMS
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    draw_for,
    make_plan,
    make_treatable,
    session_checked_in,
    session_prechecked,
    ticked,
    waste_rest,
    weigh,
)

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


@pytest.fixture
def nurse_ui(members: Any) -> Any:
    return staff_client(members["nurse"])


@pytest.fixture
def doctor_ui(members: Any) -> Any:
    return staff_client(members["prescriber"])


def url(session: Any, action: str) -> str:
    return f"/sessions/{session.public_id}/{action}/"


def fresh(session: Any) -> TreatmentSession:
    with scopes_disabled():
        return TreatmentSession.objects.get(pk=session.pk)


def count(model: Any, session: Any) -> int:
    with scopes_disabled():
        return model.objects.filter(session_id=session.pk).count()


def precheck_post(session: Any, **vitals: Any) -> dict[str, Any]:
    data = {f"check_{c}": "on" for c in ticked(session) if c not in COMPUTED_ITEMS}
    return {**data, **NORMAL, **vitals}


def ordered(actor: Any, patient: Any) -> Any:
    with scope(organization=actor.organization):
        session = session_prechecked(actor, patient)
        services.dose_order_sign(actor=actor, session=session)
    return session


def monitoring(actor: Any, patient: Any) -> Any:
    session = ordered(actor, patient)
    with scope(organization=actor.organization):
        given = services.dose_administer(
            actor=actor, session=session, dose_mg="40", lot_number="L1", ended_at=T0
        )
        draw_for(actor, given, "50")  # 10 mg over the dose, wasted before the note is signed
    return fresh(session)


def test_schedule_and_start_from_the_chart(
    prescriber: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient_a)
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/sessions/")
    assert b"Schedule session" in chart.content
    assert plan.protocol_key.encode() in chart.content
    target = f"/sessions/schedule/{patient_a.public_id}/"
    data = {"plan": str(plan.public_id), "scheduled_at": "2026-03-03T09:30", "chair": "2"}
    made = nurse_ui.post(target, data, headers=HX)
    assert made.status_code == 204
    with scopes_disabled():
        session = TreatmentSession.objects.get(plan=plan)
    assert made["HX-Redirect"] == f"/sessions/{session.public_id}/"
    assert session.state == "scheduled"
    assert session.scheduled_at == datetime(2026, 3, 3, 15, 30, tzinfo=UTC)  # 09:30 Chicago
    started = nurse_ui.post(target, {"plan": str(plan.public_id), "start": "1"})
    assert started.status_code == 302
    with scopes_disabled():
        assert TreatmentSession.objects.filter(plan=plan, state="checked_in").count() == 1
    # Refused: chair 9 in a 4-chair clinic, and no time given; nothing written.
    refused = nurse_ui.post(target, {**data, "chair": "9"}, headers=HX)
    assert refused.status_code == 400
    assert b"has no chair 9; its chairs are 1, 2, 3, 4" in refused.content
    assert b"<html" not in refused.content
    no_time = nurse_ui.post(target, {"plan": str(plan.public_id)}, headers=HX)
    assert no_time.status_code == 400
    assert b"Give the time" in no_time.content
    with scopes_disabled():
        assert TreatmentSession.objects.filter(plan=plan).count() == 2
    assert staff_client(outsider).post(target, data).status_code == 404


def test_check_in(
    prescriber: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a)
        plan = make_plan(prescriber, patient_a)
        session = services.session_schedule(actor=prescriber, plan=plan, scheduled_at=T0)
    page = nurse_ui.get(f"/sessions/{session.public_id}/")
    assert b'id="checkin-form"' in page.content
    assert staff_client(outsider).post(url(session, "check-in"), {}).status_code == 404
    done = nurse_ui.post(url(session, "check-in"), {"chair": "3"}, headers=HX)
    assert done.status_code == 200
    assert b"<html" not in done.content
    assert b'id="precheck-form"' in done.content
    assert (fresh(session).state, fresh(session).chair) == ("checked_in", 3)
    transitions = count(SessionTransition, session)
    again = nurse_ui.post(url(session, "check-in"), {}, headers=HX)
    assert again.status_code == 409
    assert b'id="refusal"' in again.content
    assert count(SessionTransition, session) == transitions


def test_prechecks_gate_and_prescriber_override(
    prescriber: Any,
    nurse_ui: Any,
    doctor_ui: Any,
    outsider: Any,
    patient_a: Any,
    traveller: Any,
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    form = nurse_ui.get(f"/sessions/{session.public_id}/")
    assert b"check_transport_arranged" in form.content
    assert b"override_reason" not in form.content  # nurses do not override
    assert b"override_reason" in doctor_ui.get(f"/sessions/{session.public_id}/").content
    assert (
        staff_client(outsider).post(url(session, "prechecks"), precheck_post(session)).status_code
        == 404
    )
    high = precheck_post(session, systolic=150, diastolic=95)
    refused = nurse_ui.post(url(session, "prechecks"), high, headers=HX)
    assert refused.status_code == 422
    assert b"above the pre-dose gate" in refused.content or b"gate" in refused.content
    assert b"<html" not in refused.content
    assert fresh(session).state == "checked_in"
    # A failed pass is kept on the record (the service's rule), never as passed.
    with scopes_disabled():
        assert not Precheck.objects.filter(session_id=session.pk, passed=True).exists()
    short = doctor_ui.post(url(session, "prechecks"), {**high, "override_reason": "ok"}, headers=HX)
    assert short.status_code == 400
    assert b"Justify the override" in short.content
    overridden = doctor_ui.post(
        url(session, "prechecks"),
        {**high, "override_reason": "Chronic stage 1 hypertension, asymptomatic."},
        headers=HX,
    )
    assert overridden.status_code == 200
    assert b"Passed with a prescriber&#x27;s override" in overridden.content
    assert fresh(session).state == "prechecks_passed"


def test_prechecks_pass_for_a_nurse(
    prescriber: Any, nurse_ui: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    missing = precheck_post(session)
    missing.pop("check_transport_arranged")
    refused = nurse_ui.post(url(session, "prechecks"), missing, headers=HX)
    assert refused.status_code == 422
    assert b"transport_arranged" in refused.content
    ok = nurse_ui.post(url(session, "prechecks"), precheck_post(session), headers=HX)
    assert ok.status_code == 200
    assert fresh(session).state == "prechecks_passed"
    assert b'id="order-form"' not in ok.content  # the nurse does not sign orders


def test_dose_order_shows_the_calculation(
    prescriber: Any,
    nurse_ui: Any,
    doctor_ui: Any,
    outsider: Any,
    patient_a: Any,
    traveller: Any,
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    assert staff_client(outsider).post(url(session, "dose-order"), {}).status_code == 404
    assert nurse_ui.post(url(session, "dose-order"), {}, headers=HX).status_code == 403
    over = doctor_ui.post(url(session, "dose-order"), {"prescribed_amount": "5"}, headers=HX)
    assert over.status_code == 422
    assert b"<html" not in over.content
    assert b"cap" in over.content.lower() or b"maximum" in over.content.lower()
    assert count(DoseOrder, session) == 0
    signed = doctor_ui.post(url(session, "dose-order"), {}, headers=HX)
    assert signed.status_code == 200, signed.content.decode()[:2000]
    body = signed.content.decode()
    for fact in ("40 mg", "80", "156 mL/h", "dose-weight-based@1", "4 mL", "max 0.75 mg/kg"):
        assert fact in body, fact
    assert 'id="administer-form"' in body
    assert count(DoseOrder, session) == 1


def test_administration_and_completion(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = ordered(prescriber, patient_a)
    data = {"dose_mg": "40", "lot_number": "LOT-7"}
    assert staff_client(outsider).post(url(session, "administration"), data).status_code == 404
    over = nurse_ui.post(url(session, "administration"), {**data, "dose_mg": "45"}, headers=HX)
    assert over.status_code == 422
    assert b"more than the signed order" in over.content
    assert count(DoseAdministration, session) == 0
    assert fresh(session).state == "prechecks_passed"
    given = nurse_ui.post(url(session, "administration"), data, headers=HX)
    assert given.status_code == 200
    assert b"lot LOT-7" in given.content
    assert fresh(session).state == "dosing"
    early = nurse_ui.post(url(session, "administration"), data, headers=HX)
    assert early.status_code == 409
    assert count(DoseAdministration, session) == 1
    traveller.shift(timedelta(minutes=40))
    nurse_ui = staff_client(members["nurse"])  # the idle timeout (15 min) logged the first out
    assert staff_client(outsider).post(url(session, "dose-complete"), {}).status_code == 404
    done = nurse_ui.post(url(session, "dose-complete"), {}, headers=HX)
    assert done.status_code == 200
    assert fresh(session).state == "monitoring"
    twice = nurse_ui.post(url(session, "dose-complete"), {}, headers=HX)
    assert twice.status_code == 409
    assert b"Cannot complete the dose" in twice.content


def test_discharge_waits_for_the_minimum_time(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    traveller.move_to(T0 + timedelta(minutes=30))
    with scope(organization=prescriber.organization):
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
    nurse_ui.post(url(session, "discharge-check"), ASSESSED, headers=HX)
    early = nurse_ui.post(url(session, "discharge"), {}, headers=HX)
    assert early.status_code == 422
    assert b"may not leave yet" in early.content
    assert fresh(session).state == "monitoring"
    assert staff_client(outsider).post(url(session, "discharge"), {}).status_code == 404
    traveller.move_to(T0 + timedelta(minutes=125))
    nurse_ui = staff_client(members["nurse"])  # logged out by the idle timeout meanwhile
    with scope(organization=prescriber.organization):
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
    nurse_ui.post(url(session, "discharge-check"), ASSESSED, headers=HX)
    out = nurse_ui.post(url(session, "discharge"), {}, headers=HX)
    assert out.status_code == 200
    assert fresh(session).state == "discharged"
    assert b'id="discharged"' in out.content


def test_note_save_sign_and_amend(
    prescriber: Any, members: Any, nurse_ui: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    session = monitoring(prescriber, patient_a)
    saved = nurse_ui.post(url(session, "note"), {"text": "Tolerated well."}, headers=HX)
    assert saved.status_code == 200
    assert b"The note is signed after discharge" in saved.content
    early = nurse_ui.post(url(session, "note/sign"), {"text": "Tolerated well."}, headers=HX)
    assert early.status_code == 409
    assert b"Sign the note after discharge" in early.content
    with scopes_disabled():
        assert SessionNote.objects.get(session_id=session.pk).signed_at is None
    assert staff_client(outsider).post(url(session, "note/sign"), {"text": "x"}).status_code == 404
    traveller.move_to(T0 + timedelta(minutes=125))
    nurse_ui = staff_client(members["nurse"])  # logged out by the idle timeout meanwhile
    with scope(organization=prescriber.organization):
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
        services.discharge_check(actor=prescriber, session=session, assessment=ASSESSED)
        services.session_discharge(actor=prescriber, session=session)
    unbalanced = nurse_ui.post(url(session, "note/sign"), {"text": "Tolerated well."}, headers=HX)
    assert unbalanced.status_code == 422
    assert b"10 mg unaccounted" in unbalanced.content
    with scope(organization=prescriber.organization):
        given = DoseAdministration.objects.get(session=session)
        assert waste_rest(prescriber, given, members["nurse"], PASSWORD).balanced
    signed = nurse_ui.post(url(session, "note/sign"), {"text": "Tolerated well. Home."}, headers=HX)
    assert signed.status_code == 200
    assert b'id="note-signed"' in signed.content
    assert b'id="amend-form"' in signed.content
    edit = nurse_ui.post(url(session, "note"), {"text": "Changed."}, headers=HX)
    assert edit.status_code == 409
    assert b"add an amendment" in edit.content
    with scopes_disabled():
        assert SessionNote.objects.get(session_id=session.pk).text == "Tolerated well. Home."
    bad = nurse_ui.post(url(session, "note/amendments"), {"text": "x", "reason": "no"}, headers=HX)
    assert bad.status_code == 400
    assert count(NoteAmendment, session) == 0
    assert (
        staff_client(outsider)
        .post(url(session, "note/amendments"), {"text": "x", "reason": "late entry"})
        .status_code
        == 404
    )
    amended = nurse_ui.post(
        url(session, "note/amendments"),
        {"text": "Ondansetron 4 mg given.", "reason": "late entry"},
        headers=HX,
    )
    assert amended.status_code == 200
    assert b"Ondansetron 4 mg given." in amended.content
    assert count(NoteAmendment, session) == 1
