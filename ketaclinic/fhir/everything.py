"""Patient/{id}/$everything: the patient and every chart entry this server holds, one Bundle."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.patients import selectors
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    Condition,
    MedicationStatement,
    VitalSign,
)


def patient_everything(actor: Actor, patient_id: str, base_url: str) -> dict[str, Any]:
    actor.require(Cap.CLINICAL_VIEW)
    patient = selectors.patient_chart_read(actor, patient_id, action="fhir.patient.everything")
    resources = [HANDLERS["Patient"].to_fhir(patient)]
    for type_name, model in (
        ("Condition", Condition),
        ("MedicationStatement", MedicationStatement),
        ("AllergyIntolerance", Allergy),
    ):
        for entry in model.objects.filter(patient=patient).order_by("pk"):
            entry.patient = patient
            resources.append(HANDLERS[type_name].to_fhir(entry))
    for model in (BodyWeight, BodyHeight, VitalSign):
        for entry in model.objects.filter(patient=patient).order_by("measured_at", "pk"):
            entry.patient = patient
            resources.append(HANDLERS["Observation"].to_fhir(entry))
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": f"{base_url}Patient/{patient.public_id}/$everything"}],
        "entry": [
            {
                "fullUrl": f"{base_url}{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match" if r["resourceType"] == "Patient" else "include"},
            }
            for r in resources
        ],
    }
