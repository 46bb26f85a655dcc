"""Reads of protocols, plans and the safety policy (inside the request's organization scope)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import ProtocolVersion, SafetyPolicyVersion, TreatmentPlan
from ketaclinic.sessions.policy import DEFAULT_POLICY, SessionSafetyPolicy


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def protocol_versions() -> QuerySet[ProtocolVersion]:
    return ProtocolVersion.objects.order_by("protocol_id", "-version")


def protocol_published(protocol_id: str) -> ProtocolVersion | None:
    """The newest published version of a protocol."""
    return (
        ProtocolVersion.objects.filter(protocol_id=protocol_id, status="published")
        .order_by("-version")
        .first()
    )


def protocol_get(actor: Actor, public_id: object) -> ProtocolVersion:
    actor.require(Cap.PATIENT_LIST)
    key = _uuid(public_id)
    protocol = ProtocolVersion.objects.filter(public_id=key).first() if key else None
    if protocol is None:
        raise NotFound("No such protocol version.")
    return protocol


def safety_policy_current(
    organization: Organization,
) -> tuple[SafetyPolicyVersion | None, SessionSafetyPolicy]:
    """The organization's latest published policy, or the cited defaults when none is stored."""
    row = SafetyPolicyVersion.objects.filter(organization=organization).order_by("-version").first()
    return (row, row.policy) if row else (None, DEFAULT_POLICY)


def plan_get(
    actor: Actor, public_id: object, *, capability: Cap = Cap.CLINICAL_VIEW
) -> TreatmentPlan:
    actor.require(capability)
    key = _uuid(public_id)
    plan = (
        TreatmentPlan.objects.select_related("patient", "protocol", "prescriber")
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if plan is None:
        raise NotFound("No such treatment plan.")
    return plan


def plans_for_patient(patient: Patient) -> list[TreatmentPlan]:
    return list(
        TreatmentPlan.objects.filter(patient=patient)
        .select_related("protocol", "prescriber")
        .order_by("-start_date", "-pk")
    )
