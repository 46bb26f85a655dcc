"""Writes to the patient chart. Each: permission, validation, one transaction, one audit event."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock, rows
from ketaclinic.core.bulk import insert_instances
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.core.validation import full_clean_or_raise
from ketaclinic.patients import units
from ketaclinic.patients.codes import PRELOADED_BY_CODE
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    ChartEntry,
    Condition,
    CorrectableEntry,
    MedicationStatement,
    Patient,
    VitalSign,
)
from ketaclinic.patients.plausibility import implausible_readings

PATIENT_FIELDS = (
    "mrn",
    "given_name",
    "family_name",
    "birth_date",
    "sex_at_birth",
    "gender_identity",
    "pronouns",
    "phone",
    "email",
    "address",
    "emergency_contact_name",
    "emergency_contact_phone",
    "emergency_contact_relationship",
    "preferred_language",
)
CONDITION_FIELDS = (
    "code_system",
    "code",
    "display",
    "clinical_status",
    "onset_date",
    "abatement_date",
    "note",
)
MEDICATION_FIELDS = (
    "drug_name",
    "rxnorm_code",
    "dose_text",
    "status",
    "start_date",
    "end_date",
    "is_antidepressant_trial",
    "adequate_trial",
    "in_current_episode",
    "trial_outcome",
    "note",
)
ALLERGY_FIELDS = ("substance", "reaction", "severity", "criticality", "clinical_status", "note")

Entry = TypeVar("Entry", bound=ChartEntry)


def _unknown_fields(data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", [FieldError(f, "This field does not exist.") for f in unknown]
        )


def _check_patient(patient: Patient) -> None:
    errors = []
    try:
        units.check_birth_date(patient.birth_date, clock.now().date())
    except units.UnitError as exc:
        errors.append(FieldError(exc.field, exc.message))
    except TypeError:
        errors.append(FieldError("birth_date", "Enter a valid date."))
    for name in ("given_name", "family_name"):
        if not str(getattr(patient, name) or "").strip():
            errors.append(FieldError(name, "This field is required."))
    if errors:
        raise ValidationFailed("The patient record is not valid.", errors)
    full_clean_or_raise(patient, exclude=["organization"])


def _new_mrn() -> str:
    return f"KC{secrets.randbelow(10**8):08d}"


def patient_create(*, actor: Actor, data: Mapping[str, Any]) -> Patient:
    actor.require(Cap.PATIENT_CREATE)
    _unknown_fields(data, PATIENT_FIELDS)
    patient = Patient(organization=actor.organization, **data)
    if not patient.mrn:
        patient.mrn = _new_mrn()
    _check_patient(patient)
    if Patient.objects.filter(mrn=patient.mrn).exists():
        raise Conflict.for_field("mrn", f"MRN {patient.mrn} is already used in this organization.")
    try:
        with transaction.atomic():
            patient.save()
            audit_record(
                actor=actor,
                action="patients.patient.created",
                patient_id=patient.public_id,
                obj=patient,
            )
    except IntegrityError:
        raise Conflict.for_field("mrn", f"MRN {patient.mrn} is already used.") from None
    return patient


def patient_update(*, actor: Actor, patient: Patient, data: Mapping[str, Any]) -> Patient:
    actor.require(Cap.PATIENT_EDIT_DEMOGRAPHICS)
    _unknown_fields(data, PATIENT_FIELDS)
    changed = {k: v for k, v in data.items() if getattr(patient, k) != v}
    if not changed:
        return patient
    for key, value in changed.items():
        setattr(patient, key, value)
    _check_patient(patient)
    if "mrn" in changed and Patient.objects.filter(mrn=patient.mrn).exclude(pk=patient.pk).exists():
        raise Conflict.for_field("mrn", f"MRN {patient.mrn} is already used in this organization.")
    with transaction.atomic():
        patient.save()
        audit_record(
            actor=actor,
            action="patients.patient.updated",
            patient_id=patient.public_id,
            obj=patient,
            detail={"fields": sorted(changed)},
        )
    return patient


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed.for_field(field, "Enter a number.") from None
    if not number.is_finite():
        raise ValidationFailed.for_field(field, "Enter a finite number.")
    return number


def _measured_at(value: datetime | None, patient: Patient) -> datetime:
    now = clock.now()
    if value is None:
        return now
    if value.tzinfo is None:
        raise ValidationFailed.for_field("measured_at", "Give the time with its time zone.")
    if value > now:
        raise ValidationFailed.for_field("measured_at", "The measurement time is in the future.")
    problem = units.before_birth(value, patient.birth_date)
    if problem:
        raise ValidationFailed.for_field("measured_at", problem)
    return value


# What weight_record and height_record read of the patient (the key, the organization, the
# birth date a measurement time is checked against): callers that look the patient up for them
# read only these columns (issue 13: converting and setting the other 16 was about a quarter
# of the lookup's CPU, 12 of 43 us in one process).
MEASUREMENT_PATIENT_FIELDS = ("organization", "public_id", "birth_date")


def weight_record(
    *,
    actor: Actor,
    patient: Patient,
    value: Any,
    unit: str = "kg",
    measured_at: datetime | None = None,
    source: str = ChartEntry.Source.CLINIC,
    external_id: str = "",
) -> BodyWeight:
    actor.require(Cap.MEASUREMENT_RECORD)
    entered = _decimal(value, "weight")
    try:
        kg = units.weight_to_kg(entered, unit)
    except units.UnitError as exc:
        raise ValidationFailed.for_field(exc.field, exc.message) from None
    weight = BodyWeight(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        source=source,
        external_id=external_id,
        weight_kg=kg,
        entered_value=entered,
        entered_unit=unit,
        measured_at=_measured_at(measured_at, patient),
    )
    return _save_entry(
        actor, weight, "patients.weight.recorded", {"weight_kg": str(kg)}, _MEASUREMENT_CHECKED
    )


def height_record(
    *,
    actor: Actor,
    patient: Patient,
    value: Any,
    unit: str = "cm",
    measured_at: datetime | None = None,
    source: str = ChartEntry.Source.CLINIC,
    external_id: str = "",
) -> BodyHeight:
    actor.require(Cap.MEASUREMENT_RECORD)
    entered = _decimal(value, "height")
    try:
        cm = units.height_to_cm(entered, unit)
    except units.UnitError as exc:
        raise ValidationFailed.for_field(exc.field, exc.message) from None
    height = BodyHeight(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        source=source,
        external_id=external_id,
        height_cm=cm.quantize(Decimal("0.1")),
        entered_value=entered,
        entered_unit=unit,
        measured_at=_measured_at(measured_at, patient),
    )
    return _save_entry(
        actor, height, "patients.height.recorded", {"height_cm": str(cm)}, _MEASUREMENT_CHECKED
    )


class _Batch:
    """Entries an import records: validated one by one, inserted per table at the end."""

    def __init__(self) -> None:
        self.entries: list[ChartEntry] = []


_batch: ContextVar[_Batch | None] = ContextVar("patients_entry_batch", default=None)


@contextmanager
def entries_batched(
    *, actor: Actor, action: str, detail: dict[str, Any], audited_by_caller: bool = False
) -> Iterator[_Batch]:
    """Inside, every chart entry a service records (weights, heights, vital signs, conditions,
    medications, allergies) is checked by the same rules as always, then the lot is inserted
    with one bulk INSERT per table and audited as ONE event (`action`, with `detail` and the
    counts per table) instead of one per row: the import of a Bundle is one act. With
    `audited_by_caller`, no event is written here: the counts and patients go into `detail`
    for the caller's own single event (the importer's one event per Bundle). Call inside the
    caller's transaction; nothing is written if the block raises."""
    batch = _Batch()
    with _set_in_block(_batch, batch):
        yield batch
    by_model: dict[type[ChartEntry], list[ChartEntry]] = {}
    for entry in batch.entries:
        by_model.setdefault(type(entry), []).append(entry)
    for model, entries in by_model.items():
        insert_instances(model, entries)  # the rows get no pk: they are known by public_id
    if not batch.entries:
        return
    summary = {
        "counts": {m.__name__: len(r) for m, r in by_model.items()},
        "patients": sorted({str(e.patient.public_id) for e in batch.entries})[:200],
    }
    if audited_by_caller:
        detail.update(summary)
        return
    audit_record(actor=actor, action=action, detail={**detail, **summary})


class StagedEntries:
    """Chart entries the services have checked but not written, each with its audit event."""

    def __init__(self) -> None:
        self.entries: list[tuple[ChartEntry, str, dict[str, Any]]] = []

    def write(self, actor: Actor) -> None:
        """Insert each entry and its audit event, as the service would have: call inside the
        transaction that writes whatever else goes with them."""
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("Staged chart entries are written inside a transaction.")
        for entry, action, detail in self.entries:
            _insert_audited(actor, entry, action, detail)


_staged: ContextVar[StagedEntries | None] = ContextVar("patients_entries_staged", default=None)


@contextmanager
def entries_staged() -> Iterator[StagedEntries]:
    """Inside, a chart entry a service records (weight, height, vital sign...) is looked up and
    checked by the same rules as always, then kept unwritten for `StagedEntries.write`. The
    lookups and checks run before the caller opens its write transaction: on SQLite the write
    lock is held from BEGIN to COMMIT, one writer at a time, so the less work inside it the more
    writes a clinic gets through (issue 13: a FHIR Observation create did its patient lookup,
    mapping and checks holding the lock). Call outside any transaction; nothing is written in
    here except the audit of a refusal, as everywhere."""
    staged = StagedEntries()
    with _set_in_block(_staged, staged):
        yield staged


@contextmanager
def _set_in_block(variable: ContextVar[Any], value: Any) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


# Set by the service itself, never taken from the caller: the actor's organization and user, the
# patient it looked up, a fresh public id and `entered_in_error=False`.
_SET_BY_SERVICE = ("organization", "patient", "recorded_by", "public_id", "entered_in_error")
# A weight's or height's other fields the service has produced and checked before the model's
# rules run: the unit is a key of the unit table (else UnitError) and the time passed
# _measured_at. The model still checks what comes from the caller (entered value, source,
# external id) and the converted value kept for dosing: a weight runs 3 field checks, not 7.
_MEASUREMENT_CHECKED = ("entered_unit", "measured_at")
# A vital sign's the same way: the kind is a key of VITAL_UNITS (its keys are the kind's choices),
# the unit that table's value for it, the time passed _measured_at. Values, the entered unit,
# the code, source and external id are still the model's to check: 6 field checks, not 9.
# tests/api/test_write_path.py holds the table to the model.
_VITAL_CHECKED = ("kind", "unit", "measured_at")


def _save_entry(
    actor: Actor, entry: Entry, action: str, detail: dict[str, Any], checked: tuple[str, ...] = ()
) -> Entry:
    full_clean_or_raise(entry, exclude=[*_SET_BY_SERVICE, *checked])
    staged = _staged.get()
    if staged is not None:
        staged.entries.append((entry, action, detail))
        return entry
    batch = _batch.get()
    if batch is not None:
        now = clock.now()
        entry.created_at = entry.created_at or now
        entry.updated_at = now
        batch.entries.append(entry)
        return entry
    # The row and its audit event commit together. Inside a caller's transaction (a FHIR create
    # also keeps the received JSON and the version) no savepoint of their own: nothing raised
    # in here is caught to carry on, the whole transaction rolls back (two statements fewer).
    with transaction.atomic(savepoint=False):
        _insert_audited(actor, entry, action, detail)
    return entry


def _insert_audited(actor: Actor, entry: ChartEntry, action: str, detail: dict[str, Any]) -> None:
    rows.insert(entry)  # entry.save()'s INSERT, built once (core.rows)
    audit_record(
        actor=actor, action=action, patient_id=entry.patient.public_id, obj=entry, detail=detail
    )


def _check_dates(
    start: date | None, end: date | None, start_name: str, end_name: str, born: date | None = None
) -> None:
    today = clock.now().date()
    errors = []
    if start and start > today:
        errors.append(FieldError(start_name, "This date is in the future."))
    if start and born and start < born:
        errors.append(FieldError(start_name, f"This date is before the date of birth ({born})."))
    if start and end and end < start:
        errors.append(FieldError(end_name, "This date is before the start date."))
    if errors:
        raise ValidationFailed("The dates are not consistent.", errors)


def _create_entry(
    actor: Actor,
    model: type[Entry],
    patient: Patient,
    data: Mapping[str, Any],
    allowed: tuple[str, ...],
    action: str,
    source: str = ChartEntry.Source.CLINIC,
    external_id: str = "",
) -> Entry:
    actor.require(Cap.CLINICAL_EDIT)
    _unknown_fields(data, allowed)
    entry = model(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        source=source,
        external_id=external_id,
        **data,
    )
    _validate_entry(entry)
    return _save_entry(actor, entry, action, {})


def _update_entry(
    actor: Actor, entry: Entry, data: Mapping[str, Any], allowed: tuple[str, ...], action: str
) -> Entry:
    actor.require(Cap.CLINICAL_EDIT)
    _unknown_fields(data, allowed)
    if isinstance(entry, CorrectableEntry) and entry.entered_in_error:
        raise Conflict("This entry was marked entered-in-error and can no longer be changed.")
    # null clears an optional date or answer; a required or text field cannot be cleared to null
    # (the database would refuse it with an IntegrityError, a 500).
    nulls = [
        k
        for k, v in data.items()
        if v is None and not getattr(type(entry)._meta.get_field(k), "null", False)
    ]
    if nulls:
        raise ValidationFailed(
            "Some fields cannot be empty.",
            [
                FieldError(k, "This field cannot be null; send a value or leave it out.")
                for k in nulls
            ],
        )
    changed = sorted(k for k, v in data.items() if getattr(entry, k) != v)
    if not changed:
        return entry
    for key in changed:
        setattr(entry, key, data[key])
    _validate_entry(entry)
    full_clean_or_raise(entry, exclude=["organization", "patient", "recorded_by"])
    with transaction.atomic():
        entry.save()
        audit_record(
            actor=actor,
            action=action,
            patient_id=entry.patient.public_id,
            obj=entry,
            detail={"fields": changed},
        )
    return entry


def _validate_entry(entry: ChartEntry) -> None:
    if isinstance(entry, Condition):
        if not entry.display and entry.code in PRELOADED_BY_CODE:
            entry.display = PRELOADED_BY_CODE[entry.code].display
        if not entry.display:
            entry.display = entry.code
        _check_dates(
            entry.onset_date,
            entry.abatement_date,
            "onset_date",
            "abatement_date",
            entry.patient.birth_date,
        )
    elif isinstance(entry, MedicationStatement):
        _check_dates(
            entry.start_date, entry.end_date, "start_date", "end_date", entry.patient.birth_date
        )
        if entry.trial_outcome and not entry.is_antidepressant_trial:
            raise ValidationFailed.for_field(
                "trial_outcome", "A trial outcome applies only to an antidepressant trial."
            )


# Measurements are audited under the names they are recorded with ("patients.weight.recorded").
_MEASUREMENT_AUDIT_NAMES: dict[type[ChartEntry], str] = {
    BodyWeight: "weight",
    BodyHeight: "height",
    VitalSign: "vital_sign",
}


def _audit_name(entry: ChartEntry) -> str:
    return _MEASUREMENT_AUDIT_NAMES.get(type(entry), type(entry).__name__.lower())


def entry_mark_entered_in_error(*, actor: Actor, entry: ChartEntry, reason: str = "") -> None:
    """Charts are not erased: a wrong entry is flagged, kept, and hidden from the summary.

    Conditions, medications, allergies, weights, heights and vital signs. A weight so marked is
    no longer used for weight-based dosing: the dose falls back on the previous valid weight, or
    is refused when none is left.
    """
    actor.require(Cap.CLINICAL_EDIT)
    if not isinstance(entry, CorrectableEntry):
        raise Conflict("This kind of entry cannot be marked entered-in-error.")
    if entry.entered_in_error:
        raise Conflict("This entry is already marked entered-in-error.")
    now = clock.now()
    with transaction.atomic():
        # Conditional on the flag still being clear, so of two markings racing only one is
        # recorded and audited; the other is the same Conflict as a second marking.
        marked = (
            type(entry)
            ._base_manager.filter(pk=entry.pk, entered_in_error=False)
            .update(entered_in_error=True, updated_at=now)
        )
        if not marked:
            raise Conflict("This entry is already marked entered-in-error.")
        entry.entered_in_error = True
        entry.updated_at = now
        audit_record(
            actor=actor,
            action=f"patients.{_audit_name(entry)}.entered_in_error",
            patient_id=entry.patient.public_id,
            obj=entry,
            detail={"reason": reason[:500]},
        )


def condition_add(
    *, actor: Actor, patient: Patient, data: Mapping[str, Any], **kw: Any
) -> Condition:
    return _create_entry(
        actor, Condition, patient, data, CONDITION_FIELDS, "patients.condition.added", **kw
    )


def condition_update(*, actor: Actor, condition: Condition, data: Mapping[str, Any]) -> Condition:
    return _update_entry(actor, condition, data, CONDITION_FIELDS, "patients.condition.updated")


def medication_add(
    *, actor: Actor, patient: Patient, data: Mapping[str, Any], **kw: Any
) -> MedicationStatement:
    return _create_entry(
        actor,
        MedicationStatement,
        patient,
        data,
        MEDICATION_FIELDS,
        "patients.medication.added",
        **kw,
    )


def medication_update(
    *, actor: Actor, medication: MedicationStatement, data: Mapping[str, Any]
) -> MedicationStatement:
    return _update_entry(actor, medication, data, MEDICATION_FIELDS, "patients.medication.updated")


def allergy_add(*, actor: Actor, patient: Patient, data: Mapping[str, Any], **kw: Any) -> Allergy:
    return _create_entry(
        actor, Allergy, patient, data, ALLERGY_FIELDS, "patients.allergy.added", **kw
    )


def allergy_update(*, actor: Actor, allergy: Allergy, data: Mapping[str, Any]) -> Allergy:
    return _update_entry(actor, allergy, data, ALLERGY_FIELDS, "patients.allergy.updated")


# Plausibility limits per vital sign, in the canonical unit: they reject typing errors and unit
# mix-ups (a temperature entered in Fahrenheit as Celsius), not unusual patients.
VITAL_UNITS: dict[str, str] = {
    VitalSign.Kind.BLOOD_PRESSURE: "mm[Hg]",
    VitalSign.Kind.HEART_RATE: "/min",
    VitalSign.Kind.SPO2: "%",
    VitalSign.Kind.RESPIRATORY_RATE: "/min",
    VitalSign.Kind.TEMPERATURE: "Cel",
    VitalSign.Kind.BMI: "kg/m2",
}
VITAL_LIMITS: dict[str, tuple[Decimal, Decimal]] = {
    VitalSign.Kind.BLOOD_PRESSURE: (Decimal("30"), Decimal("320")),
    VitalSign.Kind.HEART_RATE: (Decimal("15"), Decimal("350")),
    VitalSign.Kind.SPO2: (Decimal("30"), Decimal("100")),
    VitalSign.Kind.RESPIRATORY_RATE: (Decimal("2"), Decimal("100")),
    VitalSign.Kind.TEMPERATURE: (Decimal("24"), Decimal("46")),
    VitalSign.Kind.BMI: (Decimal("5"), Decimal("200")),
}
DIASTOLIC_LIMITS = (Decimal("10"), Decimal("250"))
_UNIT_ALIASES = {
    "{beats}/min": "/min",
    "{beat}/min": "/min",
    "{breaths}/min": "/min",
    "mmHg": "mm[Hg]",
}


def _vital_canonical(kind: str, value: Decimal, unit: str) -> Decimal:
    unit = _UNIT_ALIASES.get(unit, unit)
    if kind == VitalSign.Kind.TEMPERATURE and unit == "[degF]":
        return ((value - 32) * 5 / 9).quantize(Decimal("0.01"))
    if kind == VitalSign.Kind.BMI and unit == "kg/m^2":
        return value
    if unit != VITAL_UNITS[kind]:
        raise ValidationFailed.for_field(
            "unit", f"Unit {unit!r} is not accepted for {kind}; use {VITAL_UNITS[kind]!r}."
        )
    return value


def _vital_in_range(
    value: Decimal, limits: tuple[Decimal, Decimal], field: str, label: str
) -> None:
    low, high = limits
    if not low <= value <= high:
        raise ValidationFailed.for_field(
            field, f"{value} is not a possible {label} ({low}-{high}). Check the number and unit."
        )


# Chart vital kinds judged by the plausibility ranges (docs/sources/sessions.md), and the
# measure each value is; temperature and BMI keep only VITAL_LIMITS.
_PLAUSIBILITY_MEASURE = {
    VitalSign.Kind.BLOOD_PRESSURE: "systolic",
    VitalSign.Kind.HEART_RATE: "heart_rate",
    VitalSign.Kind.SPO2: "spo2",
    VitalSign.Kind.RESPIRATORY_RATE: "respiratory_rate",
}


def _require_plausible(kind: str, value: Decimal, value_diastolic: Any) -> None:
    """A number that cannot be a real reading is refused, "check this reading"; nothing stored."""
    measure = _PLAUSIBILITY_MEASURE.get(VitalSign.Kind(kind))
    if measure is None:
        return
    values: dict[str, Decimal | None] = {measure: value}
    if measure == "systolic" and value_diastolic not in (None, ""):
        values["diastolic"] = _decimal(value_diastolic, "value_diastolic")
    problems = implausible_readings(values)
    if problems:
        fields = {"diastolic": "value_diastolic"}
        raise ValidationFailed(
            " ".join(message for _, message in problems),
            [FieldError(fields.get(field, "value"), message) for field, message in problems],
        )


def vital_sign_record(
    *,
    actor: Actor,
    patient: Patient,
    kind: str,
    value: Any,
    unit: str,
    code: str,
    value_diastolic: Any = None,
    measured_at: datetime | None = None,
    source: str = ChartEntry.Source.CLINIC,
    external_id: str = "",
) -> VitalSign:
    """Record a vital sign (not weight or height), converted to the kind's canonical unit."""
    actor.require(Cap.MEASUREMENT_RECORD)
    if kind not in VITAL_UNITS:
        raise ValidationFailed.for_field("kind", f"Unknown vital sign {kind!r}.")
    entered = _decimal(value, "value")
    canonical = _vital_canonical(kind, entered, unit)
    _require_plausible(kind, canonical, value_diastolic)
    label = VitalSign.Kind(kind).label.lower()
    _vital_in_range(canonical, VITAL_LIMITS[kind], "value", label)
    diastolic = None
    if kind == VitalSign.Kind.BLOOD_PRESSURE:
        if value_diastolic is None:
            raise ValidationFailed.for_field(
                "value_diastolic", "A blood pressure needs both values."
            )
        diastolic = _vital_in_range_value(value_diastolic)
        if diastolic >= canonical:
            raise ValidationFailed.for_field(
                "value_diastolic", "The diastolic pressure must be below the systolic."
            )
    vital = VitalSign(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        source=source,
        external_id=external_id,
        kind=kind,
        code=code,
        value=canonical,
        value_diastolic=diastolic,
        unit=VITAL_UNITS[kind],
        entered_value=entered,
        entered_unit=unit[:20],
        measured_at=_measured_at(measured_at, patient),
    )
    detail = {"kind": kind, "value": str(canonical), "unit": VITAL_UNITS[kind]}
    if diastolic is not None:
        detail["value_diastolic"] = str(diastolic)
    return _save_entry(actor, vital, "patients.vital_sign.recorded", detail, _VITAL_CHECKED)


def _vital_in_range_value(value: Any) -> Decimal:
    diastolic = _decimal(value, "value_diastolic")
    _vital_in_range(diastolic, DIASTOLIC_LIMITS, "value_diastolic", "diastolic pressure")
    return diastolic


RESTING_BP_CODE = "85354-9"  # LOINC blood pressure panel, as FHIR stores it (fhir.observations)


def resting_blood_pressure_record(
    *,
    actor: Actor,
    patient: Patient,
    systolic: Any,
    diastolic: Any,
    measured_at: datetime | None = None,
) -> VitalSign:
    """A resting blood pressure on the chart (screening's hypertension rules read the latest)."""
    if systolic in (None, ""):
        raise ValidationFailed.for_field("systolic", "Enter the systolic pressure.")
    try:
        return vital_sign_record(
            actor=actor,
            patient=patient,
            kind=VitalSign.Kind.BLOOD_PRESSURE,
            value=systolic,
            value_diastolic=diastolic if diastolic != "" else None,
            unit="mm[Hg]",
            code=RESTING_BP_CODE,
            measured_at=measured_at,
        )
    except ValidationFailed as error:
        # The chart form and the API name the two numbers systolic and diastolic.
        raise error.renamed({"value": "systolic", "value_diastolic": "diastolic"}) from None
