"""Group <-> outcomes.PatientGroup: a saved cohort of the outcomes dashboard.

ketaclinic keeps no hand-made patient lists; the groups a clinic names are its cohorts ("IV
ketamine, TRD met, first dose in 2026"), saved from the dashboard's filters. Each is a Group of
type person, `actual` true: its `member`s are the patients the filters select when it is read
(`outcomes.groups.group_member_keys`, the dashboard's own definition), `quantity` their number,
and each filter a `characteristic` (code from the ketaclinic CodeSystem cohort-filter, value as
text, exclude false). R4 Group has no description element: the description stays in the JSON
API. Read and search only (groups are created through `POST /api/v1/outcomes/groups`); a search
returns each group without its members (meta.tag SUBSETTED: counting members runs the cohort),
a read returns them. `Group/[id]/$export` exports the members' records (fhir/bulk_export.py).
Reading a group is reading identified clinical facts: clinical view, audited.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.fhir.common import emit, meta
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import Handler, Page
from ketaclinic.fhir.search import SearchRequest, as_uuid
from ketaclinic.outcomes import groups
from ketaclinic.outcomes.filters import INSTRUMENTS
from ketaclinic.outcomes.models import PatientGroup
from ketaclinic.patients.models import Patient

FILTER_SYSTEM = "https://ketaclinic.org/fhir/CodeSystem/cohort-filter"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
FILTER_LABELS = {
    "route": "Route of the first dose",
    "protocol": "Protocol",
    "phase": "Treatment-plan phase",
    "condition": "Condition (ICD-10-CM code or prefix)",
    "trd": "Treatment-resistant depression",
    "age_band": "Age band at the first dose",
    "first_dose_from": "First dose on or after",
    "first_dose_to": "First dose on or before",
}


def _characteristics(group: PatientGroup) -> list[dict[str, Any]]:
    filters = groups.group_filters(group).model_dump(mode="json")
    found = []
    for key, label in FILTER_LABELS.items():
        value = filters.get(key)
        if value in (None, ""):
            continue
        found.append(
            {
                "code": {"coding": [{"system": FILTER_SYSTEM, "code": key, "display": label}]},
                "valueCodeableConcept": {"text": str(value).replace("_", " ")},
                "exclude": False,
            }
        )
    return found


def _member_ids(keys: list[int]) -> list[str]:
    """Public ids of the member keys, in key order (one pass over the clinic's patients: a
    cohort of 100,000 would not fit in one IN list)."""
    wanted = set(keys)
    return [
        str(public_id)
        for pk, public_id in Patient.objects.order_by("pk").values_list("pk", "public_id")
        if pk in wanted
    ]


def group_to_fhir(group: PatientGroup, member_ids: list[str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Group",
        "id": str(group.public_id),
        "meta": meta(group),
        "active": True,
        "type": "person",
        "actual": True,
        "code": {
            "text": f"Outcomes cohort ({INSTRUMENTS.get(group.filters.get('instrument'), '')})"
        },
        "name": group.name,
        "characteristic": _characteristics(group),
    }
    if member_ids is None:
        data["meta"]["tag"] = [SUBSETTED]
    else:
        data["quantity"] = len(member_ids)
        data["member"] = [{"entity": {"reference": f"Patient/{i}"}} for i in member_ids]
    return emit(data)


class GroupHandler(Handler):
    def to_fhir(self, obj: PatientGroup) -> dict[str, Any]:
        return group_to_fhir(obj, _member_ids(groups.group_member_keys(obj)))

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        group = groups.group_get(actor, resource_id)
        audit_record(actor=actor, action="fhir.group.read", obj=group)
        return self.to_fhir(group)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        rows = groups.groups_list(actor)
        for name, values in search.items():
            if name == "_id":
                keys = {str(k) for v in values if (k := as_uuid(v))}
                rows = [g for g in rows if str(g.public_id) in keys]
            elif name == "name":
                rows = [g for g in rows if any(v.lower() in g.name.lower() for v in values)]
            else:
                raise FhirError(400, f"Unsupported search parameter {name!r}.")
        page = rows[search.window()] if search.count else []
        search.more = len(page) > search.count
        page = page[: search.count]
        return Page(
            search.page_total(len(page), lambda: len(rows)) if search.count else len(rows),
            [group_to_fhir(g, None) for g in page],
            [],
        )


GROUP_HANDLERS: dict[str, Handler] = {
    "Group": GroupHandler(
        type="Group",
        interactions=("read", "search-type"),
        search_params={"_id": "token", "name": "string"},
        patient_record=False,
        documentation={
            "name": "part of the group's name, case ignored",
            "_id": "a saved outcomes cohort; read lists its members (the patients its filters "
            "select now), search leaves them out (meta.tag SUBSETTED)",
        },
    )
}
