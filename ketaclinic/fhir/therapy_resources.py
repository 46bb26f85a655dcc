"""Therapy visits as `Encounter` and their signed progress notes as `DocumentReference`
(read and search only; therapy notes are written in the app or through the JSON API).

Psychotherapy (process) notes are never exposed: nothing here reads the PsychotherapyNote table
(45 CFR 164.501; docs/sources/therapy.md), so neither `DocumentReference` nor
`Patient/$everything` can carry one.

Encounter mapping (a therapy visit):
- id: the visit's public id (distinct from every treatment session's).
- status: finished once the time out is recorded, in-progress before.
- class: AMB (in person) or VR (virtual: video or audio only), v3-ActCode.
- type: the visit kind (preparation, dosing-session support, integration) and format
  (individual, group) in TYPE_SYSTEM; serviceType text "Ketamine-assisted psychotherapy".
- period: time in and time out; length: the minutes between them.
- partOf: the dosing session's Encounter, for dosing-session support.
- basedOn: the treatment plan, as a logical reference (as for sessions).
- participant: the therapist (display only: this server has no Practitioner resource).

DocumentReference mapping (a signed progress note; drafts are not part of the record yet):
- type: LOINC 11506-3 (progress note); category: US Core clinical-note.
- docStatus: final, or amended once an amendment exists; status current.
- context.encounter: the visit's Encounter; context.period: the visit's times.
- content: the note as text/plain (every template part, the mental status, the risk assessment,
  the narrative and each amendment with its reason), base64 in the attachment.
"""

from __future__ import annotations

import base64
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import emit, instant, meta, reference_id
from ketaclinic.fhir.encounter import PLAN_SYSTEM
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, as_uuid, date_q, patient_ids, token
from ketaclinic.therapy import notes
from ketaclinic.therapy.models import TherapyNoteAmendment, TherapyVisit

BASE = "https://ketaclinic.org/fhir/"
TYPE_SYSTEM = BASE + "CodeSystem/therapy-visit"
EXT_WITH_EM = BASE + "StructureDefinition/therapy-visit-with-em"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
CLASS_OF_MODALITY = {
    "in_person": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "video": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
    "audio": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
}
SERVICE = "Ketamine-assisted psychotherapy"


def _visits() -> QuerySet[TherapyVisit]:
    return TherapyVisit.objects.select_related(
        "patient", "therapist", "session", "plan", "signed_by"
    )


def _queryset() -> QuerySet[TherapyVisit]:
    """With the amendments, which the progress note's text carries."""
    return _visits().prefetch_related(
        Prefetch("amendments", queryset=TherapyNoteAmendment.objects.select_related("recorded_by"))
    )


# --- Encounter ----------------------------------------------------------------------------


def encounter_to_fhir(visit: TherapyVisit) -> dict[str, Any]:
    kind = notes.VisitKind(visit.kind)
    period: dict[str, Any] = {"start": instant(visit.started_at)}
    data: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(visit.public_id),
        "meta": meta(visit),
        "status": "finished" if visit.ended_at else "in-progress",
        "class": CLASS_OF_MODALITY[visit.modality],
        "type": [
            {
                "coding": [{"system": TYPE_SYSTEM, "code": kind.value, "display": kind.label}],
                "text": kind.label,
            },
            {
                "coding": [
                    {
                        "system": TYPE_SYSTEM,
                        "code": visit.format,
                        "display": visit.get_format_display(),
                    }
                ]
            },
        ],
        "serviceType": {"text": SERVICE},
        "subject": {"reference": f"Patient/{visit.patient.public_id}"},
        "participant": [{"individual": {"display": visit.therapist.display_name}}],
        "period": period,
        "extension": [{"url": EXT_WITH_EM, "valueBoolean": visit.with_em}],
    }
    if visit.ended_at:
        period["end"] = instant(visit.ended_at)
        minutes = int((visit.ended_at - visit.started_at).total_seconds() // 60)
        data["length"] = {
            "value": minutes,
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        }
    if visit.session is not None:
        data["partOf"] = {"reference": f"Encounter/{visit.session.public_id}"}
    if visit.plan is not None:
        data["basedOn"] = [
            {"identifier": {"system": PLAN_SYSTEM, "value": str(visit.plan.public_id)}}
        ]
    return emit(data)


def encounter_read(actor: Actor, resource_id: str) -> TherapyVisit | None:
    """The therapy visit with this id, or None (then the id may be a treatment session's)."""
    if not actor.can(Cap.THERAPY_VIEW):
        return None
    key = as_uuid(resource_id)
    return _visits().filter(public_id=key).first() if key else None


def encounter_search(actor: Actor, items: list[tuple[str, list[str]]]) -> QuerySet | None:
    """Therapy visits matching an Encounter search; None when the search cannot match one."""
    if not actor.can(Cap.THERAPY_VIEW):
        return None
    queryset = _visits()
    for name, values in items:
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "status":
            wanted = {token(v)[1] for v in values}
            q = Q(pk__in=[])
            if "finished" in wanted:
                q |= Q(ended_at__isnull=False)
            if "in-progress" in wanted:
                q |= Q(ended_at__isnull=True)
            queryset = queryset.filter(q)
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("started_at", v)))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    return queryset


# --- DocumentReference ----------------------------------------------------------------------


def _note_text(visit: TherapyVisit) -> str:
    lines = [f"{notes.VisitKind(visit.kind).label} visit, {visit.therapist.display_name}"]
    for field in notes.template_for(visit.kind):
        value = visit.content.get(field.key)
        if field.key == "post_session_checklist":
            labels = dict(notes.POST_SESSION_CHECKLIST)
            value = "; ".join(labels.get(k, k) for k in value or []) or None
        lines.append(f"{field.label}: {value or '-'}")
    for field in notes.MENTAL_STATUS:
        lines.append(f"{field.label}: {visit.mental_status.get(field.key) or '-'}")
    risk = notes.RiskLevel(visit.risk_level).label if visit.risk_level else "-"
    lines.append(
        f"Risk assessment: {risk}" + (f" ({visit.risk_notes})" if visit.risk_notes else "")
    )
    lines.append(f"Narrative: {visit.narrative}")
    for amendment in visit.amendments.all():
        lines.append(
            f"Amendment {instant(amendment.signed_at)} by {amendment.recorded_by.display_name}"
            f" (reason: {amendment.reason}): {amendment.text}"
        )
    return "\n".join(lines)


def document_to_fhir(visit: TherapyVisit) -> dict[str, Any]:
    amended = bool(visit.amendments.all())
    period = {"start": instant(visit.started_at)}
    if visit.ended_at:
        period["end"] = instant(visit.ended_at)
    text = _note_text(visit)
    return emit(
        {
            "resourceType": "DocumentReference",
            "id": str(visit.public_id),
            "meta": meta(visit),
            "status": "current",
            "docStatus": "amended" if amended else "final",
            "type": {
                "coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}],
                "text": f"{notes.VisitKind(visit.kind).label} progress note",
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                            "code": "clinical-note",
                            "display": "Clinical Note",
                        }
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{visit.patient.public_id}"},
            "date": instant(visit.signed_at),  # type: ignore[arg-type]
            "author": [{"display": visit.signed_by.display_name}],  # type: ignore[union-attr]
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "en",
                        "data": base64.b64encode(text.encode()).decode(),
                        "title": f"{notes.VisitKind(visit.kind).label} progress note",
                        "creation": instant(visit.signed_at),  # type: ignore[arg-type]
                    }
                }
            ],
            "context": {
                "encounter": [{"reference": f"Encounter/{visit.public_id}"}],
                "period": period,
            },
        }
    )


def document_read(actor: Actor, resource_id: str) -> TherapyVisit:
    actor.require(Cap.THERAPY_VIEW)
    key = as_uuid(resource_id)
    visit = _queryset().filter(public_id=key, signed_at__isnull=False).first() if key else None
    if visit is None:
        raise NotFound("No such DocumentReference.")
    return visit


def document_search(actor: Actor, items: list[tuple[str, list[str]]], sort: str) -> QuerySet:
    actor.require(Cap.THERAPY_VIEW)
    queryset = _queryset().filter(signed_at__isnull=False)
    for name, values in items:
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "encounter":
            ids = [as_uuid(reference_id(v, "Encounter") or v) for v in values]
            queryset = queryset.filter(public_id__in=[k for k in ids if k])
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("signed_at", v)))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    prefix = "" if sort == "date" else "-"
    return queryset.order_by(f"{prefix}signed_at", f"{prefix}pk")
