"""MedicationAdministration <-> DoseAdministration (ketamine and esketamine given in a session).

Created only through `sessions.services.dose_administer`, so FHIR passes the same gates as the UI
and the JSON API. The drug is coded by RxNorm ingredient: ketamine 6130 (the clinical reference
marks this code [U], unconfirmed; verify against RxNav before relying on it) and esketamine
2057856 ([U] likewise). Dose in UCUM mg; the lot is on a contained Medication's batch.
`context` is the session's Encounter; `reasonReference` the depression Condition the treatment is
for (`ketaclinic.fhir.indication`), left out when the chart has none.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir import indication
from ketaclinic.fhir.common import emit, instant, meta, reference_id
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, as_uuid, date_q, patient_ids
from ketaclinic.patients.models import Condition
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.models import DoseAdministration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
RXNORM_INGREDIENT = {
    "racemic-ketamine": ("6130", "ketamine"),
    "esketamine": ("2057856", "esketamine"),
}
ROUTE_SNOMED = {
    "intravenous": ("47625008", "Intravenous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "intranasal": ("46713006", "Nasal route"),
    "sublingual": ("37839007", "Sublingual route"),
    "oral": ("26643006", "Oral route"),
}


def administration_to_fhir(
    row: DoseAdministration, reason: Condition | None = None
) -> dict[str, Any]:
    code, display = RXNORM_INGREDIENT.get(row.drug, ("", row.drug))
    route_code, route_display = ROUTE_SNOMED.get(row.route, ("", row.route))
    effective: dict[str, str] = {"start": instant(row.started_at)}
    if row.ended_at:
        effective["end"] = instant(row.ended_at)
    data = {
        "resourceType": "MedicationAdministration",
        "id": str(row.public_id),
        "meta": meta(row),
        "status": "completed" if row.ended_at else "in-progress",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]},
                "batch": {"lotNumber": row.lot_number},
            }
        ],
        "medicationReference": {"reference": "#med", "display": display},
        "subject": {"reference": f"Patient/{row.patient.public_id}"},
        "context": {"reference": f"Encounter/{row.session.public_id}"},
        "effectivePeriod": effective,
        "performer": [{"actor": {"display": row.recorded_by.display_name}}],
        "request": {
            "identifier": {"system": "urn:ketaclinic:dose-order", "value": str(row.order.public_id)}
        },
        "dosage": {
            "route": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": route_code,
                        "display": route_display,
                    }
                ]
            },
            "dose": {"value": float(row.dose_mg), "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    reasons = indication.reason_reference(reason)
    if reasons:
        data["reasonReference"] = reasons
    return data


def _queryset() -> Any:
    return DoseAdministration.objects.select_related(
        "patient", "session", "session__plan", "order", "recorded_by"
    )


def read(actor: Actor, resource_id: str) -> DoseAdministration:
    actor.require(Cap.SESSION_VIEW)
    key = as_uuid(resource_id)
    row = _queryset().filter(public_id=key).first() if key else None
    if row is None:
        raise NotFound("No such MedicationAdministration.")
    return row


def search(actor: Actor, params: dict[str, list[str]]) -> Any:
    actor.require(Cap.SESSION_VIEW)
    queryset = _queryset().order_by("-started_at", "-pk")
    for name, values in params.items():
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "context":
            ids = [k for v in values if (k := as_uuid(reference_id(v, "Encounter") or v))]
            queryset = queryset.filter(session__public_id__in=ids)
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("started_at", v)))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    return queryset


def create(actor: Actor, resource: Any) -> DoseAdministration:
    """Record a dose through dose_administer: every gate of the session applies."""
    context = resource.context.reference if resource.context else None
    session_id = reference_id(context, "Encounter")
    if session_id is None:
        raise FhirError(
            422,
            "MedicationAdministration.context must reference the session's Encounter.",
            expressions=[("MedicationAdministration.context", "Encounter reference required")],
        )
    session = selectors.session_get(actor, session_id, capability=Cap.DOSE_ADMINISTER)
    dose = resource.dosage.dose if resource.dosage else None
    if dose is None or dose.value is None or (dose.code or dose.unit) != "mg":
        raise FhirError(
            422,
            "dosage.dose must be a quantity in mg (UCUM).",
            expressions=[("MedicationAdministration.dosage.dose", "mg required")],
        )
    lot = ""
    for contained in resource.contained or []:
        batch = getattr(contained, "batch", None)
        if batch is not None and batch.lotNumber:
            lot = batch.lotNumber
    period = resource.effectivePeriod
    return services.dose_administer(
        actor=actor,
        session=session,
        dose_mg=str(dose.value),
        lot_number=lot,
        started_at=period.start if period else resource.effectiveDateTime,
        ended_at=period.end if period else None,
    )


def to_fhir(row: DoseAdministration, reason: Condition | None = None) -> dict[str, Any]:
    return emit(administration_to_fhir(row, reason))


def reasons_for(rows: list[DoseAdministration]) -> dict[int, Condition]:
    """Per patient pk, the Condition the treatment is for (one query for the page)."""
    return indication.treated_conditions(r.patient_id for r in rows)


def one_to_fhir(row: DoseAdministration) -> dict[str, Any]:
    return to_fhir(row, reasons_for([row]).get(row.patient_id))
