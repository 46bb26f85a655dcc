"""Issue 10's floor stops through FHIR: an Encounter booked twice for one patient at one instant
or dated 2020, and a MedicationAdministration charted before its order was signed or given
without the patient's REMS enrollment, are refused with an OperationOutcome; nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import SESSION_DAY, api_client
from ketaclinic.fhir.tests.helpers import post
from ketaclinic.fhir.tests.test_sessions_fhir import (
    BASE,
    administration_json,
    encounter_json,
    outcome_text,
    treatable_with_plan,
)
from ketaclinic.sessions import services
from ketaclinic.sessions.models import (
    DoseAdministration,
    RemsEnrollment,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.tests.builders import NORMAL, session_prechecked

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY


def test_an_encounter_booked_twice_at_one_instant_or_in_2020_is_refused(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    treatable_with_plan(prescriber, patient_a, "iv-ketamine-induction")
    nurse = api_client(members["nurse"])
    assert post(nurse, BASE + "Encounter", encounter_json(patient_a)).status_code == 201
    twice = post(nurse, BASE + "Encounter", encounter_json(patient_a))
    assert twice.status_code == 409, twice.content
    assert "already has a session booked at Mar 2, 09:00 CST" in outcome_text(twice)
    old = post(
        nurse,
        BASE + "Encounter",
        encounter_json(patient_a, start=datetime(2020, 3, 2, 15, tzinfo=UTC)),
    )
    assert old.status_code in (400, 422), old.content
    assert "too far in the past" in outcome_text(old)
    with scopes_disabled():
        assert TreatmentSession.objects.filter(patient=patient_a).count() == 1


def test_a_dose_before_its_order_or_without_rems_is_refused(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a, "esketamine-trd")
        traveller.move_to(T0 + timedelta(minutes=10))
        services.dose_order_sign(actor=prescriber, session=session)
    nurse = api_client(members["nurse"])
    sid = str(session.public_id)
    early = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 56, T0, rxnorm="2057856"),
    )
    assert early.status_code == 400, early.content
    assert "before its order was signed" in outcome_text(early)
    with scopes_disabled():
        RemsEnrollment.objects.filter(patient=patient_a).delete()
    traveller.move_to(T0 + timedelta(minutes=12))
    unenrolled = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 56, T0 + timedelta(minutes=11), rxnorm="2057856"),
    )
    assert unenrolled.status_code == 422, unenrolled.content
    assert "not enrolled in the Spravato REMS" in outcome_text(unenrolled)
    with scopes_disabled():
        assert not DoseAdministration.objects.filter(session=session).exists()


def test_a_flowsheet_observation_of_bp_400_over_20_is_refused(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.fhir.tests.test_sessions_fhir import session_bp

    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    refused = post(
        api_client(members["nurse"]),
        BASE + "Observation",
        session_bp(str(session.public_id), 400, 20, T0),
    )
    assert refused.status_code == 400, refused.content
    assert "check this reading" in outcome_text(refused)
    with scopes_disabled():  # the only row stored is the pre-dose one
        assert list(
            VitalsEntry.objects.filter(session=session).values_list("systolic", flat=True)
        ) == [NORMAL["systolic"]]
