"""Patient, Condition, MedicationStatement and AllergyIntolerance <-> the chart's models.

`*_to_fhir` builds a resource (validated by `common.emit` before it leaves); `*_from_fhir` turns a
validated R4B resource into the plain values the patients services take.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir.common import (
    MR_TYPE,
    MRN_SYSTEM,
    as_date,
    bounded,
    derived_mrn,
    identifier_from_external,
    meta,
    notes,
    resolve_patient,
    status_code,
    text_of,
)
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.patients.models import Allergy, Condition, MedicationStatement, Patient

BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
BIRTHSEX_CODES = {"female": "F", "male": "M", "unknown": "UNK"}
GENDER_OF_SEX = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def _ref(patient: Patient) -> dict[str, str]:
    return {"reference": f"Patient/{patient.public_id}", "display": patient.full_name}


# --- Patient ------------------------------------------------------------------------------------


def patient_to_fhir(patient: Patient) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.public_id),
        "meta": meta(patient),
        "identifier": [
            {"use": "usual", "type": MR_TYPE, "system": MRN_SYSTEM, "value": patient.mrn}
        ],
        "active": patient.is_active,
        "name": [
            {"use": "official", "family": patient.family_name, "given": patient.given_name.split()}
        ],
        "gender": GENDER_OF_SEX.get(patient.sex_at_birth, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
        "communication": [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": patient.preferred_language}]
                }
            }
        ],
    }
    if patient.sex_at_birth in BIRTHSEX_CODES:
        data["extension"] = [
            {"url": BIRTHSEX_URL, "valueCode": BIRTHSEX_CODES[patient.sex_at_birth]}
        ]
    telecom = []
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if telecom:
        data["telecom"] = telecom
    if patient.address:
        data["address"] = [{"text": patient.address}]
    if patient.emergency_contact_name:
        contact: dict[str, Any] = {"name": {"text": patient.emergency_contact_name}}
        if patient.emergency_contact_phone:
            contact["telecom"] = [{"system": "phone", "value": patient.emergency_contact_phone}]
        if patient.emergency_contact_relationship:
            contact["relationship"] = [{"text": patient.emergency_contact_relationship}]
        data["contact"] = [contact]
    return data


def patient_mrn_from_fhir(resource: Any) -> str:
    """Our MRN from the resource's identifiers: ours first, then an MR-typed one, then any."""
    identifiers = [i for i in (resource.identifier or []) if i.value]
    for identifier in identifiers:
        if identifier.system == MRN_SYSTEM:
            return derived_mrn(identifier.system, identifier.value)
    for identifier in identifiers:
        if identifier.type and status_code(identifier.type) == "MR":
            return derived_mrn(identifier.system, identifier.value)
    if identifiers:
        return derived_mrn(identifiers[0].system, identifiers[0].value)
    return ""


def patient_from_fhir(resource: Any) -> dict[str, Any]:
    names = resource.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    # A null in `given` only holds the place of an extension in `_given` (R4 JSON, primitive
    # elements): it is no name.
    given = [part for part in (name.given or []) if part] if name is not None else []
    if name is None or not name.family or not given:
        raise FhirError(
            422,
            "A patient needs a family name and a given name.",
            expressions=[("Patient.name", "family and given are required")],
        )
    if resource.birthDate is None:
        raise FhirError(
            422, "A patient needs a birth date.", expressions=[("Patient.birthDate", "required")]
        )
    data: dict[str, Any] = {
        "given_name": bounded(" ".join(given), 100, "Patient.name.given"),
        "family_name": bounded(name.family, 100, "Patient.name.family"),
        "birth_date": as_date(resource.birthDate, "Patient.birthDate"),
        "sex_at_birth": _sex_at_birth(resource),
        "phone": "",
        "email": "",
        "address": "",
    }
    for telecom in resource.telecom or []:
        if telecom.system == "phone" and not data["phone"] and telecom.value:
            data["phone"] = bounded(telecom.value, 40, "Patient.telecom.value")
        if telecom.system == "email" and not data["email"] and telecom.value:
            data["email"] = telecom.value
    if resource.address:
        data["address"] = _address_text(resource.address[0])
    for communication in resource.communication or []:
        code = status_code(communication.language)
        if code:
            data["preferred_language"] = bounded(code, 16, "Patient.communication.language")
            break
    mrn = patient_mrn_from_fhir(resource)
    if mrn:
        data["mrn"] = mrn
    return data


def _sex_at_birth(resource: Any) -> str:
    for extension in resource.extension or []:
        if extension.url == BIRTHSEX_URL and extension.valueCode:
            return {"F": "female", "M": "male"}.get(extension.valueCode, "unknown")
    return {"female": "female", "male": "male"}.get(resource.gender or "", "unknown")


def _address_text(address: Any) -> str:
    if address.text:
        return address.text
    parts = [
        *(address.line or []),
        address.city,
        address.state,
        address.postalCode,
        address.country,
    ]
    return ", ".join(p for p in parts if p)


# --- Condition ----------------------------------------------------------------------------------


def condition_to_fhir(condition: Condition) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Condition",
        "id": str(condition.public_id),
        "meta": meta(condition),
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": {
            "coding": [
                {
                    "system": condition.code_system,
                    "code": condition.code,
                    "display": condition.display,
                }
            ],
            "text": condition.display,
        },
        "subject": _ref(condition.patient),
        "recordedDate": condition.created_at.date().isoformat(),
    }
    if condition.entered_in_error:
        data["verificationStatus"] = _concept(CONDITION_VERIFICATION, "entered-in-error")
    else:
        data["clinicalStatus"] = _concept(CONDITION_CLINICAL, condition.clinical_status)
        data["verificationStatus"] = _concept(CONDITION_VERIFICATION, "confirmed")
    data["identifier"] = identifier_from_external(condition.external_id) or None
    if condition.onset_date:
        data["onsetDateTime"] = condition.onset_date.isoformat()
    if condition.abatement_date:
        data["abatementDateTime"] = condition.abatement_date.isoformat()
    if condition.note:
        data["note"] = [{"text": condition.note}]
    return _drop_none(data)


def condition_from_fhir(actor: Actor, resource: Any) -> tuple[Patient, dict[str, Any]]:
    patient = resolve_patient(actor, resource.subject, "Condition.subject")
    coding = _first_coding(resource.code, "Condition.code")
    clinical = status_code(resource.clinicalStatus) or "active"
    if clinical not in Condition.Status.values:
        raise FhirError(
            422,
            f"Unsupported clinicalStatus {clinical!r}.",
            expressions=[("Condition.clinicalStatus", "unsupported")],
        )
    onset = resource.onsetDateTime or (resource.onsetPeriod.start if resource.onsetPeriod else None)
    abatement = resource.abatementDateTime or (
        resource.abatementPeriod.start if resource.abatementPeriod else None
    )
    data = {
        "code_system": bounded(coding.system or "", 100, "Condition.code.coding.system"),
        "code": bounded(coding.code, 20, "Condition.code.coding.code"),
        "display": bounded(coding.display or text_of(resource.code), 255, "Condition.code"),
        "clinical_status": clinical,
        "onset_date": as_date(onset, "Condition.onsetDateTime"),
        "abatement_date": as_date(abatement, "Condition.abatementDateTime"),
        "note": notes(resource),
    }
    return patient, data


def _first_coding(concept: Any, field: str) -> Any:
    for coding in (concept.coding or []) if concept else []:
        if coding.code and coding.system:
            if len(coding.code) > 20:
                raise FhirError(
                    422,
                    f"{field}: code {coding.code!r} is too long.",
                    expressions=[(field, "too long")],
                )
            return coding
    raise FhirError(
        422,
        f"{field} needs a coding with a system and a code.",
        expressions=[(field, "coding required")],
    )


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# --- MedicationStatement ------------------------------------------------------------------------


def medication_to_fhir(medication: MedicationStatement) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": medication.drug_name}
    if medication.rxnorm_code:
        concept["coding"] = [
            {"system": RXNORM, "code": medication.rxnorm_code, "display": medication.drug_name}
        ]
    data: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": str(medication.public_id),
        "meta": meta(medication),
        "identifier": identifier_from_external(medication.external_id) or None,
        "status": "entered-in-error" if medication.entered_in_error else medication.status,
        "medicationCodeableConcept": concept,
        "subject": _ref(medication.patient),
        "dateAsserted": medication.created_at.date().isoformat(),
    }
    if medication.start_date or medication.end_date:
        period = {}
        if medication.start_date:
            period["start"] = medication.start_date.isoformat()
        if medication.end_date:
            period["end"] = medication.end_date.isoformat()
        data["effectivePeriod"] = period
    if medication.dose_text:
        data["dosage"] = [{"text": medication.dose_text}]
    if medication.note:
        data["note"] = [{"text": medication.note}]
    return _drop_none(data)


def medication_from_fhir(actor: Actor, resource: Any) -> tuple[Patient, dict[str, Any]]:
    patient = resolve_patient(actor, resource.subject, "MedicationStatement.subject")
    if resource.medicationCodeableConcept is None:
        raise FhirError(
            422,
            "Only medicationCodeableConcept is supported (no medicationReference).",
            expressions=[("MedicationStatement.medication", "use medicationCodeableConcept")],
        )
    if resource.status not in MedicationStatement.Status.values:
        raise FhirError(
            422,
            f"Unsupported status {resource.status!r}; use active, completed or stopped.",
            expressions=[("MedicationStatement.status", "unsupported")],
        )
    concept = resource.medicationCodeableConcept
    rxnorm = next((c.code for c in concept.coding or [] if c.system == RXNORM and c.code), "")
    start = end = None
    if resource.effectivePeriod:
        start = as_date(resource.effectivePeriod.start, "MedicationStatement.effectivePeriod.start")
        end = as_date(resource.effectivePeriod.end, "MedicationStatement.effectivePeriod.end")
    elif resource.effectiveDateTime:
        start = as_date(resource.effectiveDateTime, "MedicationStatement.effectiveDateTime")
    name = text_of(concept)
    if not name:
        raise FhirError(
            422,
            "The medication needs a name.",
            expressions=[
                ("MedicationStatement.medicationCodeableConcept", "text or display required")
            ],
        )
    data = {
        "drug_name": bounded(name, 200, "MedicationStatement.medicationCodeableConcept"),
        "rxnorm_code": bounded(
            rxnorm, 20, "MedicationStatement.medicationCodeableConcept.coding.code"
        ),
        "dose_text": bounded(
            next((d.text for d in resource.dosage or [] if d.text), ""),
            200,
            "MedicationStatement.dosage.text",
        ),
        "status": resource.status,
        "start_date": start,
        "end_date": end,
        "note": notes(resource),
    }
    return patient, data


# --- AllergyIntolerance -------------------------------------------------------------------------


def allergy_to_fhir(allergy: Allergy) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": str(allergy.public_id),
        "meta": meta(allergy),
        "identifier": identifier_from_external(allergy.external_id) or None,
        "code": {"text": allergy.substance},
        "patient": _ref(allergy.patient),
        "criticality": allergy.criticality or None,
        "recordedDate": allergy.created_at.date().isoformat(),
    }
    if allergy.entered_in_error:
        data["verificationStatus"] = _concept(ALLERGY_VERIFICATION, "entered-in-error")
    else:
        data["clinicalStatus"] = _concept(ALLERGY_CLINICAL, allergy.clinical_status)
        data["verificationStatus"] = _concept(ALLERGY_VERIFICATION, "confirmed")
    if allergy.reaction or allergy.severity:
        reaction: dict[str, Any] = {"manifestation": [{"text": allergy.reaction or "reaction"}]}
        if allergy.severity:
            reaction["severity"] = allergy.severity
        data["reaction"] = [reaction]
    if allergy.note:
        data["note"] = [{"text": allergy.note}]
    return _drop_none(data)


def allergy_from_fhir(actor: Actor, resource: Any) -> tuple[Patient, dict[str, Any]]:
    patient = resolve_patient(actor, resource.patient, "AllergyIntolerance.patient")
    substance = text_of(resource.code)
    if not substance:
        raise FhirError(
            422,
            "The allergy needs a substance (code).",
            expressions=[("AllergyIntolerance.code", "required")],
        )
    clinical = status_code(resource.clinicalStatus) or "active"
    if clinical not in Allergy.Status.values:
        raise FhirError(
            422,
            f"Unsupported clinicalStatus {clinical!r}.",
            expressions=[("AllergyIntolerance.clinicalStatus", "unsupported")],
        )
    reaction = (resource.reaction or [None])[0]
    data = {
        "substance": bounded(substance, 200, "AllergyIntolerance.code"),
        "reaction": bounded(
            text_of(reaction.manifestation[0]) if reaction and reaction.manifestation else "",
            255,
            "AllergyIntolerance.reaction.manifestation",
        ),
        "severity": (reaction.severity if reaction and reaction.severity else ""),
        "criticality": resource.criticality or "low",
        "clinical_status": clinical,
        "note": notes(resource),
    }
    return patient, data
