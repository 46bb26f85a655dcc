"""Reads of the patient chart. Each runs inside the request's organization scope (django-scopes);
another organization's patient is indistinguishable from a missing one (404), and the attempt is
recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

from django.db.models import Q, QuerySet, Subquery

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import rows
from ketaclinic.core.errors import NotFound
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
from ketaclinic.patients.units import body_mass_index

CHART_RECENT_WEIGHTS = 10
CHART_RECENT_VITALS = 12

Entry = TypeVar("Entry", bound=ChartEntry)


def _as_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def patient_get_for_actor(
    actor: Actor,
    public_id: str | uuid.UUID,
    *,
    capability: Cap = Cap.PATIENT_VIEW,
    only: tuple[str, ...] = (),
) -> Patient:
    """The patient, if the actor's organization has it and the role may see it; else 404/403.
    `only`: the fields the caller reads (as `QuerySet.only`; any other costs a query)."""
    actor.require(capability)
    key = _as_uuid(public_id)
    # One row by its unique key in the tenant scope, without compiling the query (core.rows).
    patient = rows.one(Patient, public_id=key, only=only) if key else None
    if patient is None:
        audit_record(
            actor=actor,
            action="patients.patient.lookup_denied",
            outcome="denied",
            detail={"requested": str(public_id)[:64]},
        )
        raise NotFound("No such patient.")
    from ketaclinic.patients.access import assignment_check

    assignment_check(actor, patient)
    return patient


def patient_chart_read(actor: Actor, public_id: str | uuid.UUID, *, action: str) -> Patient:
    """Look the patient up and record one read of their record for this request."""
    patient = patient_get_for_actor(actor, public_id)
    audit_record(actor=actor, action=action, patient_id=patient.public_id, obj=patient)
    return patient


def entry_get_for_actor(
    actor: Actor, model: type[Entry], public_id: str | uuid.UUID, *, capability: Cap
) -> Entry:
    actor.require(capability)
    key = _as_uuid(public_id)
    entry = model.objects.select_related("patient").filter(public_id=key).first() if key else None
    if entry is None:
        raise NotFound(f"No such {model._meta.verbose_name}.")
    return entry


def patient_search(
    *, query: str = "", birth_date: date | None = None, include_inactive: bool = False
) -> QuerySet[Patient]:
    """Patients matching a name fragment, an MRN or a birth date, in the current scope."""
    patients = Patient.objects.all()
    if not include_inactive:
        patients = patients.filter(is_active=True)
    for term in query.split()[:4]:
        patients = patients.filter(
            Q(family_name__icontains=term) | Q(given_name__icontains=term) | Q(mrn__iexact=term)
        )
    if birth_date is not None:
        patients = patients.filter(birth_date=birth_date)
    return patients.order_by("family_name", "given_name", "pk")


@dataclass(frozen=True)
class ChartSummary:
    patient: Patient
    weights: list[BodyWeight]
    latest_height: BodyHeight | None
    conditions: list[Condition]
    medications: list[MedicationStatement]
    allergies: list[Allergy]
    vitals: list[VitalSign]

    @property
    def latest_weight(self) -> BodyWeight | None:
        return self.weights[0] if self.weights else None

    @property
    def bmi(self) -> Decimal | None:
        if self.latest_weight and self.latest_height:
            return body_mass_index(self.latest_weight.weight_kg, self.latest_height.height_cm)
        return None

    @property
    def antidepressant_trials(self) -> list[MedicationStatement]:
        return [m for m in self.medications if m.is_antidepressant_trial]


def chart_summary(patient: Patient) -> ChartSummary:
    """Everything the chart's summary shows, in a fixed number of queries whatever the history.

    Entries marked entered-in-error are left out: the latest weight shown is the one dosing uses.
    """
    # The latest height rides on the weights' query (one query for both when any weight is
    # recorded); a chart with heights but no weight reads it on its own.
    heights = BodyHeight.objects.in_use().filter(patient=patient).order_by("-measured_at")
    latest = heights.values("public_id", "height_cm", "measured_at")[:1]
    weights = list(
        BodyWeight.objects.in_use()
        .filter(patient=patient)
        .annotate(
            height_public_id=Subquery(latest.values("public_id")),
            height_cm=Subquery(latest.values("height_cm")),
            height_measured_at=Subquery(latest.values("measured_at")),
        )
        .order_by("-measured_at")[:CHART_RECENT_WEIGHTS]
    )
    latest_height: BodyHeight | None = None
    if not weights:
        latest_height = heights.first()
    elif weights[0].height_public_id is not None:
        first = weights[0]
        latest_height = BodyHeight(
            organization_id=patient.organization_id,
            patient=patient,
            public_id=first.height_public_id,
            # As the column reads back through its own field (one decimal place).
            height_cm=Decimal(first.height_cm).quantize(Decimal("0.1")),
            measured_at=first.height_measured_at,
        )
    conditions = list(Condition.objects.in_use().filter(patient=patient))
    medications = list(MedicationStatement.objects.in_use().filter(patient=patient))
    allergies = list(Allergy.objects.in_use().filter(patient=patient))
    vitals = list(
        VitalSign.objects.in_use()
        .filter(patient=patient)
        .order_by("-measured_at", "-pk")[:CHART_RECENT_VITALS]
    )
    return ChartSummary(patient, weights, latest_height, conditions, medications, allergies, vitals)
