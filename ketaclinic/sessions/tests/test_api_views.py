"""The JSON API and the staff screens drive the same services: a full IV session over the API,
the hard stops as HTTP errors, htmx partials, pinned query counts, and the role matrix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from conftest import PASSWORD, SESSION_DAY, actor_for, api_client, staff_client
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    draw_for,
    make_eligible,
    make_treatable,
    session_checked_in,
    session_prechecked,
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


def test_a_full_iv_session_over_the_api(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a, "176", 0, unit="lb")
    doctor, nurse = api_client(members["prescriber"]), api_client(members["nurse"])
    plan = doctor.post(
        "/api/v1/plans",
        {
            "patient": str(patient_a.public_id),
            "protocol_id": "iv-ketamine-induction",
            "start_date": "2026-03-02",
            "concentration_mg_per_ml": "10",
            "diluent_volume_ml": "100",
        },
        content_type="application/json",
    )
    assert plan.status_code == 201, plan.json()
    made = nurse.post(
        "/api/v1/sessions",
        {"plan": plan.json()["id"], "scheduled_at": T0.isoformat(), "chair": 2},
        content_type="application/json",
    )
    assert made.status_code == 201, made.json()
    sid = made.json()["id"]
    assert nurse.post(f"/api/v1/sessions/{sid}/check-in").status_code == 200
    with scope(organization=prescriber.organization):
        from ketaclinic.sessions.models import TreatmentSession

        checklist = ticked(TreatmentSession.objects.get(public_id=sid))
    pre = nurse.post(
        f"/api/v1/sessions/{sid}/prechecks",
        {"checklist": checklist, "vitals": NORMAL},
        content_type="application/json",
    )
    assert pre.status_code == 201, pre.json()
    assert (
        nurse.post(
            f"/api/v1/sessions/{sid}/dose-orders", {}, content_type="application/json"
        ).status_code
        == 403
    )
    order = doctor.post(f"/api/v1/sessions/{sid}/dose-orders", {}, content_type="application/json")
    assert order.status_code == 201
    assert order.json()["dose_mg"] == "39.9"
    over = nurse.post(
        f"/api/v1/sessions/{sid}/administrations",
        {"dose_mg": "45", "lot_number": "L1"},
        content_type="application/json",
    )
    assert over.status_code == 422
    given = nurse.post(
        f"/api/v1/sessions/{sid}/administrations",
        {"dose_mg": "39.9", "lot_number": "L1", "ended_at": T0.isoformat()},
        content_type="application/json",
    )
    assert given.status_code == 201, given.json()
    with scope(organization=prescriber.organization):
        from ketaclinic.sessions.models import DoseAdministration

        administration = DoseAdministration.objects.get(session__public_id=sid)
        draw_for(actor_for(members["nurse"]), administration, "50")
    traveller.move_to(T0 + timedelta(minutes=30))
    batch = nurse.post(
        f"/api/v1/sessions/{sid}/vitals",
        {
            "samples": [
                {**NORMAL, "taken_at": (T0 + timedelta(minutes=15)).isoformat()},
                {**NORMAL, "systolic": 185, "diastolic": 95},
            ]
        },
        content_type="application/json",
    )
    assert batch.status_code == 201
    assert [v["severity"] for v in batch.json()] == ["", "critical"]
    ae = nurse.post(
        f"/api/v1/sessions/{sid}/adverse-events",
        {"event_code": "blood_pressure_increased", "grade": 3, "action_taken": "labetalol"},
        content_type="application/json",
    )
    assert ae.status_code == 201
    assert ae.json()["escalated"] is True
    early = nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    codes = [u["code"] for u in early.json()["result"]["unmet"]]
    assert "observation_time" in codes
    assert "vitals_in_range" in codes
    refused = nurse.post(f"/api/v1/sessions/{sid}/discharge")
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} >= {"observation_time"}
    traveller.move_to(T0 + timedelta(minutes=125))
    nurse.post(
        f"/api/v1/sessions/{sid}/vitals", {"samples": [NORMAL]}, content_type="application/json"
    )
    ok = nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    assert ok.json()["ready"] is True, ok.json()
    assert nurse.post(f"/api/v1/sessions/{sid}/discharge").json()["state"] == "discharged"
    assert (
        nurse.put(
            f"/api/v1/sessions/{sid}/note", {"text": "Done."}, content_type="application/json"
        ).status_code
        == 200
    )
    unbalanced = doctor.post(f"/api/v1/sessions/{sid}/note/sign")
    assert unbalanced.status_code == 422, unbalanced.json()
    assert "10.1 mg unaccounted" in unbalanced.json()["errors"][0]["message"]
    with scope(organization=prescriber.organization):
        waste_rest(actor_for(members["nurse"]), administration, members["prescriber"], PASSWORD)
    assert doctor.post(f"/api/v1/sessions/{sid}/note/sign").status_code == 200
    edit = nurse.put(
        f"/api/v1/sessions/{sid}/note", {"text": "Changed."}, content_type="application/json"
    )
    assert edit.status_code == 409
    amend = nurse.post(
        f"/api/v1/sessions/{sid}/note/amendments",
        {"text": "Labetalol 10 mg IV given.", "reason": "late entry"},
        content_type="application/json",
    )
    assert amend.status_code == 201


def test_hard_stops_over_the_api(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    doctor = api_client(members["prescriber"])
    with scope(organization=prescriber.organization):
        make_eligible(prescriber, patient_a, "intravenous")
    no_consent = doctor.post(
        "/api/v1/plans",
        {
            "patient": str(patient_a.public_id),
            "protocol_id": "iv-ketamine-induction",
            "start_date": "2026-03-02",
        },
        content_type="application/json",
    )
    assert no_consent.status_code == 422
    assert "consent" in [e["field"] for e in no_consent.json()["errors"]]


def test_bp_gate_and_stale_weight_over_the_api(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        weigh(prescriber, patient_a, days_ago=40)
        checklist = ticked(session)
    nurse, doctor = api_client(members["nurse"]), api_client(members["prescriber"])
    url = f"/api/v1/sessions/{session.public_id}/prechecks"
    stale = nurse.post(
        url, {"checklist": checklist, "vitals": NORMAL}, content_type="application/json"
    )
    assert stale.status_code == 422
    assert [e["field"] for e in stale.json()["errors"]] == ["weight_current"]
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a)
    high = {**NORMAL, "systolic": 150, "diastolic": 95}
    gate = nurse.post(
        url, {"checklist": checklist, "vitals": high}, content_type="application/json"
    )
    assert gate.status_code == 422
    assert [e["field"] for e in gate.json()["errors"]] == ["predose_vitals_gate"]
    no_reason = doctor.post(
        url,
        {"checklist": checklist, "vitals": high, "override_reason": "ok"},
        content_type="application/json",
    )
    assert no_reason.status_code == 400
    overridden = doctor.post(
        url,
        {
            "checklist": checklist,
            "vitals": high,
            "override_reason": "Chronic stage 1 hypertension, asymptomatic.",
        },
        content_type="application/json",
    )
    assert overridden.status_code == 201
    assert overridden.json()["gate"]["outcome"] == "proceed-with-override"
    ceiling = {**NORMAL, "systolic": 190, "diastolic": 105}
    with scope(organization=prescriber.organization):
        # One open session per patient: the first ends before the next begins.
        services.session_abort(actor=prescriber, session=session, reason="BP to be rechecked")
        other = session_checked_in(prescriber, patient_a, weight=False)
    refused = doctor.post(
        f"/api/v1/sessions/{other.public_id}/prechecks",
        {
            "checklist": checklist,
            "vitals": ceiling,
            "override_reason": "Chronic stage 1 hypertension.",
        },
        content_type="application/json",
    )
    assert refused.status_code == 422


def test_the_flowsheet_and_its_partials(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    client = staff_client(members["nurse"])
    url = f"/sessions/{session.public_id}/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"<html" in page.content
    assert b"Pre-session checklist" in page.content
    fragment = client.get(url + "?partial=vitals-table", headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert b"vitals-table" in fragment.content
    posted = client.post(
        f"/sessions/{session.public_id}/vitals/",
        {"systolic": 100, "diastolic": 60, "spo2": 89},
        headers={"HX-Request": "true"},
    )
    assert posted.status_code == 200
    assert b"<html" not in posted.content
    assert b"spo2 89 is below the critical limit 90" in posted.content
    for _ in range(5):
        with scope(organization=prescriber.organization):
            services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    for _ in range(10):
        with scope(organization=prescriber.organization):
            services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
    with CaptureQueriesContext(connection) as second:
        client.get(url)
    assert len(first) == len(second) <= 30, [q["sql"] for q in second.captured_queries]


def test_the_floor_board(prescriber: Any, members: Any, patient_a: Any, traveller: Any) -> None:
    from conftest import make_patient

    with scope(organization=prescriber.organization):
        session_prechecked(prescriber, patient_a)
    client = staff_client(members["nurse"])
    page = client.get("/floor/")
    assert page.status_code == 200
    assert b'hx-trigger="every 2s"' in page.content
    assert patient_a.full_name.encode() in page.content
    fragment = client.get("/floor/", headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert b"122/78" in fragment.content
    with CaptureQueriesContext(connection) as one:
        client.get("/floor/", headers={"HX-Request": "true"})
    with scope(organization=prescriber.organization):
        for index in range(3):
            other = make_patient(prescriber, given_name=f"P{index}", family_name="Chair")
            session_prechecked(prescriber, other)
    with CaptureQueriesContext(connection) as four:
        client.get("/floor/", headers={"HX-Request": "true"})
    assert len(one) == len(four), [q["sql"] for q in four.captured_queries]
    assert staff_client(members["front_desk"]).get("/floor/").status_code == 403


def test_another_organization_sees_nothing(
    prescriber: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    assert api_client(outsider).get(f"/api/v1/sessions/{session.public_id}").status_code == 404
    assert staff_client(outsider).get(f"/sessions/{session.public_id}/").status_code == 404
    assert str(patient_a.public_id) not in staff_client(outsider).get("/floor/").content.decode()


def test_the_pmf_exports(prescriber: Any, members: Any, patient_a: Any, traveller: Any) -> None:
    from ketaclinic.sessions.rems import PMF_FIELDS

    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a, "esketamine-trd")
        services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=prescriber, session=session, dose_mg="56", lot_number="SPR-9", ended_at=T0
        )
        traveller.move_to(T0 + timedelta(minutes=40))
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
        traveller.move_to(T0 + timedelta(minutes=119))
        services.vitals_record(actor=prescriber, session=session, samples=[NORMAL])
        traveller.move_to(T0 + timedelta(minutes=121))
        services.discharge_check(actor=prescriber, session=session, assessment=ASSESSED)
        services.session_discharge(actor=prescriber, session=session)
    client = staff_client(members["nurse"])
    csv = client.get(f"/sessions/{session.public_id}/pmf.csv").content.decode()
    for field in PMF_FIELDS:
        assert field.key in csv
    assert "SPR-9" in csv
    pdf = client.get(f"/sessions/{session.public_id}/pmf.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    dashboard = client.get("/")
    assert b"REMS forms to submit" in dashboard.content
    assert patient_a.family_name.encode() in dashboard.content
