"""A mistyped weight, height or vital sign marked entered-in-error: kept for the record, never used
again. Dosing falls back on the previous valid weight (or refuses with none left), the chart stops
showing it, FHIR serves it as entered-in-error, and the marking is audited exactly once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope
from fhir.resources.R4B import get_fhir_model_class

from conftest import SESSION_DAY, actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.core.errors import Conflict, Forbidden, SafetyStop
from ketaclinic.patients import services
from ketaclinic.patients.models import BodyWeight, VitalSign
from ketaclinic.protocols.dosing import DoseRefused
from ketaclinic.screening.selectors import screening_snapshot
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import NORMAL, session_checked_in, ticked, weigh

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
MARKED = "patients.weight.entered_in_error"


@pytest.fixture
def nurse_ui(members: Any) -> Any:
    return staff_client(members["nurse"])


def _mark_url(patient: Any, weight: Any) -> str:
    return f"/patients/{patient.public_id}/weights/{weight.public_id}/entered-in-error/"


# --- dosing -----------------------------------------------------------------------------------


def test_the_dose_uses_the_previous_valid_weight_once_the_wrong_one_is_marked(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="108")  # 80 typed as 108, today
        services.entry_mark_entered_in_error(
            actor=prescriber, entry=typo, reason="Typed 108 for 80."
        )
        precheck = sessions.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        order = sessions.dose_order_sign(actor=prescriber, session=session)
    assert Decimal(precheck.weight["weight_kg"]) == Decimal("80")
    assert order.dose_mg == Decimal("40.0")  # 0.5 mg/kg x 80 kg, not x 108 kg
    assert Decimal(order.result["weight"]["weight_kg"]) == Decimal("80")


def test_an_order_signed_on_the_wrong_weight_cannot_be_given_after_the_marking(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = actor_for(members["nurse"])
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="90")
        sessions.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        wrong = sessions.dose_order_sign(actor=prescriber, session=session)
        assert wrong.dose_mg == Decimal("45.0")  # 0.5 mg/kg x 90 kg
        services.entry_mark_entered_in_error(actor=nurse, entry=typo, reason="Wrong patient.")
        with pytest.raises(DoseRefused):  # recomputed at the chair on 80 kg: 40 mg at most
            sessions.dose_administer(actor=nurse, session=session, dose_mg="45", lot_number="L")
        right = sessions.dose_order_sign(actor=prescriber, session=session)
    assert right.dose_mg == Decimal("40.0")


def test_with_no_valid_weight_left_the_dose_is_refused(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)  # weighs 80 kg today
        sessions.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        services.entry_mark_entered_in_error(
            actor=prescriber, entry=BodyWeight.objects.get(), reason="Scale not zeroed."
        )
        with pytest.raises(DoseRefused) as refused:
            sessions.dose_order_sign(actor=prescriber, session=session)
    assert "No body weight is recorded" in refused.value.reason


def test_with_no_valid_weight_left_the_prechecks_do_not_pass(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        services.entry_mark_entered_in_error(
            actor=prescriber, entry=BodyWeight.objects.get(), reason="Scale not zeroed."
        )
        with pytest.raises(SafetyStop) as stop:
            sessions.precheck_record(
                actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
            )
    assert [e.field for e in stop.value.errors] == ["weight_current"]
    assert "No body weight is recorded" in stop.value.errors[0].message


# --- the chart (UI) ---------------------------------------------------------------------------


def test_a_nurse_marks_a_weight_from_the_chart_and_it_is_no_longer_current(
    nurse_ui: Any, prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="108")
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/").content.decode()
    assert "108 kg" in chart
    assert _mark_url(patient_a, typo) in chart
    confirm = nurse_ui.get(_mark_url(patient_a, typo))
    assert confirm.status_code == 200
    assert "Mark weight 108 kg of" in confirm.content.decode()

    response = nurse_ui.post(_mark_url(patient_a, typo), {"reason": "Typed 108 for 80."})
    assert response.status_code == 302
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/").content.decode()
    assert "was marked entered in error" in chart
    latest = chart.split('id="latest-weight">', 1)[1].split("</dd>", 1)[0]
    assert latest.startswith("80 kg")
    assert "108.00" not in chart
    with scope(organization=prescriber.organization):
        typo.refresh_from_db()
    assert typo.entered_in_error  # kept for the record, not erased
    assert audit_count(action=MARKED, patient_id=patient_a.public_id) == 1
    assert audit_count(action=MARKED, detail__reason="Typed 108 for 80.") == 1


def test_marking_needs_a_reason(nurse_ui: Any, prescriber: Any, patient_a: Any) -> None:
    with scope(organization=prescriber.organization):
        typo = weigh(prescriber, patient_a, kg="108")
    response = nurse_ui.post(_mark_url(patient_a, typo), {"reason": ""})
    assert response.status_code == 400
    assert b"This field is required" in response.content
    with scope(organization=prescriber.organization):
        typo.refresh_from_db()
    assert not typo.entered_in_error
    assert audit_count(action=MARKED) == 0


def test_a_second_marking_is_a_conflict_and_audited_once(
    nurse_ui: Any, members: Any, prescriber: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        typo = weigh(prescriber, patient_a, kg="108")
    assert nurse_ui.post(_mark_url(patient_a, typo), {"reason": "Typo."}).status_code == 302
    again = nurse_ui.post(_mark_url(patient_a, typo), {"reason": "Typo."})
    assert again.status_code == 409
    assert b"already marked entered-in-error" in again.content
    api = api_client(members["prescriber"])
    assert api.delete(f"/api/v1/weights/{typo.public_id}").status_code == 409
    with scope(organization=prescriber.organization), pytest.raises(Conflict):
        services.entry_mark_entered_in_error(actor=prescriber, entry=typo)
    assert audit_count(action=MARKED) == 1


def test_an_outsider_gets_404_and_changes_nothing(
    outsider: Any, prescriber: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        typo = weigh(prescriber, patient_a, kg="108")
    ui = staff_client(outsider).post(_mark_url(patient_a, typo), {"reason": "Typo."})
    assert ui.status_code == 404
    api = api_client(outsider).delete(f"/api/v1/weights/{typo.public_id}")
    assert api.status_code == 404
    with scope(organization=prescriber.organization):
        typo.refresh_from_db()
    assert not typo.entered_in_error
    assert audit_count(action=MARKED) == 0


def test_a_weight_of_another_patient_is_404_under_this_patients_url(
    nurse_ui: Any, prescriber: Any, patient_a: Any
) -> None:
    other = make_patient(prescriber, mrn="OTHER-1")
    with scope(organization=prescriber.organization):
        typo = weigh(prescriber, other, kg="108")
    assert nurse_ui.post(_mark_url(patient_a, typo), {"reason": "Typo."}).status_code == 404
    assert audit_count(action=MARKED) == 0


@pytest.mark.parametrize("role", ["front_desk", "therapist", "compliance"])
def test_roles_without_clinical_edit_may_not_mark(
    role: str, members: Any, prescriber: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        typo = weigh(prescriber, patient_a, kg="108")
    response = staff_client(members[role]).post(_mark_url(patient_a, typo), {"reason": "Typo."})
    assert response.status_code == 403
    with scope(organization=prescriber.organization), pytest.raises(Forbidden):
        services.entry_mark_entered_in_error(actor=actor_for(members[role]), entry=typo)
    assert audit_count(action=MARKED) == 0


def test_the_chart_query_count_does_not_change_with_marked_entries(
    nurse_ui: Any, prescriber: Any, patient_a: Any
) -> None:
    url = f"/patients/{patient_a.public_id}/"
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a, kg="80", days_ago=3)
    nurse_ui.get("/patients/")  # the session's identity, resolved once per process
    with CaptureQueriesContext(connection) as before:
        assert nurse_ui.get(url).status_code == 200
    with scope(organization=prescriber.organization):
        for _ in range(3):
            typo = weigh(prescriber, patient_a, kg="108")
            services.entry_mark_entered_in_error(actor=prescriber, entry=typo)
    with CaptureQueriesContext(connection) as after:
        assert nurse_ui.get(url).status_code == 200
    assert len(after) == len(before)


# --- height and vital signs ---------------------------------------------------------------------


def test_a_marked_height_no_longer_gives_the_bmi(
    nurse_ui: Any, prescriber: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a, kg="80")
        height = services.height_record(actor=prescriber, patient=patient_a, value="78")
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/").content.decode()
    assert "Height 78.0 cm" in chart
    url = f"/patients/{patient_a.public_id}/heights/{height.public_id}/entered-in-error/"
    assert nurse_ui.post(url, {"reason": "178 cm; the 1 was dropped."}).status_code == 302
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/").content.decode()
    assert "Height 78.0 cm" not in chart
    assert "<dt>BMI</dt><dd>—</dd>" in chart
    assert audit_count(action="patients.height.entered_in_error") == 1


def test_a_marked_blood_pressure_leaves_the_chart_and_the_screening_inputs(
    nurse_ui: Any, prescriber: Any, patient_a: Any
) -> None:
    def bp(systolic: int, diastolic: int) -> VitalSign:
        return services.vital_sign_record(
            actor=prescriber,
            patient=patient_a,
            kind="bp",
            value=systolic,
            value_diastolic=diastolic,
            unit="mm[Hg]",
            code="85354-9",
        )

    with scope(organization=prescriber.organization):
        bp(118, 76)
        typo = bp(218, 76)
        assert screening_snapshot(patient_a, as_of=date.today()).sources["bp"][1] == "218/76 mmHg"
    url = f"/patients/{patient_a.public_id}/vitals/{typo.public_id}/entered-in-error/"
    assert nurse_ui.post(url, {"reason": "Typed 218 for 118."}).status_code == 302
    chart = nurse_ui.get(f"/patients/{patient_a.public_id}/").content.decode()
    assert "218/76" not in chart
    assert "118/76 mm[Hg]" in chart
    with scope(organization=prescriber.organization):
        snapshot = screening_snapshot(patient_a, as_of=date.today())
    assert snapshot.sources["bp"][1] == "118/76 mmHg"
    assert audit_count(action="patients.vital_sign.entered_in_error") == 1


# --- JSON API and FHIR ----------------------------------------------------------------------


def test_the_api_marks_a_weight_and_lists_only_valid_ones(
    members: Any, prescriber: Any, patient_a: Any
) -> None:
    api = api_client(members["nurse"])
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="108")
    response = api.delete(f"/api/v1/weights/{typo.public_id}?reason=Typed+108+for+80.")
    assert response.status_code == 204
    listed = api.get(f"/api/v1/patients/{patient_a.public_id}/weights").json()
    assert [Decimal(w["weight_kg"]) for w in listed["items"]] == [Decimal("80")]
    assert listed["count"] == 1
    assert audit_count(action=MARKED, detail__reason="Typed 108 for 80.") == 1


def test_the_api_marks_a_height(members: Any, prescriber: Any, patient_a: Any) -> None:
    api = api_client(members["prescriber"])
    with scope(organization=prescriber.organization):
        height = services.height_record(actor=prescriber, patient=patient_a, value="78")
    assert api.delete(f"/api/v1/heights/{height.public_id}").status_code == 204
    listed = api.get(f"/api/v1/patients/{patient_a.public_id}/heights").json()
    assert listed["items"] == []
    assert audit_count(action="patients.height.entered_in_error") == 1


def valid(data: dict[str, Any]) -> dict[str, Any]:
    """Assert the JSON is a valid R4B resource (a Bundle: its entries too) and return it."""
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


def test_fhir_serves_a_marked_weight_as_entered_in_error(
    members: Any, prescriber: Any, patient_a: Any
) -> None:
    client = api_client(members["prescriber"])
    with scope(organization=prescriber.organization):
        good = weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="108")
        services.entry_mark_entered_in_error(actor=prescriber, entry=typo, reason="Typo.")
    read = valid(client.get(f"/fhir/r4/Observation/{typo.public_id}").json())
    assert read["status"] == "entered-in-error"
    assert valid(client.get(f"/fhir/r4/Observation/{good.public_id}").json())["status"] == "final"
    # As for Conditions, search keeps the withdrawn row, with its status, so a client learns of it.
    found = valid(
        client.get(
            f"/fhir/r4/Observation?patient={patient_a.public_id}&code=http://loinc.org|29463-7"
        ).json()
    )
    statuses = {e["resource"]["id"]: e["resource"]["status"] for e in found["entry"]}
    assert statuses == {str(good.public_id): "final", str(typo.public_id): "entered-in-error"}
