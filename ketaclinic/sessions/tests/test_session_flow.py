"""End to end through the services: a full IV session, a full esketamine session, and each hard
stop (no consent, no eligibility, stale weight, BP gate with and without override, discharge
before the minimum time, editing a signed note)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scope

from conftest import PASSWORD, SESSION_DAY, actor_for, audit_count
from ketaclinic.core.errors import Conflict, SafetyStop
from ketaclinic.protocols.dosing import DoseRefused
from ketaclinic.sessions import services
from ketaclinic.sessions.models import SessionNote, TreatmentSession
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    draw_for,
    make_eligible,
    make_plan,
    make_treatable,
    session_checked_in,
    session_prechecked,
    sign_consent,
    ticked,
    waste_rest,
    weigh,
)

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
ASSESSED = {
    "alert_and_oriented": True,
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "clinically_stable": True,
    "escort_present": True,
}


@pytest.fixture
def nurse(members: Any) -> Any:
    return actor_for(members["nurse"])


def test_a_full_iv_session(
    prescriber: Any, nurse: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        assert session.state == "prechecks_passed"
        order = services.dose_order_sign(actor=prescriber, session=session)
        assert order.dose_mg == Decimal("40.0")  # 0.5 mg/kg x 80 kg
        assert order.algorithm == "dose-weight-based@1"
        assert order.protocol_key == "iv-ketamine-induction@1"
        assert order.result["pump_rate_ml_per_h"] == "156.0"  # (4 mL + 100 mL) over 40 min
        given = services.dose_administer(
            actor=nurse, session=session, dose_mg="40", lot_number="LOT-7"
        )
        draw_for(nurse, given, "50")  # one mL drawn up over the dose
        traveller.shift(timedelta(minutes=40))
        services.dose_complete(actor=nurse, session=session)
        traveller.move_to(T0 + timedelta(minutes=60))
        services.vitals_record(actor=nurse, session=session, samples=[{**NORMAL, "systolic": 150}])
        traveller.move_to(T0 + timedelta(minutes=115))
        services.vitals_record(actor=nurse, session=session, samples=[NORMAL])
        services.observation_record(actor=nurse, session=session, kind="cadss", score=12)
        services.observation_record(actor=nurse, session=session, kind="sedation", score=5)
        event = services.adverse_event_record(
            actor=nurse, session=session, event_code="nausea", grade=1, action_taken="ondansetron"
        )
        assert not event.escalated
        services.intervention_record(
            actor=nurse,
            session=session,
            drug_name="Ondansetron",
            dose_text="4 mg",
            route="oral",
            reason="nausea",
            adverse_event=event,
        )
        traveller.move_to(T0 + timedelta(minutes=121))
        check = services.discharge_check(actor=nurse, session=session, assessment=ASSESSED)
        assert check.ready, check.result
        services.session_discharge(actor=nurse, session=session)
        services.note_save(actor=nurse, session=session, text="Uneventful infusion.")
        account = waste_rest(nurse, given, members["prescriber"], PASSWORD)
        assert (account.drawn_mg, account.wasted_mg, account.balanced) == (50, 10, True)
        note = services.note_sign(actor=prescriber, session=session)
        session.refresh_from_db()
    assert session.state == "discharged"
    assert note.signed_at is not None
    assert note.content_hash
    for action in (
        "sessions.session.scheduled",
        "sessions.session.checked_in",
        "sessions.precheck.recorded",
        "sessions.dose.ordered",
        "sessions.dose.administered",
        "sessions.dose.completed",
        "sessions.vitals.recorded",
        "sessions.observation.recorded",
        "sessions.adverse_event.recorded",
        "sessions.intervention.recorded",
        "sessions.discharge.checked",
        "sessions.session.discharged",
        "sessions.note.signed",
        "inventory.dose.drawn",
        "inventory.waste.recorded",
    ):
        assert audit_count(action=action) >= 1, action


def test_a_full_esketamine_session(
    prescriber: Any, nurse: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        services.rems_enroll(
            actor=nurse, patient=patient_a, enrolled_on=T0.date(), rems_patient_id="R1"
        )
        session = session_prechecked(prescriber, patient_a, "esketamine-trd")
        order = services.dose_order_sign(actor=prescriber, session=session)
        assert (order.dose_mg, order.device_count) == (Decimal("56.0"), 2)
        with pytest.raises(DoseRefused):
            services.dose_administer(actor=nurse, session=session, dose_mg="42", lot_number="S1")
        traveller.move_to(T0 + timedelta(minutes=5))
        given = services.dose_administer(
            actor=nurse,
            session=session,
            dose_mg="56",
            lot_number="SPR-1",
            device_count=2,
            started_at=T0,
            ended_at=T0 + timedelta(minutes=5),
        )
        lot = draw_for(nurse, given)  # two 28 mg devices, one draw each
        assert lot.product.code == "esketamine-28mg-nasal-device"
        traveller.move_to(T0 + timedelta(minutes=40))
        services.vitals_record(actor=nurse, session=session, samples=[NORMAL])
        traveller.move_to(T0 + timedelta(minutes=110))
        services.vitals_record(actor=nurse, session=session, samples=[NORMAL])
        services.discharge_check(actor=nurse, session=session, assessment=ASSESSED)
        with pytest.raises(SafetyStop) as early:
            services.session_discharge(actor=nurse, session=session)
        assert "observation_time" in [e.field for e in early.value.errors]
        traveller.move_to(T0 + timedelta(minutes=121))
        services.discharge_check(actor=nurse, session=session, assessment=ASSESSED)
        services.session_discharge(actor=nurse, session=session)
        services.note_save(actor=nurse, session=session, text="Esketamine 56 mg, tolerated.")
        with pytest.raises(SafetyStop) as incomplete:
            services.note_sign(actor=prescriber, session=session)
        assert "pmf.concomitant_benzodiazepines" in [e.field for e in incomplete.value.errors]
        pmf = services.pmf_update(
            actor=nurse,
            session=session,
            answers={
                "concomitant_benzodiazepines": False,
                "concomitant_non_benzodiazepine_sedative_hypnotics": False,
                "concomitant_psychostimulants": False,
                "concomitant_maois": False,
                "minutes_until_ready_without_two_hour_rule": 90,
                "monitoring_hcp_phone": "555-0100",
                "monitoring_hcp_email": "nurse@clinic.example",
                "setting_address": "1 Main St",
            },
        )
        assert pmf.missing == [], pmf.missing
        assert waste_rest(nurse, given, members["prescriber"], PASSWORD).balanced  # nothing left
        services.note_sign(actor=prescriber, session=session)
    assert pmf.data["dose"] == "56"
    assert pmf.data["lot_number"] == "SPR-1"
    assert pmf.data["bp_40min_systolic"] == 122
    assert pmf.data["monitoring_duration_minutes"] == 121
    assert pmf.due_on == T0.date() + timedelta(days=7)


def test_the_note_is_not_signed_until_the_ledger_balances(
    prescriber: Any, nurse: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """Issue 7: drawn = administered + wasted + returned for every administration, or the
    session cannot be signed."""
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        order = services.dose_order_sign(actor=prescriber, session=session)
        given = services.dose_administer(
            actor=nurse, session=session, dose_mg="35", lot_number="LOT-9", ended_at=T0
        )
        assert order.dose_mg >= given.dose_mg
        services.session_abort(actor=nurse, session=session, reason="Patient asked to stop early")
        services.note_save(actor=nurse, session=session, text="Stopped at 35 mg on request.")
        with pytest.raises(SafetyStop) as nothing_drawn:
            services.note_sign(actor=prescriber, session=session)
        assert "drawn 0 mg, administered 35 mg" in nothing_drawn.value.detail
        draw_for(nurse, given, "50")
        with pytest.raises(SafetyStop) as unreconciled:
            services.note_sign(actor=prescriber, session=session)
        [error] = unreconciled.value.errors
        assert error.field == f"administration.{given.public_id}"
        assert (
            "drawn 50 mg, administered 35 mg, wasted 0 mg, returned 0 mg: 15 mg unaccounted"
            in error.message
        )
        assert SessionNote.objects.get(session=session).signed_at is None
        account = waste_rest(nurse, given, members["prescriber"], PASSWORD)
        assert (account.wasted_mg, account.difference_mg) == (15, 0)
        note = services.note_sign(actor=prescriber, session=session)
    assert note.signed_at is not None
    assert audit_count(action="inventory.waste.recorded") == 1


def test_no_consent_stops_scheduling(prescriber: Any, patient_a: Any, traveller: Any) -> None:
    with scope(organization=prescriber.organization):
        make_eligible(prescriber, patient_a, "intravenous")
        with pytest.raises(SafetyStop) as stop:
            make_plan(prescriber, patient_a)
    assert "consent" in [e.field for e in stop.value.errors]


def test_no_eligibility_stops_the_plan(prescriber: Any, patient_a: Any, traveller: Any) -> None:
    with scope(organization=prescriber.organization):
        sign_consent(prescriber, patient_a, "intravenous")
        with pytest.raises(SafetyStop) as stop:
            make_plan(prescriber, patient_a)
    assert "screening" in [e.field for e in stop.value.errors]


def test_consent_revoked_after_scheduling_stops_check_in(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.consent import services as consent
    from ketaclinic.core import clock

    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient_a)
        session = services.session_schedule(actor=prescriber, plan=plan, scheduled_at=clock.now())
        from ketaclinic.consent.models import ConsentSignature

        signature = ConsentSignature.objects.get(patient=patient_a)
        consent.consent_revoke(
            actor=prescriber, signature=signature, reason="Patient withdrew consent."
        )
        with pytest.raises(SafetyStop):
            services.session_check_in(actor=prescriber, session=session)
        session.refresh_from_db()
    assert session.state == "scheduled"


def test_stale_weight_fails_the_prechecks(prescriber: Any, patient_a: Any, traveller: Any) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        weigh(prescriber, patient_a, days_ago=45)
        with pytest.raises(SafetyStop) as stop:
            services.precheck_record(
                actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
            )
        session.refresh_from_db()
        assert session.state == "checked_in"
        assert session.last_vitals["bp"] == "122/78"  # the pre-dose vitals were kept
    assert [e.field for e in stop.value.errors] == ["weight_current"]


def test_bp_above_the_gate_needs_a_prescriber_override(
    prescriber: Any, nurse: Any, patient_a: Any, traveller: Any
) -> None:
    high = {**NORMAL, "systolic": 150, "diastolic": 92}
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        with pytest.raises(SafetyStop) as stop:
            services.precheck_record(
                actor=nurse, session=session, checklist=ticked(session), vitals=high
            )
        assert [e.field for e in stop.value.errors] == ["predose_vitals_gate"]
        with pytest.raises(SafetyStop):  # a nurse cannot override
            services.precheck_record(
                actor=nurse,
                session=session,
                checklist=ticked(session),
                vitals=high,
                override_reason="Usual BP for this patient, asymptomatic.",
            )
        precheck = services.precheck_record(
            actor=prescriber,
            session=session,
            checklist=ticked(session),
            vitals=high,
            override_reason="Usual BP for this patient, asymptomatic.",
        )
        assert precheck.passed
        assert precheck.gate["outcome"] == "proceed-with-override"
        order = services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=nurse, session=session, dose_mg=order.dose_mg, lot_number="L"
        )
    assert audit_count(action="sessions.precheck.recorded") == 2


def test_bp_above_the_gate_is_refused_where_policy_allows_no_override(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.protocols.services import safety_policy_publish

    admin = actor_for(members["clinic_admin"])
    with scope(organization=prescriber.organization):
        safety_policy_publish(
            actor=admin, changes={"predose_override_allowed": False}, note="no overrides"
        )
        session = session_checked_in(prescriber, patient_a)
        assert session.policy_key == "session-safety@2"
        with pytest.raises(SafetyStop) as stop:
            services.precheck_record(
                actor=prescriber,
                session=session,
                checklist=ticked(session),
                vitals={**NORMAL, "systolic": 150, "diastolic": 92},
                override_reason="Usual BP for this patient, asymptomatic.",
            )
    assert "no override" in stop.value.errors[0].message


def test_a_dose_above_the_cap_is_refused(prescriber: Any, patient_a: Any, traveller: Any) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        with pytest.raises(DoseRefused):
            services.dose_order_sign(actor=prescriber, session=session, prescribed_amount="0.9")
        services.dose_order_sign(actor=prescriber, session=session)
        with pytest.raises(DoseRefused):
            services.dose_administer(
                actor=prescriber, session=session, dose_mg="41", lot_number="L"
            )


def test_discharge_before_the_minimum_time_is_refused(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=prescriber, session=session, dose_mg="40", lot_number="L", ended_at=T0
        )
        traveller.move_to(T0 + timedelta(minutes=60))
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
        check = services.discharge_check(actor=prescriber, session=session, assessment=ASSESSED)
        assert not check.ready
        assert [u["code"] for u in check.result["unmet"]] == ["observation_time"]
        with pytest.raises(SafetyStop):
            services.session_discharge(actor=prescriber, session=session)


def test_a_signed_note_cannot_be_edited_only_amended(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        services.session_abort(actor=prescriber, session=session, reason="Patient felt unwell")
        services.note_save(actor=prescriber, session=session, text="Aborted before dosing.")
        services.note_sign(actor=prescriber, session=session)
        with pytest.raises(Conflict):
            services.note_save(actor=prescriber, session=session, text="Changed")
        note = SessionNote.objects.get(session=session)
        note.text = "sneaky"
        with pytest.raises(Conflict):
            note.save()
        services.note_amend(
            actor=prescriber, session=session, text="Addendum.", reason="Late entry"
        )
        assert SessionNote.objects.get(session=session).text == "Aborted before dosing."


def test_a_grade_3_adverse_event_is_escalated(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        event = services.adverse_event_record(
            actor=prescriber, session=session, event_code="blood_pressure_increased", grade=3
        )
    assert event.escalated
    assert event.escalation_rule == "ae-escalation@1"


def test_a_critical_vital_is_an_alert_on_the_session(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        entries = services.vitals_record(
            actor=prescriber,
            session=session,
            samples=[NORMAL, {**NORMAL, "spo2": 88, "taken_at": T0}],
        )
        session = TreatmentSession.objects.get(pk=session.pk)
    assert [e.severity for e in entries] == ["", "critical"]
    assert session.last_alert_severity in ("", "critical")
