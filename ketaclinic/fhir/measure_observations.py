"""Observations derived from scored QuestionnaireResponses (category `survey`).

Nothing is stored for them: each is computed from the response row, so it can never disagree with
the score. Per response:
- the total, where clinical-reference §5.2 gives the instrument a LOINC total code (the definition's
  `loinc.total`: PHQ-9 44261-6, GAD-7 70274-6, PHQ-2 55758-7, AUDIT-C 75626-2, PEG 91147-9,
  DAST-10 82667-7), with `derivedFrom` the QuestionnaireResponse and `hasMember` the items;
- one per answered item that has a LOINC item code (PHQ-9, PHQ-2, GAD-7, AUDIT-C items 2-3).

Ids are "<response id>.total" and "<response id>.<item link id>". A response that was corrected
is left out of search (its correction replaces it) but can still be read, as entered-in-error.

`union_parts` gives the Observation search one values queryset per observation kind, the same
(measured_at, src, pk) shape as the vital-sign tables, so the search stays one union query plus
one load query however many responses match.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, F, Q, QuerySet, Value

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import shapes
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import instant, meta
from ketaclinic.fhir.questionnaires import answer_coding
from ketaclinic.fhir.search import SearchRequest, any_of, as_uuid, date_q, patient_keys, token
from ketaclinic.measures.definitions import LOINC_SYSTEM, Instrument, current_instruments
from ketaclinic.measures.definitions import get_instrument as definition
from ketaclinic.measures.models import QuestionnaireResponse

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
SURVEY = {
    "coding": [{"system": CATEGORY_SYSTEM, "code": "survey", "display": "Survey"}],
    "text": "Survey",
}
UCUM = "http://unitsofmeasure.org"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SRC_PREFIX = "q:"
TOTAL = "total"


@dataclass(frozen=True)
class DerivedObservation:
    response: QuestionnaireResponse
    part: str  # "total" or an item link id

    @property
    def patient(self) -> Any:
        return self.response.patient


def observation_parts(instrument: Instrument) -> tuple[tuple[str, str], ...]:
    """(part, LOINC code) of every Observation a response to this instrument yields."""
    # Kept per definition (immutable, loaded once): each survey Observation of a search page
    # asked for them twice, a walk over every item's codings each time.
    kept = _parts.get(id(instrument))
    if kept is None or kept[0] is not instrument:
        parts = [(TOTAL, instrument.loinc.total)] if instrument.loinc.total else []
        for item in instrument.items:
            code = item.loinc_code()
            if code:
                parts.append((item.link_id, code))
        kept = _parts[id(instrument)] = (instrument, tuple(parts))
    return kept[1]


_parts: dict[int, tuple[Instrument, tuple[tuple[str, str], ...]]] = {}


def supported_codes() -> list[str]:
    return sorted({code for i in current_instruments() for _, code in observation_parts(i)})


def observation_id(response: QuestionnaireResponse, part: str) -> str:
    return f"{response.public_id}.{part}"


def _has_part(response: QuestionnaireResponse, part: str) -> bool:
    instrument = definition(response.instrument_id, response.instrument_version)
    if part not in dict(observation_parts(instrument)):
        return False
    return response.score is not None if part == TOTAL else part in response.answers


def read(actor: Actor, resource_id: str) -> DerivedObservation:
    actor.require(Cap.MEASURE_VIEW)
    key, _, part = resource_id.partition(".")
    uuid = as_uuid(key)
    response = (
        QuestionnaireResponse.objects.select_related("patient").filter(public_id=uuid).first()
        if uuid
        else None
    )
    if response is None or not _has_part(response, part):
        raise NotFound("No such Observation.")
    return DerivedObservation(response, part)


# --- search -------------------------------------------------------------------------------


def _wanted_parts(search: SearchRequest) -> dict[str, set[str]] | None:
    """Per part, the instruments whose Observations the search may return (None: none at all)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for instrument in current_instruments():
        for part, _ in observation_parts(instrument):
            wanted[part].add(instrument.id)
    for name, values in search.items():
        if name == "category" and not any(token(v)[1] == "survey" for v in values):
            return None
        if name == "identifier":
            return None  # derived Observations carry no identifier
        if name == "value-quantity":
            return None  # scores are searched by code and date (fhir/quantity.py)
        if name == "code":
            codes = set()
            for value in values:
                system, code = token(value)
                if system in (None, "", LOINC_SYSTEM):
                    codes.add(code)
            narrowed: dict[str, set[str]] = defaultdict(set)
            for instrument in current_instruments():
                for part, code in observation_parts(instrument):
                    if code in codes and instrument.id in wanted.get(part, ()):
                        narrowed[part].add(instrument.id)
            wanted = narrowed
    return wanted or None


def union_parts(actor: Actor, search: SearchRequest) -> list[QuerySet]:
    """Values querysets (measured_at, src, pk) for the search's survey Observations."""
    if not actor.can(Cap.MEASURE_VIEW):
        return []
    wanted = _wanted_parts(search)
    if wanted is None:
        return []
    common = Q(corrected_by__isnull=True)
    ids: dict[str, list[Any]] | None = None
    for name, values in search.items():
        if name in ("patient", "subject"):
            common &= Q(patient_id__in=patient_keys(search, values))
        elif name == "date":
            common &= any_of(values, lambda v: date_q("completed_at", v))
        elif name == "_lastUpdated":
            common &= any_of(values, lambda v: date_q("updated_at", v))
        elif name == "_id":
            ids = defaultdict(list)
            for value in values:
                key, _, part = value.partition(".")
                if (uuid := as_uuid(key)) and part:
                    ids[part].append(uuid)
    parts = []
    base = QuestionnaireResponse.objects.filter(common).order_by()  # filtered once, then cloned
    for part, instrument_ids in sorted(wanted.items()):
        q = Q(instrument_id__in=sorted(instrument_ids))
        q &= Q(total__isnull=False) if part == TOTAL else Q(answers__has_key=part)
        if ids is not None:
            if part not in ids:
                continue
            q &= Q(public_id__in=ids[part])
        parts.append(
            base.filter(q)
            .annotate(
                measured_at=F("completed_at"),
                src=Value(SRC_PREFIX + part, output_field=CharField()),
            )
            .values_list("measured_at", "src", "pk")
        )
    return parts


def load(keys: list[tuple[Any, str, int]]) -> dict[tuple[str, int], DerivedObservation]:
    """The DerivedObservations for the (measured_at, src, pk) keys of a page, in one query."""
    pks = {pk for _, src, pk in keys if src.startswith(SRC_PREFIX)}
    if not pks:
        return {}
    responses = {
        r.pk: r
        for r in shapes.rows_in(
            "survey-observation-page",
            lambda: QuestionnaireResponse.objects.select_related("patient"),
            "pk",
            pks,
        )
    }
    return {
        (src, pk): DerivedObservation(responses[pk], src.removeprefix(SRC_PREFIX))
        for _, src, pk in keys
        if src.startswith(SRC_PREFIX) and pk in responses
    }


# --- to FHIR ------------------------------------------------------------------------------


def to_fhir(obs: DerivedObservation, *, superseded: bool = False) -> dict[str, Any]:
    response, part = obs.response, obs.part
    instrument = definition(response.instrument_id, response.instrument_version)
    codes = dict(observation_parts(instrument))
    status = "corrected" if response.corrects_id else "final"
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(response, part),
        "meta": meta(response),
        "status": "entered-in-error" if superseded else status,
        "category": [SURVEY],
        "subject": {"reference": f"Patient/{response.patient.public_id}"},
        "effectiveDateTime": instant(response.completed_at),
        "issued": instant(response.created_at),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response.public_id}"}],
    }
    if part == TOTAL:
        display = f"{instrument.short_title} total score"
        data["code"] = {
            "coding": [{"system": LOINC_SYSTEM, "code": codes[TOTAL], "display": display}],
            "text": display,
        }
        data["valueQuantity"] = {
            "value": float(response.score),  # type: ignore[arg-type]
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        }
        if response.severity_label:
            data["interpretation"] = [{"text": response.severity_label}]
        data["method"] = {"text": f"Scored by {response.rule} ({instrument.scoring.source})"[:500]}
        members = [
            {"reference": f"Observation/{observation_id(response, p)}"}
            for p, _ in observation_parts(instrument)
            if p != TOTAL and p in response.answers
        ]
        if members:
            data["hasMember"] = members
        return data
    item = instrument.item(part)
    data["code"] = {
        "coding": [{"system": LOINC_SYSTEM, "code": codes[part], "display": item.label("en")}],
        "text": item.label("en"),
    }
    value = response.answers.get(part)
    if value is None:
        data["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "asked-declined"}]}
    else:
        option = next(o for o in item.options if o.value == int(value))
        data["valueCodeableConcept"] = {
            "coding": [answer_coding(instrument, option)],
            "text": option.label("en"),
        }
    return data


def is_superseded(response: QuestionnaireResponse) -> bool:
    return QuestionnaireResponse.objects.filter(corrects=response).exists()
