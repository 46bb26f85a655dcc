"""JSON API for saved cohorts (mounted at /api/v1/): the clinic's FHIR Groups.

A group is the dashboard's cohort filters under a name; FHIR serves it as `Group/[id]` with its
members and exports their records with `Group/[id]/$export` (fhir/group.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse
from ninja import Field, Router, Status

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.outcomes import groups
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import PatientGroup

router = Router(tags=["outcomes"])


class GroupIn(CohortFilters):
    name: str = Field(..., max_length=120, description="Unique in the clinic")
    description: str = Field(default="", max_length=2000)


class GroupOut(CohortFilters):
    id: str
    name: str
    description: str
    cohort: str = Field(..., description="The filters in words")
    created_at: datetime
    fhir: str = Field(..., description="The FHIR Group (members) and its $export")


def _body(group: PatientGroup) -> dict[str, Any]:
    filters = groups.group_filters(group)
    return {
        **filters.model_dump(),
        "id": str(group.public_id),
        "name": group.name,
        "description": group.description,
        "cohort": ", ".join(filters.described()),
        "created_at": group.created_at,
        "fhir": reverse(
            "fhir:instance", kwargs={"resource_type": "Group", "resource_id": str(group.public_id)}
        ),
    }


@router.post(
    "/outcomes/groups", response={201: GroupOut, **ERROR_RESPONSES}, url_name="outcomes-groups"
)
def group_create(request: ActorRequest, payload: GroupIn) -> Any:
    """Save a cohort of the outcomes dashboard as a named group (a FHIR Group)."""
    data = payload.model_dump()
    name, description = data.pop("name"), data.pop("description")
    group = groups.patient_group_create(
        actor=request.auth, name=name, description=description, filters=CohortFilters(**data)
    )
    return Status(201, _body(group))


@router.get("/outcomes/groups", response={200: list[GroupOut], **ERROR_RESPONSES})
def group_list(request: ActorRequest) -> Any:
    """The clinic's saved cohorts, by name."""
    return [_body(g) for g in groups.groups_list(request.auth)]
