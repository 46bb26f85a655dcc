"""Vital-sign Observations <-> BodyWeight, BodyHeight and VitalSign rows.

Codes are LOINC; values carry UCUM units and are converted to the chart's canonical unit on input
(a weight in [lb_av] is stored in kg). Synthea's older blood-pressure panel 55284-4 means the same
as 85354-9 and is stored as such.

A row marked entered-in-error in the chart is emitted with status `entered-in-error`, on read,
in search and in $everything, as Conditions are; the chart and dosing never use it.

A measurement is never edited: a wrong one is marked entered-in-error (DELETE, or PUT with status
`entered-in-error` and everything else as recorded) and the right one recorded as a new
Observation. `observation_changes` says what a PUT would change; `update_refused` explains why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from fhir.resources.R4B import get_fhir_model_class

from ketaclinic.accounts.actor import Actor
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.fhir.common import (
    as_datetime,
    decimal2,
    derived_mrn,
    first_identifier_key,
    identifier_from_external,
    instant,
    meta,
    reference_id,
    resolve_patient,
)
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.patients import services
from ketaclinic.patients.models import (
    BodyHeight,
    BodyWeight,
    ChartEntry,
    CorrectableEntry,
    Patient,
    VitalSign,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS = {
    "coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
    "text": "Vital Signs",
}
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"


class _Common(TypedDict):
    """What every vital-sign service call of one Observation shares."""

    actor: Actor
    patient: Patient
    measured_at: datetime
    source: str
    external_id: str


@dataclass(frozen=True)
class VitalCode:
    code: str  # the code stored and emitted
    display: str
    kind: str  # "weight", "height" or a VitalSign.Kind value
    profile: str


CODES: dict[str, VitalCode] = {
    "85354-9": VitalCode("85354-9", "Blood pressure panel with all children optional", "bp", "bp"),
    "8867-4": VitalCode("8867-4", "Heart rate", "heart_rate", "heartrate"),
    "59408-5": VitalCode(
        "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "spo2", "oxygensat"
    ),
    "2708-6": VitalCode("2708-6", "Oxygen saturation in Arterial blood", "spo2", "oxygensat"),
    "9279-1": VitalCode("9279-1", "Respiratory rate", "resp_rate", "resprate"),
    "8310-5": VitalCode("8310-5", "Body temperature", "temperature", "bodytemp"),
    "29463-7": VitalCode("29463-7", "Body weight", "weight", "bodyweight"),
    "8302-2": VitalCode("8302-2", "Body height", "height", "bodyheight"),
    "39156-5": VitalCode("39156-5", "Body mass index (BMI) [Ratio]", "bmi", "bmi"),
}
# Older codes that mean the same thing, mapped on input.
ALIASES = {"55284-4": "85354-9"}
SUPPORTED_CODES = tuple(CODES) + tuple(ALIASES)


def canonical_code(code: str) -> str:
    return ALIASES.get(code, code)


def vital_code_of(resource: Any) -> VitalCode:
    codings = resource.code.coding or [] if resource.code else []
    for coding in codings:
        if coding.system == LOINC and coding.code and canonical_code(coding.code) in CODES:
            return CODES[canonical_code(coding.code)]
    found = ", ".join(f"{c.system}|{c.code}" for c in codings) or "none"
    raise FhirError(
        422,
        f"Unsupported Observation code ({found}). Supported vital signs (LOINC): "
        + ", ".join(SUPPORTED_CODES),
        expressions=[("Observation.code", "no supported LOINC vital-sign code")],
    )


def _quantity(quantity: Any, field: str) -> tuple[Any, str]:
    if quantity is None or quantity.value is None:
        raise FhirError(
            400,
            f"{field} is required.",
            expressions=[(field, "a Quantity with a value is required")],
        )
    unit = quantity.code or quantity.unit or ""
    if quantity.system and quantity.system != UCUM:
        raise FhirError(
            422, f"{field} must use UCUM units.", expressions=[(f"{field}.system", UCUM)]
        )
    return decimal2(quantity.value), unit


def observation_record(
    actor: Actor,
    resource: Any,
    *,
    source: str = ChartEntry.Source.CLINIC,
    external_id: str = "",
    patient: Patient | None = None,
) -> ChartEntry:
    """Create the chart row for a vital-sign Observation through the patients services."""
    vital = vital_code_of(resource)
    if resource.status not in ("final", "amended", "corrected"):
        raise FhirError(
            422,
            f"Only final results are recorded (status {resource.status!r}).",
            expressions=[("Observation.status", "use final, amended or corrected")],
        )
    patient = patient or resolve_patient(
        actor, resource.subject, "Observation.subject", only=services.MEASUREMENT_PATIENT_FIELDS
    )
    effective = resource.effectiveDateTime or resource.effectiveInstant
    if effective is None and resource.effectivePeriod is not None:
        effective = resource.effectivePeriod.start
    measured_at = as_datetime(effective, "Observation.effectiveDateTime")
    if measured_at is None:
        raise FhirError(
            400,
            "A vital sign needs its time (effectiveDateTime).",
            expressions=[("Observation.effective", "required")],
        )
    try:
        return _record_vital(actor, vital, resource, patient, measured_at, source, external_id)
    except ValidationFailed as error:
        # The services name their own fields (value_diastolic...): a FHIR client is pointed at
        # the element it sent, by FHIRPath.
        raise error.renamed(_element_paths(vital), default="Observation") from None


def _element_paths(vital: VitalCode) -> dict[str, str]:
    if vital.kind == "bp":
        systolic, diastolic = (
            f"Observation.component.where(code.coding.code = '{code}').valueQuantity"
            for code in (SYSTOLIC, DIASTOLIC)
        )
        value = {"value": f"{systolic}.value", "value_diastolic": f"{diastolic}.value",
                 "unit": f"{systolic}.code", "entered_unit": f"{systolic}.code"}  # fmt: skip
    else:
        quantity = "Observation.valueQuantity"
        value = {name: f"{quantity}.value" for name in ("value", "weight", "height")}
        value |= {"unit": f"{quantity}.code", "entered_unit": f"{quantity}.code"}
    return value | {
        "entered_value": value["value"],
        "measured_at": "Observation.effective",
        "kind": "Observation.code",
        "code": "Observation.code",
        "external_id": "Observation.identifier",
        "source": "Observation.meta.source",
    }


def _record_vital(
    actor: Actor,
    vital: VitalCode,
    resource: Any,
    patient: Patient,
    measured_at: datetime,
    source: str,
    external_id: str,
) -> ChartEntry:
    common: _Common = {
        "actor": actor,
        "patient": patient,
        "measured_at": measured_at,
        "source": source,
        "external_id": external_id,
    }
    if vital.kind == "bp":
        values = {}
        for component in resource.component or []:
            for coding in component.code.coding or []:
                if coding.system == LOINC and coding.code in (SYSTOLIC, DIASTOLIC):
                    values[coding.code] = _quantity(
                        component.valueQuantity,
                        f"Observation.component[{coding.code}].valueQuantity",
                    )
        missing = [c for c in (SYSTOLIC, DIASTOLIC) if c not in values]
        if missing:
            raise FhirError(
                422,
                "A blood-pressure panel needs systolic (8480-6) and diastolic (8462-4) components.",
                expressions=[("Observation.component", f"missing {', '.join(missing)}")],
            )
        (systolic, unit), (diastolic, diastolic_unit) = values[SYSTOLIC], values[DIASTOLIC]
        if diastolic_unit != unit:
            raise FhirError(422, "Systolic and diastolic must have the same unit.")
        return services.vital_sign_record(
            kind="bp",
            code=vital.code,
            value=systolic,
            value_diastolic=diastolic,
            unit=unit,
            **common,
        )
    value, unit = _quantity(resource.valueQuantity, "Observation.valueQuantity")
    if vital.kind == "weight":
        return services.weight_record(value=value, unit=unit, **common)
    if vital.kind == "height":
        return services.height_record(value=value, unit=unit, **common)
    return services.vital_sign_record(
        kind=vital.kind, code=vital.code, value=value, unit=unit, **common
    )


def _value_quantity(value: Any, unit: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": UCUM, "code": unit}


def observation_to_fhir(entry: CorrectableEntry, table: str = "") -> dict[str, Any]:
    """`table` names the chart table the row comes from ("w", "h", "v"), for callers that hand
    over a plain row (bulk export) rather than the model instance."""
    table = table or (
        "w" if isinstance(entry, BodyWeight) else "h" if isinstance(entry, BodyHeight) else "v"
    )
    row: Any = entry
    if table == "w":
        vital, value = CODES["29463-7"], _value_quantity(row.weight_kg, "kg")
    elif table == "h":
        vital, value = CODES["8302-2"], _value_quantity(row.height_cm, "cm")
    else:
        vital, value = (
            CODES.get(row.code, CODES["85354-9"]),
            _value_quantity(row.value, row.unit),
        )
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(entry.public_id),
        "meta": {
            **meta(entry),
            "profile": [f"http://hl7.org/fhir/StructureDefinition/{vital.profile}"],
        },
        # Like a Condition's verificationStatus: a withdrawn row is still served, so a client
        # that holds it learns it was wrong, but it is never "final".
        "status": "entered-in-error" if entry.entered_in_error else "final",
        "category": [VITAL_SIGNS],
        "code": {
            "coding": [{"system": LOINC, "code": vital.code, "display": vital.display}],
            "text": vital.display,
        },
        "subject": {"reference": f"Patient/{entry.patient.public_id}"},
        "effectiveDateTime": instant(row.measured_at),
    }
    identifier = identifier_from_external(entry.external_id)
    if identifier:
        data["identifier"] = identifier
    if table == "v" and row.kind == VitalSign.Kind.BLOOD_PRESSURE:
        data["component"] = [
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": SYSTOLIC, "display": "Systolic blood pressure"}
                    ]
                },
                "valueQuantity": _value_quantity(row.value, "mm[Hg]"),
            },
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": DIASTOLIC, "display": "Diastolic blood pressure"}
                    ]
                },
                "valueQuantity": _value_quantity(row.value_diastolic, "mm[Hg]"),
            },
        ]
    else:
        data["valueQuantity"] = value
    return data


# --- update: only the status, only to entered-in-error -------------------------------------------

ENTERED_IN_ERROR = "entered-in-error"
HOW_TO_CORRECT = (
    "To correct a measurement, mark the wrong Observation entered-in-error (DELETE it, or PUT it "
    "with status entered-in-error and everything else as recorded) and POST the correct "
    "measurement as a new Observation."
)


def _code_key(resource: Any) -> str | None:
    try:
        return vital_code_of(resource).code
    except FhirError:
        return None


def _quantity_key(quantity: Any) -> tuple[Any, str] | None:
    if quantity is None or quantity.value is None:
        return None
    return decimal2(quantity.value), quantity.code or quantity.unit or ""


def _recorded(resource: Any) -> dict[str, Any]:
    """What a chart row keeps of an Observation (what `observation_record` reads), by FHIRPath."""
    effective = resource.effectiveDateTime or resource.effectiveInstant
    if effective is None and resource.effectivePeriod is not None:
        effective = resource.effectivePeriod.start
    components = {
        coding.code: _quantity_key(component.valueQuantity)
        for component in resource.component or []
        for coding in component.code.coding or []
        if coding.system == LOINC and coding.code in (SYSTOLIC, DIASTOLIC)
    }
    return {
        "Observation.code": _code_key(resource),
        "Observation.effective[x]": as_datetime(effective, "Observation.effectiveDateTime"),
        "Observation.value[x]": _quantity_key(resource.valueQuantity),
        "Observation.component": components,
        "Observation.identifier": first_identifier_key(resource),
    }


def _same_patient(subject: Any, patient: Patient) -> bool:
    if subject is None:
        return False
    if subject.reference:
        return reference_id(subject.reference, "Patient") == str(patient.public_id)
    identifier = subject.identifier
    return bool(identifier and identifier.value) and (
        derived_mrn(identifier.system, identifier.value) == patient.mrn
    )


def observation_changes(entry: CorrectableEntry, resource: Any) -> list[tuple[str, str]]:
    """What a PUT of `resource` would change of the measurement `entry` records, as (FHIRPath,
    message) pairs; the status is left to the caller. Elements the chart does not keep (note,
    interpretation, performer...) are not compared: they are not stored on create either."""
    model = get_fhir_model_class("Observation")
    recorded = _recorded(model.model_validate(observation_to_fhir(entry)))
    sent = _recorded(resource)
    changes = [
        (path, f"{path} differs from the recorded measurement.")
        for path, value in recorded.items()
        if sent[path] != value
    ]
    if not _same_patient(resource.subject, entry.patient):
        changes.insert(0, ("Observation.subject", "An Observation cannot move to another patient."))
    return changes


def update_refused(
    entry: CorrectableEntry, resource: Any, changes: list[tuple[str, str]]
) -> FhirError:
    """The 422 for a PUT that is not "this measurement was entered in error", with each change."""
    current = ENTERED_IN_ERROR if entry.entered_in_error else "final"
    issues = list(changes)
    if resource.status not in (current, ENTERED_IN_ERROR):
        issues.insert(
            0,
            (
                "Observation.status",
                f"The status cannot change from {current} to {resource.status}: only "
                f"{ENTERED_IN_ERROR} can be set.",
            ),
        )
    if not issues:
        summary = "The update changes nothing."
    elif resource.status == ENTERED_IN_ERROR:
        summary = (
            "Marking an Observation entered-in-error changes only its status: send the rest "
            "of it as recorded."
        )
    else:
        summary = "A recorded measurement is not edited."
    return FhirError(422, f"{summary} {HOW_TO_CORRECT}", expressions=issues)
