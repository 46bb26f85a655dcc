"""Saved cohorts (`PatientGroup`): the outcomes dashboard's filters under a name, the clinic's
FHIR Groups. A write (`patient_group_create`) and the reads the FHIR Group resource and its
`$export` need; kept apart from the dashboard's selectors, which only compute aggregates.

Members are the patients `selectors.cohort_members` selects with the group's filters when the
group is read or exported: the same definition of the cohort as the dashboard's, never a second
copy of it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound, ValidationFailed
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import PatientGroup


def patient_group_create(
    *, actor: Actor, name: str, filters: CohortFilters, description: str = ""
) -> PatientGroup:
    """Save a cohort under a name (unique in the clinic). Its members are identified patients, so
    it takes the patient list as well as the outcomes dashboard."""
    actor.require(Cap.OUTCOMES_ANALYZE)
    actor.require(Cap.PATIENT_LIST)
    name = name.strip()
    if not name:
        raise ValidationFailed.for_field("name", "Give the group a name.")
    if PatientGroup.objects.filter(name=name).exists():
        raise ValidationFailed.for_field("name", f"A group named {name!r} already exists.")
    try:
        with transaction.atomic():
            group = PatientGroup.objects.create(
                organization=actor.organization,
                name=name,
                description=description.strip(),
                filters=filters.model_dump(mode="json"),
                created_by=actor.user,
            )
            audit_record(
                actor=actor,
                action="outcomes.group.created",
                obj=group,
                detail={"name": name, "cohort": ", ".join(filters.described())},
            )
    except IntegrityError:  # the same name saved a moment ago by someone else
        raise ValidationFailed.for_field(
            "name", f"A group named {name!r} already exists."
        ) from None
    return group


def group_filters(group: PatientGroup) -> CohortFilters:
    return CohortFilters(**group.filters)


def group_get(actor: Actor, public_id: Any) -> PatientGroup:
    """A group of the actor's organization (404 otherwise). Reading who is in a group is reading
    identified clinical facts (their treatment, their diagnoses)."""
    actor.require(Cap.CLINICAL_VIEW)
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    group = PatientGroup.objects.filter(public_id=key).first() if key else None
    if group is None:
        raise NotFound("No such group.")
    return group


def groups_list(actor: Actor) -> list[PatientGroup]:
    actor.require(Cap.CLINICAL_VIEW)
    return list(PatientGroup.objects.select_related("created_by").order_by("name", "pk"))


def group_member_keys(group: PatientGroup) -> list[int]:
    """The members' internal keys, ascending (never shown; FHIR names them by public id)."""
    from ketaclinic.outcomes.selectors import cohort_members

    return sorted(member.patient_key for member in cohort_members(group_filters(group)))
