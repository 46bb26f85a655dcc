"""AuditEvent (read and search only) <- the organization's hash-chained audit trail.

For compliance reviewers and their tools: the same events, filters and capability (audit.view) as
the staff audit screen and `GET /api/v1/audit-events`. Reading or searching the trail is itself
recorded in it. Nothing here writes an event on a client's behalf: the trail records what the
application did, so AuditEvent create is not offered.

Mapping (R4):
- id: the event's id, given when it is written (stable, never reused); its place in the chain
  (seq) is a detail of the chain-link entity once the worker has sealed it.
- type: the event's action name, coded in ACTION_SYSTEM (the binding is extensible; our action
  names have no standard equivalent). action: "R" for reads, searches, views and downloads;
  other actions carry no C/R/U/D/E guess.
- recorded: when it happened (UTC). outcome: 0 success, 4 denied (minor failure), 8 failed
  (serious failure), with outcomeDesc naming ours.
- agent: the user (user name; role as agent.role text; client address as network type 2, an IP
  address) or, for events without a user, the application itself (requestor false).
- source.observer: this server, with the channel (ui, api, fhir, cli, admin, portal) as site.
- entity: the patient (Patient reference, role 1 Patient) when there is one; the object acted on
  (type and public id); and the chain link, whose details carry the event's hash and the
  previous event's hash so a reviewer can check the chain outside this server.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit_query import audit_event_get, audit_events_of
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import emit, instant
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, date_q, patient_ids

BASE = "https://ketaclinic.org/fhir/"
ACTION_SYSTEM = BASE + "CodeSystem/audit-action"
CHAIN_SYSTEM = BASE + "CodeSystem/audit-chain"
OUTCOME_CODE = {"success": "0", "denied": "4", "failed": "8"}
OUTCOME_OF_CODE = {code: ours for ours, code in OUTCOME_CODE.items()}
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
READ_SUFFIXES = (".read", ".viewed", ".searched", ".downloaded", ".exported", ".listed")


def to_fhir(event: AuditEvent) -> dict[str, Any]:
    agent: dict[str, Any]
    if event.actor_username:
        agent = {
            "who": {
                "identifier": {"system": BASE + "user", "value": event.actor_username},
                "display": event.actor_username,
            },
            "requestor": True,
        }
        if event.role:
            agent["role"] = [{"text": event.role}]
    else:
        agent = {"who": {"display": "ketaclinic"}, "requestor": False}
    if event.client_address:
        agent["network"] = {"address": event.client_address, "type": "2"}
    entities: list[dict[str, Any]] = []
    if event.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if event.object_type:
        entities.append(
            {
                "what": {"identifier": {"value": event.object_id or "-"}},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "name": event.object_type,
            }
        )
    entities.append(
        {
            "type": {"system": CHAIN_SYSTEM, "code": "chain-link"},
            # An event the worker has not sealed yet has no place or hash in the chain yet.
            "detail": [
                {"type": "seq", "valueString": str(event.seq)},
                {"type": "hash", "valueString": event.hash},
                {"type": "prev_hash", "valueString": event.prev_hash},
            ]
            if event.seq
            else [{"type": "seq", "valueString": "unsealed"}],
        }
    )
    data: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.pk),
        "type": {"system": ACTION_SYSTEM, "code": event.action, "display": event.action},
        "recorded": instant(event.occurred_at),
        "outcome": OUTCOME_CODE.get(event.outcome, "8"),
        "outcomeDesc": event.outcome,
        "agent": [agent],
        "source": {
            "observer": {"display": "ketaclinic"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
            **({"site": event.channel} if event.channel else {}),
        },
        "entity": entities,
    }
    if event.action.endswith(READ_SUFFIXES):
        data["action"] = "R"
    return emit(data)


def read(actor: Actor, resource_id: str) -> AuditEvent:
    actor.require(Cap.AUDIT_VIEW)
    event = audit_event_get(actor.organization, int(resource_id)) if resource_id.isdigit() else None
    if event is None:
        raise NotFound("No such AuditEvent.")
    return event


def _outcome_q(value: str) -> Q:
    code = value.split("|")[-1]
    if code not in OUTCOME_OF_CODE:
        raise FhirError(400, "outcome: use 0 (success), 4 (denied) or 8 (failed).")
    return Q(outcome=OUTCOME_OF_CODE[code])


def _type_q(value: str) -> Q:
    system, _, code = value.rpartition("|")
    if system and system != ACTION_SYSTEM:
        return Q(pk__in=[])
    return Q(action=code)


def search(actor: Actor, items: list[tuple[str, list[str]]], sort: str) -> QuerySet[AuditEvent]:
    actor.require(Cap.AUDIT_VIEW)
    queryset = audit_events_of(actor.organization)
    for name, values in items:
        if name == "_id":
            queryset = queryset.filter(pk__in=[int(v) for v in values if v.isdigit()])
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("occurred_at", v)))
        elif name in ("patient", "entity"):
            queryset = queryset.filter(patient_id__in=patient_ids(values))
        elif name == "agent-name":
            queryset = queryset.filter(actor_username__in=values)
        elif name == "type":
            queryset = queryset.filter(any_of(values, _type_q))
        elif name == "outcome":
            queryset = queryset.filter(any_of(values, _outcome_q))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    prefix = "" if sort == "date" else "-"
    return queryset.order_by(f"{prefix}occurred_at", f"{prefix}id")
