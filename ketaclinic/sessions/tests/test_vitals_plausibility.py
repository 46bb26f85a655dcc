"""Issue 10: BP 400/20 was stored as the real pre-dose reading, and a critical BP during dosing
escalated to no one. A reading that cannot be real is refused ("check this reading") on every
path and nothing is stored; a critical reading after the dose raises a safety alert that must be
acknowledged and escalates like an item-9 alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled
from hypothesis import given
from hypothesis import strategies as st

from conftest import SESSION_DAY, api_client, audit_count, staff_client
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.fhir.tests.helpers import bp_json, post
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.services import alerts_escalate_overdue
from ketaclinic.patients import services as chart
from ketaclinic.patients.models import VitalSign
from ketaclinic.patients.plausibility import PLAUSIBLE_RANGES, implausible_readings
from ketaclinic.sessions import services
from ketaclinic.sessions.models import Precheck, VitalsEntry
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    session_checked_in,
    session_prechecked,
    ticked,
)

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
IMPLAUSIBLE = {**NORMAL, "systolic": 400, "diastolic": 20}


# --- the pure rule -------------------------------------------------------------------------------


def test_bp_400_over_20_is_not_a_reading() -> None:
    problems = dict(implausible_readings({"systolic": 400, "diastolic": 20}))
    assert problems["systolic"].endswith("check this reading.")
    assert "400 mmHg" in problems["systolic"]


def test_a_diastolic_above_the_systolic_is_not_a_reading() -> None:
    assert [f for f, _ in implausible_readings({"systolic": 80, "diastolic": 120})] == ["diastolic"]


@given(
    measure=st.sampled_from(sorted(PLAUSIBLE_RANGES)), value=st.integers(min_value=0, max_value=999)
)
def test_a_value_is_refused_exactly_outside_its_range(measure: str, value: int) -> None:
    low, high, _, _ = PLAUSIBLE_RANGES[measure]
    refused = [f for f, _ in implausible_readings({measure: value})]
    assert (measure in refused) == (not low <= value <= high)


# --- every path refuses and stores nothing -------------------------------------------------------


def test_prechecks_with_bp_400_over_20_store_nothing(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        with pytest.raises(ValidationFailed, match="check this reading"):
            services.precheck_record(
                actor=prescriber, session=session, checklist=ticked(session), vitals=IMPLAUSIBLE
            )
    over_api = api_client(members["nurse"]).post(
        f"/api/v1/sessions/{session.public_id}/prechecks",
        {"checklist": ticked(session), "vitals": IMPLAUSIBLE},
        content_type="application/json",
    )
    assert over_api.status_code == 400
    assert {e["field"] for e in over_api.json()["errors"]} == {"systolic"}
    in_ui = staff_client(members["nurse"]).post(
        f"/sessions/{session.public_id}/prechecks/",
        {**{code: "on" for code in ticked(session)}, **IMPLAUSIBLE},
        headers={"HX-Request": "true"},
    )
    assert in_ui.status_code == 400
    assert b"check this reading" in in_ui.content
    with scopes_disabled():
        assert VitalsEntry.objects.filter(session=session).count() == 0
        assert Precheck.objects.filter(session=session).count() == 0


def test_a_batch_with_one_impossible_sample_stores_none(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    before = audit_count(action="sessions.vitals.recorded")
    refused = api_client(members["nurse"]).post(
        f"/api/v1/sessions/{session.public_id}/vitals",
        {"samples": [NORMAL, {**NORMAL, "spo2": 9}]},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "samples[1].spo2"
    assert "check this reading" in refused.json()["detail"]
    with scopes_disabled():
        assert VitalsEntry.objects.filter(session=session).count() == 1  # the pre-dose row
    assert audit_count(action="sessions.vitals.recorded") == before


def test_fhir_chart_and_session_observations_refuse_it_too(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        resting_before = VitalSign.objects.filter(patient=patient_a).count()
        with pytest.raises(ValidationFailed, match="check this reading"):
            chart.vital_sign_record(
                actor=prescriber,
                patient=patient_a,
                kind=VitalSign.Kind.BLOOD_PRESSURE,
                value="400",
                value_diastolic="20",
                unit="mm[Hg]",
                code="85354-9",
            )
    client = api_client(members["nurse"])
    resting = post(client, "/fhir/r4/Observation", bp_json(str(patient_a.public_id), 400, 20))
    assert resting.status_code == 400
    assert "check this reading" in resting.json()["issue"][-1]["diagnostics"]
    flowsheet = bp_json(str(patient_a.public_id), 400, 20, T0.isoformat())
    del flowsheet["subject"]
    flowsheet["encounter"] = {"reference": f"Encounter/{session.public_id}"}
    during = post(client, "/fhir/r4/Observation", flowsheet)
    assert during.status_code == 400, during.content
    with scopes_disabled():
        assert VitalSign.objects.filter(patient=patient_a).count() == resting_before
        assert VitalsEntry.objects.filter(session=session).count() == 1


# --- a critical reading after the dose is an alert someone must acknowledge ------------------------


def test_a_critical_bp_during_monitoring_raises_an_alert_that_escalates(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse_api = api_client(members["nurse"])
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        order = services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=prescriber, session=session, dose_mg=order.dose_mg, lot_number="K1", ended_at=T0
        )
    traveller.move_to(T0 + timedelta(minutes=30))
    high = {**NORMAL, "systolic": 184, "diastolic": 106}
    for _ in range(2):  # the second critical reading joins the open alert
        recorded = nurse_api.post(
            f"/api/v1/sessions/{session.public_id}/vitals",
            {"samples": [high]},
            content_type="application/json",
        )
        assert recorded.status_code == 201, recorded.json()
    with scopes_disabled():
        [alert] = SafetyAlert.objects.filter(patient=patient_a)
    assert alert.source_kind == "session_vitals"
    assert alert.summary == (
        "Critical vital sign after the dose (chair 1): systolic 184 above 180; "
        "diastolic 106 above 100."
    )
    listed = nurse_api.get("/api/v1/alerts")
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["session"] == str(session.public_id)
    assert row["summary"] == alert.summary
    dashboard = staff_client(members["nurse"]).get("/").content.decode()
    assert alert.summary in dashboard
    assert f"/sessions/{session.public_id}/" in dashboard

    traveller.move_to(T0 + timedelta(hours=3))
    assert alerts_escalate_overdue(now=T0 + timedelta(hours=3)) == 1
    with scopes_disabled():
        alert.refresh_from_db()
    assert alert.escalated_at is not None
    acknowledged = api_client(members["prescriber"]).post(
        f"/api/v1/alerts/{alert.public_id}/acknowledge",
        {"note": "Labetalol given, BP rechecked 150/92."},
        content_type="application/json",
    )
    assert acknowledged.status_code == 200
    assert nurse_api.get("/api/v1/alerts").json() == []


def test_a_critical_reading_before_the_dose_is_the_gate_s_business_not_an_alert(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        services.vitals_record(
            actor=prescriber, session=session, samples=[{**NORMAL, "systolic": 190}]
        )
    with scopes_disabled():
        assert not SafetyAlert.objects.filter(patient=patient_a).exists()
