"""Patient/{id}/$everything: the patient and every resource of theirs this server implements, one
searchset Bundle.

The types are read from the handler registry: every handler searchable by `patient` (Condition,
MedicationStatement, AllergyIntolerance; Observation: the chart's vital signs, the survey scores
derived from questionnaire responses and the session flowsheet's vital signs; Encounter,
MedicationAdministration, AdverseEvent, QuestionnaireResponse, Consent). Each type is loaded by
its own handler's search, unpaged, so the Bundle holds exactly what `<type>?patient=<id>`
returns: chart rows marked entered-in-error keep that status, a corrected questionnaire
response's survey Observations are left out (the correction's replace them). A search costs a
fixed number of queries (one query per table, batch-loaded), so the whole read does too, however
long the patient's history. The read is audited once, as `fhir.patient.everything`; a type the
actor may not view refuses the read (403) rather than leaving part of the record out unsaid.
"""

from __future__ import annotations

import sys
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir.registry import HANDLERS, Handler
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.patients import selectors
from ketaclinic.patients.models import Patient

UNPAGED = sys.maxsize  # the whole record: no page limit


def compartment_handlers() -> list[Handler]:
    """The registry's handlers for the patient's own resources (those searchable by patient)."""
    return [
        handler
        for name, handler in HANDLERS.items()
        if name != "Patient" and "patient" in handler.search_params and handler.patient_record
    ]


def _search(patient: Patient, handler: Handler) -> SearchRequest:
    """Every resource of the patient, oldest first where the type can be sorted."""
    return SearchRequest(
        params={"patient": [[str(patient.public_id)]]},
        count=UNPAGED,
        sort=handler.sorts[0] if handler.sorts else "",
    )


def patient_everything(actor: Actor, patient_id: str, base_url: str) -> dict[str, Any]:
    actor.require(Cap.CLINICAL_VIEW)
    patient = selectors.patient_chart_read(actor, patient_id, action="fhir.patient.everything")
    from ketaclinic.fhir import received
    from ketaclinic.fhir.received_handlers import GenericHandler, MixedHandler

    resources = [HANDLERS["Patient"].to_fhir(patient)]
    for handler in compartment_handlers():
        if isinstance(handler, MixedHandler):  # the clinic's rows here, received ones below
            assert handler.base is not None
            resources += handler.base.search(actor, _search(patient, handler.base)).resources
        elif not isinstance(handler, GenericHandler):
            resources += handler.search(actor, _search(patient, handler)).resources
    resources = received.overlay(resources)
    # Every resource kept as received for the patient, in one query, oldest first.
    resources += received.generic_for_patient(patient)
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
