"""Issue 10: a 100 mg order answered "dose_mg": "1E+2" and a refusal read "7E+1 mg is not a whole
number of 28 mg devices". Doses are plain numbers in the API, its messages and the flowsheet."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client, staff_client
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    certify_for_rems,
    enroll_in_rems,
    make_eligible,
    make_plan,
    sign_consent,
    ticked,
    weigh,
)

pytestmark = pytest.mark.django_db
EXPONENT = re.compile(r"\d(\.\d+)?E[+-]\d")  # how Decimal writes 1E+2


def _prechecked(actor: Any, patient: Any, protocol_id: str, route: str) -> Any:
    make_eligible(actor, patient, route)
    sign_consent(actor, patient, route)
    if protocol_id.startswith("esketamine"):  # no esketamine order without the REMS
        certify_for_rems(actor.organization)
        enroll_in_rems(actor, patient)
    weigh(actor, patient)
    plan = make_plan(actor, patient, protocol_id)
    from ketaclinic.core import clock

    session = services.session_schedule(actor=actor, plan=plan, scheduled_at=clock.now(), chair=1)
    session = services.session_check_in(actor=actor, session=session)
    services.precheck_record(actor=actor, session=session, checklist=ticked(session), vitals=NORMAL)
    session.refresh_from_db()
    return session


def test_a_100_mg_order_is_100_in_the_api_and_on_the_flowsheet(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = _prechecked(
            prescriber, patient_a, "sublingual-clinic", "sublingual_oral_in_clinic"
        )
    doctor = api_client(members["prescriber"])
    order = doctor.post(
        f"/api/v1/sessions/{session.public_id}/dose-orders",
        {"prescribed_amount": "100"},
        content_type="application/json",
    )
    assert order.status_code == 201, order.json()
    assert not EXPONENT.search(order.content.decode()), order.content.decode()
    assert Decimal(order.json()["dose_mg"]) == 100
    page = staff_client(members["nurse"]).get(f"/sessions/{session.public_id}/")
    body = page.content.decode()
    assert "100 mg" in body
    assert not EXPONENT.search(body)
    assert "100.0 mg" not in body


def test_a_refused_device_dose_names_70_mg_not_7e1(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = _prechecked(prescriber, patient_a, "esketamine-trd", "intranasal_esketamine")
    refused = api_client(members["prescriber"]).post(
        f"/api/v1/sessions/{session.public_id}/dose-orders",
        {"prescribed_amount": "70"},
        content_type="application/json",
    )
    assert refused.status_code == 422, refused.json()
    assert "70 mg is not a whole number of 28 mg devices" in refused.json()["detail"]
    assert "E+" not in refused.content.decode()


def test_the_flowsheet_shows_clinic_time_with_its_zone_not_utc(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """Clinic A is in America/Chicago; the session day starts 15:00 UTC = 09:00 CST."""
    with scope(organization=prescriber.organization):
        session = _prechecked(
            prescriber, patient_a, "sublingual-clinic", "sublingual_oral_in_clinic"
        )
        services.dose_order_sign(actor=prescriber, session=session)
    body = staff_client(members["nurse"]).get(f"/sessions/{session.public_id}/").content.decode()
    assert "signed 09:00 CST" in body
    assert "09:00 CST (pre-dose)" in body
    assert "15:00" not in body
    assert " UTC" not in body
