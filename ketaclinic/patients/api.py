"""JSON API for the patient chart (mounted at /api/v1/)."""

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES, InputSchema, render_json
from ketaclinic.patients import selectors, services
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    ChartEntry,
    Condition,
    MedicationStatement,
    Patient,
    VitalSign,
)

router = Router(tags=["patients"])
MAX_PAGE = 200

SexAtBirth = Literal["female", "male", "intersex", "unknown"]


class Page(Schema):
    count: int
    limit: int
    offset: int


def _paged(request: ActorRequest, queryset: Any, limit: int, offset: int) -> dict[str, Any]:
    return {
        "count": queryset.count(),
        "limit": limit,
        "offset": offset,
        "items": list(queryset[offset : offset + limit]),
    }


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10_000_000)


# --- patients -------------------------------------------------------------------------------


class PatientIn(Schema):
    mrn: str = Field("", max_length=32)
    given_name: str = Field(..., min_length=1, max_length=100)
    family_name: str = Field(..., min_length=1, max_length=100)
    birth_date: date
    sex_at_birth: SexAtBirth
    gender_identity: str = Field("", max_length=60)
    pronouns: str = Field("", max_length=30)
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)
    address: str = Field("", max_length=2000)
    emergency_contact_name: str = Field("", max_length=150)
    emergency_contact_phone: str = Field("", max_length=40)
    emergency_contact_relationship: str = Field("", max_length=60)
    preferred_language: str = Field("en", min_length=2, max_length=16)


class PatientPatch(Schema):
    mrn: str | None = Field(None, min_length=1, max_length=32)
    given_name: str | None = Field(None, min_length=1, max_length=100)
    family_name: str | None = Field(None, min_length=1, max_length=100)
    birth_date: date | None = None
    sex_at_birth: SexAtBirth | None = None
    gender_identity: str | None = Field(None, max_length=60)
    pronouns: str | None = Field(None, max_length=30)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    address: str | None = Field(None, max_length=2000)
    emergency_contact_name: str | None = Field(None, max_length=150)
    emergency_contact_phone: str | None = Field(None, max_length=40)
    emergency_contact_relationship: str | None = Field(None, max_length=60)
    preferred_language: str | None = Field(None, min_length=2, max_length=16)


class PatientOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex_at_birth: str
    gender_identity: str
    pronouns: str
    phone: str
    email: str
    address: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relationship: str
    preferred_language: str
    is_active: bool


class PatientPage(Page):
    items: list[PatientOut]


class PatientFilter(PageQuery):
    q: str = Field("", max_length=100, description="Name fragment or MRN")
    birth_date: date | None = None


def _actor(request: ActorRequest) -> Actor:
    return request.auth  # the Actor set by TenantMiddleware and TokenAuth


@router.get("/patients", response={200: PatientPage, **ERROR_RESPONSES})
def list_patients(request: ActorRequest, filters: Query[PatientFilter]) -> Any:
    _actor(request).require(Cap.PATIENT_LIST)
    patients = selectors.patient_search(query=filters.q, birth_date=filters.birth_date)
    return _paged(request, patients, filters.limit, filters.offset)


@router.post("/patients", response={201: PatientOut, **ERROR_RESPONSES})
def create_patient(request: ActorRequest, payload: PatientIn) -> Any:
    return Status(201, services.patient_create(actor=_actor(request), data=payload.dict()))


@router.get("/patients/{patient_id}", response={200: PatientOut, **ERROR_RESPONSES})
def get_patient(request: ActorRequest, patient_id: str) -> Any:
    return selectors.patient_chart_read(_actor(request), patient_id, action="patients.patient.read")


@router.patch("/patients/{patient_id}", response={200: PatientOut, **ERROR_RESPONSES})
def update_patient(request: ActorRequest, patient_id: str, payload: PatientPatch) -> Any:
    actor = _actor(request)
    patient = selectors.patient_get_for_actor(actor, patient_id)
    return services.patient_update(
        actor=actor, patient=patient, data=payload.dict(exclude_unset=True, exclude_none=True)
    )


# --- measurements ---------------------------------------------------------------------------


class MeasurementIn(InputSchema):
    value: Decimal = Field(..., gt=0, max_digits=8, decimal_places=3)
    unit: str = Field(..., max_length=10)
    measured_at: datetime | None = None


class WeightOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    weight_kg: Decimal
    entered_value: Decimal
    entered_unit: str
    measured_at: datetime
    source: str


class HeightOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    height_cm: Decimal
    entered_value: Decimal
    entered_unit: str
    measured_at: datetime
    source: str


class WeightPage(Page):
    items: list[WeightOut]


class HeightPage(Page):
    items: list[HeightOut]


@router.get("/patients/{patient_id}/weights", response={200: WeightPage, **ERROR_RESPONSES})
def list_weights(request: ActorRequest, patient_id: str, page: Query[PageQuery]) -> Any:
    actor = _actor(request)
    actor.require(Cap.CLINICAL_VIEW)
    patient = selectors.patient_chart_read(actor, patient_id, action="patients.weights.read")
    weights = BodyWeight.objects.in_use().filter(patient=patient).order_by("-measured_at", "-pk")
    return _paged(request, weights, page.limit, page.offset)


def _measurement_out(entry: BodyWeight | BodyHeight, value: Decimal) -> dict[str, Any]:
    """WeightOut / HeightOut of an entry the service has just validated and written."""
    name = "weight_kg" if isinstance(entry, BodyWeight) else "height_cm"
    return {
        "id": entry.public_id,
        name: value,
        "entered_value": entry.entered_value,
        "entered_unit": entry.entered_unit,
        "measured_at": entry.measured_at,
        "source": entry.source,
    }


# The two measurement writes answer with render_json (the row just written, not validated again
# through the schema they declare; tests/api/test_rendered_answers.py validates the answers).
@router.post("/patients/{patient_id}/weights", response={201: WeightOut, **ERROR_RESPONSES})
def record_weight(request: ActorRequest, patient_id: str, payload: MeasurementIn) -> Any:
    actor = _actor(request)
    patient = selectors.patient_get_for_actor(
        actor, patient_id, only=services.MEASUREMENT_PATIENT_FIELDS
    )
    weight = services.weight_record(
        actor=actor,
        patient=patient,
        value=payload.value,
        unit=payload.unit,
        measured_at=payload.measured_at,
    )
    return render_json(_measurement_out(weight, weight.weight_kg), 201)


@router.get("/patients/{patient_id}/heights", response={200: HeightPage, **ERROR_RESPONSES})
def list_heights(request: ActorRequest, patient_id: str, page: Query[PageQuery]) -> Any:
    actor = _actor(request)
    actor.require(Cap.CLINICAL_VIEW)
    patient = selectors.patient_chart_read(actor, patient_id, action="patients.heights.read")
    heights = BodyHeight.objects.in_use().filter(patient=patient).order_by("-measured_at", "-pk")
    return _paged(request, heights, page.limit, page.offset)


@router.post("/patients/{patient_id}/heights", response={201: HeightOut, **ERROR_RESPONSES})
def record_height(request: ActorRequest, patient_id: str, payload: MeasurementIn) -> Any:
    actor = _actor(request)
    patient = selectors.patient_get_for_actor(
        actor, patient_id, only=services.MEASUREMENT_PATIENT_FIELDS
    )
    height = services.height_record(
        actor=actor,
        patient=patient,
        value=payload.value,
        unit=payload.unit,
        measured_at=payload.measured_at,
    )
    return render_json(_measurement_out(height, height.height_cm), 201)


class BloodPressureIn(Schema):
    systolic: int = Field(..., description="mm Hg")
    diastolic: int = Field(..., description="mm Hg")
    measured_at: datetime | None = None


class BloodPressureOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    systolic: Decimal = Field(..., alias="value")
    diastolic: Decimal | None = Field(..., alias="value_diastolic")
    unit: str
    measured_at: datetime
    source: str


class BloodPressurePage(Page):
    items: list[BloodPressureOut]


@router.get(
    "/patients/{patient_id}/blood-pressures",
    response={200: BloodPressurePage, **ERROR_RESPONSES},
    description="Resting blood pressures on the chart, newest first (session vitals excluded).",
)
def list_blood_pressures(request: ActorRequest, patient_id: str, page: Query[PageQuery]) -> Any:
    actor = _actor(request)
    actor.require(Cap.CLINICAL_VIEW)
    patient = selectors.patient_chart_read(actor, patient_id, action="patients.vitals.read")
    readings = (
        VitalSign.objects.in_use()
        .filter(patient=patient, kind=VitalSign.Kind.BLOOD_PRESSURE)
        .order_by("-measured_at", "-pk")
    )
    return _paged(request, readings, page.limit, page.offset)


@router.post(
    "/patients/{patient_id}/blood-pressures",
    response={201: BloodPressureOut, **ERROR_RESPONSES},
    description="Record a resting blood pressure on the chart (what screening reads).",
)
def record_blood_pressure(request: ActorRequest, patient_id: str, payload: BloodPressureIn) -> Any:
    actor = _actor(request)
    patient = selectors.patient_get_for_actor(actor, patient_id)
    return Status(
        201,
        services.resting_blood_pressure_record(
            actor=actor,
            patient=patient,
            systolic=payload.systolic,
            diastolic=payload.diastolic,
            measured_at=payload.measured_at,
        ),
    )


class MeasurementRemoveQuery(Schema):
    reason: str = Field("", max_length=500, description="Why the measurement is wrong")


def _remove_measurement(
    request: ActorRequest, model: type[ChartEntry], entry_id: str, reason: str
) -> Any:
    actor = _actor(request)
    entry = selectors.entry_get_for_actor(actor, model, entry_id, capability=Cap.CLINICAL_EDIT)
    services.entry_mark_entered_in_error(actor=actor, entry=entry, reason=reason)
    return Status(204, None)


@router.delete(
    "/weights/{entry_id}",
    response={204: None, **ERROR_RESPONSES},
    description="Marks the weight entered-in-error: kept for the record, never used for dosing.",
)
def remove_weights(
    request: ActorRequest, entry_id: str, query: Query[MeasurementRemoveQuery]
) -> Any:
    return _remove_measurement(request, BodyWeight, entry_id, query.reason)


@router.delete(
    "/heights/{entry_id}",
    response={204: None, **ERROR_RESPONSES},
    description="Marks the height entered-in-error; the chart keeps it for the record.",
)
def remove_heights(
    request: ActorRequest, entry_id: str, query: Query[MeasurementRemoveQuery]
) -> Any:
    return _remove_measurement(request, BodyHeight, entry_id, query.reason)


@router.delete(
    "/vitals/{entry_id}",
    response={204: None, **ERROR_RESPONSES},
    description="Marks a resting vital sign (e.g. a blood pressure) entered-in-error: screening "
    "no longer reads it; the chart keeps it for the record.",
)
def remove_vitals(
    request: ActorRequest, entry_id: str, query: Query[MeasurementRemoveQuery]
) -> Any:
    return _remove_measurement(request, VitalSign, entry_id, query.reason)


# --- conditions, medications, allergies ---------------------------------------------------------

ConditionStatus = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]


class ConditionIn(Schema):
    code: str = Field(..., min_length=1, max_length=20)
    code_system: str = Field("http://hl7.org/fhir/sid/icd-10-cm", max_length=100)
    display: str = Field("", max_length=255)
    clinical_status: ConditionStatus = "active"
    onset_date: date | None = None
    abatement_date: date | None = None
    note: str = Field("", max_length=5000)


class ConditionPatch(Schema):
    code: str | None = Field(None, min_length=1, max_length=20)
    display: str | None = Field(None, max_length=255)
    clinical_status: ConditionStatus | None = None
    onset_date: date | None = None
    abatement_date: date | None = None
    note: str | None = Field(None, max_length=5000)


class ConditionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    code_system: str
    code: str
    display: str
    clinical_status: str
    onset_date: date | None
    abatement_date: date | None
    note: str
    entered_in_error: bool


MedStatus = Literal["active", "completed", "stopped"]
TrialOutcome = Literal["", "response", "partial", "none", "intolerance", "unknown"]


class MedicationIn(Schema):
    drug_name: str = Field(..., min_length=1, max_length=200)
    rxnorm_code: str = Field("", max_length=20)
    dose_text: str = Field("", max_length=200)
    status: MedStatus = "active"
    start_date: date | None = None
    end_date: date | None = None
    is_antidepressant_trial: bool = False
    adequate_trial: bool | None = None
    in_current_episode: bool | None = None
    trial_outcome: TrialOutcome = ""
    note: str = Field("", max_length=5000)


class MedicationPatch(Schema):
    drug_name: str | None = Field(None, min_length=1, max_length=200)
    dose_text: str | None = Field(None, max_length=200)
    status: MedStatus | None = None
    start_date: date | None = None
    end_date: date | None = None
    adequate_trial: bool | None = None
    in_current_episode: bool | None = None
    trial_outcome: TrialOutcome | None = None
    note: str | None = Field(None, max_length=5000)


class MedicationOut(MedicationIn):
    id: uuid.UUID = Field(..., alias="public_id")
    entered_in_error: bool


class AllergyIn(Schema):
    substance: str = Field(..., min_length=1, max_length=200)
    reaction: str = Field("", max_length=255)
    severity: Literal["", "mild", "moderate", "severe"] = ""
    criticality: Literal["low", "high", "unable-to-assess"] = "low"
    clinical_status: Literal["active", "inactive", "resolved"] = "active"
    note: str = Field("", max_length=5000)


class AllergyPatch(Schema):
    substance: str | None = Field(None, min_length=1, max_length=200)
    reaction: str | None = Field(None, max_length=255)
    severity: Literal["", "mild", "moderate", "severe"] | None = None
    criticality: Literal["low", "high", "unable-to-assess"] | None = None
    clinical_status: Literal["active", "inactive", "resolved"] | None = None
    note: str | None = Field(None, max_length=5000)


class AllergyOut(AllergyIn):
    id: uuid.UUID = Field(..., alias="public_id")
    entered_in_error: bool


class EntryRemoveIn(Schema):
    reason: str = Field("", max_length=500)


def _entry_routes(
    *,
    plural: str,
    model: type[ChartEntry],
    schema_in: type[Schema],
    schema_patch: type[Schema],
    schema_out: type[Schema],
    add: Callable[..., Any],
    update: Callable[..., Any],
    update_kwarg: str,
) -> None:
    """List, create, read, update and withdraw (entered-in-error) one kind of chart entry."""

    # Built with type() because the item schema is a runtime value, not a name annotations can see.
    EntryPage = type(
        f"{schema_out.__name__}Page",
        (Page,),
        {"__annotations__": {"items": list[schema_out]}},  # type: ignore[valid-type]
    )

    def list_entries(request: ActorRequest, patient_id: str, page: Query[PageQuery]) -> Any:
        actor = _actor(request)
        actor.require(Cap.CLINICAL_VIEW)
        patient = selectors.patient_chart_read(actor, patient_id, action=f"patients.{plural}.read")
        entries = model.objects.filter(patient=patient).order_by("pk")
        return _paged(request, entries, page.limit, page.offset)

    def create_entry(request: ActorRequest, patient_id: str, payload: schema_in) -> Any:  # type: ignore[valid-type]
        actor = _actor(request)
        patient = selectors.patient_get_for_actor(actor, patient_id)
        return Status(201, add(actor=actor, patient=patient, data=cast(Schema, payload).dict()))

    def get_entry(request: ActorRequest, entry_id: str) -> Any:
        actor = _actor(request)
        entry = selectors.entry_get_for_actor(actor, model, entry_id, capability=Cap.CLINICAL_VIEW)
        from ketaclinic.accounts.audit import audit_record

        audit_record(
            actor=actor,
            action=f"patients.{plural}.read",
            patient_id=entry.patient.public_id,
            obj=entry,
        )
        return entry

    def patch_entry(request: ActorRequest, entry_id: str, payload: schema_patch) -> Any:  # type: ignore[valid-type]
        actor = _actor(request)
        entry = selectors.entry_get_for_actor(actor, model, entry_id, capability=Cap.CLINICAL_EDIT)
        data = cast(Schema, payload).dict(exclude_unset=True)
        return update(actor=actor, data=data, **{update_kwarg: entry})

    def remove_entry(request: ActorRequest, entry_id: str) -> Any:
        actor = _actor(request)
        entry = selectors.entry_get_for_actor(actor, model, entry_id, capability=Cap.CLINICAL_EDIT)
        services.entry_mark_entered_in_error(actor=actor, entry=entry)
        return Status(204, None)

    for view, verb in (
        (list_entries, "list"),
        (create_entry, "create"),
        (get_entry, "get"),
        (patch_entry, "update"),
        (remove_entry, "remove"),
    ):
        view.__name__ = f"{verb}_{plural}"

    responses = dict(ERROR_RESPONSES)
    router.get(f"/patients/{{patient_id}}/{plural}", response={200: EntryPage, **responses})(
        list_entries
    )
    router.post(f"/patients/{{patient_id}}/{plural}", response={201: schema_out, **responses})(
        create_entry
    )
    router.get(f"/{plural}/{{entry_id}}", response={200: schema_out, **responses})(get_entry)
    router.patch(f"/{plural}/{{entry_id}}", response={200: schema_out, **responses})(patch_entry)
    router.delete(
        f"/{plural}/{{entry_id}}",
        response={204: None, **responses},
        description="Marks the entry entered-in-error; the chart keeps it for the record.",
    )(remove_entry)


_entry_routes(
    plural="conditions",
    model=Condition,
    schema_in=ConditionIn,
    schema_patch=ConditionPatch,
    schema_out=ConditionOut,
    add=services.condition_add,
    update=services.condition_update,
    update_kwarg="condition",
)
_entry_routes(
    plural="medications",
    model=MedicationStatement,
    schema_in=MedicationIn,
    schema_patch=MedicationPatch,
    schema_out=MedicationOut,
    add=services.medication_add,
    update=services.medication_update,
    update_kwarg="medication",
)
_entry_routes(
    plural="allergies",
    model=Allergy,
    schema_in=AllergyIn,
    schema_patch=AllergyPatch,
    schema_out=AllergyOut,
    add=services.allergy_add,
    update=services.allergy_update,
    update_kwarg="allergy",
)

__all__ = ["router", "Patient"]
