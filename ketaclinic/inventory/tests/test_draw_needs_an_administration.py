"""Issue 10: a draw accepted a made-up administration id, so stock could leave the safe against a
dose nobody charted. A draw now names an administration recorded for that patient, through the
service, the JSON API and the staff form alike, and nothing leaves stock otherwise."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client, make_patient, staff_client
from ketaclinic.core.errors import SafetyStop
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, LedgerRow
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db
REFUSAL = "No dose was recorded with this administration id for this patient"


def draws(org: Any) -> int:
    with scope(organization=org):
        return LedgerRow.objects.filter(kind="draw").count()


def test_a_made_up_or_another_patients_administration_is_refused(
    org_a: Any, nurse: Any, prescriber: Any, stock: Any, patient: Any
) -> None:
    other = make_patient(prescriber, given_name="Other")
    with scope(organization=org_a):
        vial = Container.objects.filter(lot=stock["lot"]).order_by("label")[0]
        someone_elses = recorded_administration(nurse, other)
        for made_up in (uuid.uuid4(), someone_elses):
            with pytest.raises(SafetyStop, match=REFUSAL) as stop:
                services.inventory_draw_for_administration(
                    actor=nurse,
                    container=vial,
                    quantity_mg="35",
                    administration_public_id=made_up,
                    patient=patient,
                )
            assert stop.value.errors[0].field == "administration_id"
        services.inventory_draw_for_administration(
            actor=nurse,
            container=vial,
            quantity_mg="35",
            administration_public_id=recorded_administration(nurse, patient),
            patient=patient,
        )
    assert draws(org_a) == 1


def test_the_api_and_the_form_name_the_field(
    org_a: Any, members: Any, stock: Any, patient: Any
) -> None:
    with scope(organization=org_a):
        vial = Container.objects.filter(lot=stock["lot"]).order_by("label")[0]
    made_up = str(uuid.uuid4())
    api = api_client(members["nurse"]).post(
        "/api/v1/inventory/draws",
        {
            "container": str(vial.public_id),
            "quantity_mg": "35",
            "administration_id": made_up,
            "patient": str(patient.public_id),
        },
        content_type="application/json",
    )
    assert api.status_code == 422
    assert api.json()["errors"][0]["field"] == "administration_id"
    form = staff_client(members["nurse"]).post(
        "/inventory/draw/",
        {
            "container": vial.public_id,
            "quantity_mg": "35",
            "administration_id": made_up,
            "patient_id": patient.public_id,
        },
    )
    assert REFUSAL in form.context["form"].errors["administration_id"][0]
    assert draws(org_a) == 0
