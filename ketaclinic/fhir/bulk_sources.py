"""Where each exported type's resources come from, a chunk of patients at a time (each source
yields resources as sent: emitted, not yet overlaid with kept JSON).

A `Chunk` is a set of patients (a key range, or a Group's members) with what several types need
prefetched once for it: the patients' references, their treatment sessions, the Condition each
treatment is for. Each source reads its table(s) for the chunk as plain rows (`bulk_rows.Lean`)
with a fixed number of queries, whatever the chunk holds, and hands each row to the type's own
mapper, so a line of the export is exactly what a read or search of that resource returns. The
clinic's received JSON is laid over its rows where kept (`received.overlay`, one query per type
and chunk), and resources kept only as received (`StoredResource`, generic) follow.

Types with few rows per patient and heavy relations (consents, therapy visits and their signed
notes) are read through their own querysets for the chunk, as model instances. A type with no
source here (one added later) falls back to its handler's search by the chunk's patient ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from django.db import connections
from django.db.models import F, Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir import (
    adverse_event,
    consent_resource,
    encounter,
    indication,
    mappers,
    measure_observations,
    medication_administration,
    observations,
    questionnaires,
    received,
    session_vitals,
    therapy_resources,
)
from ketaclinic.fhir.bulk_rows import All, AnyOf, Lean
from ketaclinic.fhir.common import emit_as_built
from ketaclinic.fhir.history import not_deleted_q
from ketaclinic.fhir.models import StoredResource
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    Condition,
    CorrectableQuerySet,
    MedicationStatement,
    Patient,
    VitalSign,
)
from ketaclinic.protocols.models import ProtocolVersion, TreatmentPlan
from ketaclinic.sessions.models import (
    AdverseEvent,
    DoseAdministration,
    DoseOrder,
    SessionTransition,
    TreatmentSession,
    VitalsEntry,
)

Resource = dict[str, Any]


class PatientRef(NamedTuple):
    public_id: str
    full_name: str


class Ref(NamedTuple):
    """A related row a mapper names by public id (a plan, an order, a session)."""

    public_id: str
    patient: PatientRef | None = None


class Named(NamedTuple):
    """A related row a mapper names by its title, name or display name."""

    title: str = ""
    name: str = ""
    display_name: str = ""


LEAN_PATIENT = Lean(Patient)
BY_SESSION = frozenset({SessionTransition, VitalsEntry, DoseOrder})  # no patient of their own
LEAN_STORED = Lean(StoredResource)


@dataclass
class Export:
    """What every chunk of one export shares: who asks and the clinic's small tables."""

    actor: Actor
    users: dict[int, Named] = field(default_factory=dict)
    protocols: dict[int, Named] = field(default_factory=dict)
    clinics: dict[int, Named] = field(default_factory=dict)

    @classmethod
    def start(cls, actor: Actor) -> Export:
        users = {
            pk: Named(display_name=(f"{first} {last}".strip() or username))
            for pk, first, last, username in User.objects.filter(
                memberships__organization=actor.organization
            ).values_list("pk", "first_name", "last_name", "username")
        }
        return cls(
            actor=actor,
            users=users,
            protocols={
                pk: Named(title=title)
                for pk, title in ProtocolVersion.objects.filter(
                    organization=actor.organization
                ).values_list("pk", "title")
            },
            clinics={
                pk: Named(name=name)
                for pk, name in Clinic.objects.filter(organization=actor.organization).values_list(
                    "pk", "name"
                )
            },
        )

    def other(self, model: Any, pk: int) -> Named:
        """A protocol or clinic outside the clinic's own (not expected; read when met)."""
        row = model._base_manager.filter(pk=pk).first()
        return Named(title=getattr(row, "title", ""), name=getattr(row, "name", ""))

    def user(self, pk: int | None) -> Named | None:
        if pk is None:
            return None
        if pk not in self.users:  # a former member who recorded something
            found = User.objects.filter(pk=pk).first()
            self.users[pk] = Named(display_name=found.display_name if found else "")
        return self.users[pk]


@dataclass
class Chunk:
    export: Export
    patient_rows: list[Any]
    # Selects the chunk's patients by key: a range for the whole clinic, a key list for a Group.
    where: Callable[[str], Q]
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def patients(self) -> dict[int, PatientRef]:
        if "patients" not in self.cache:
            self.cache["patients"] = {
                r.id: PatientRef(r.public_id, r.full_name) for r in self.patient_rows
            }
        return cast(dict[int, PatientRef], self.cache["patients"])

    @property
    def public_ids(self) -> list[str]:
        return [r.public_id for r in self.patient_rows]

    def of(self, model: Any, queryset: type[QuerySet] = QuerySet) -> QuerySet:
        """The chunk's rows of a patient-owned table, of the export's organization.

        On SQLite the tenant filter is written `organization_id + 0` so that it cannot be
        answered from the organization index: a bounded ANALYZE rates that index as selective,
        and a chunk then read every row of the clinic (0.8 s a chunk at 100,000 patients)
        instead of its patients' rows by the patient index (15 ms). PostgreSQL's statistics know
        how many rows the clinic holds; there the expression only hid that (estimates 200 times
        too low, which chose merge joins), so it filters the column itself."""
        tenant = self.export.actor.organization.pk
        rows = queryset(model=model)
        if connections[rows.db].vendor == "sqlite":
            rows = rows.alias(tenant=F("organization_id") + 0).filter(tenant=tenant)
        else:
            rows = rows.filter(organization_id=tenant)
        return rows.filter(
            self.where("session__patient_id" if model in BY_SESSION else "patient_id")
        )

    def of_sessions(self, model: Any, sessions: list[Any] | None = None) -> QuerySet:
        """The rows of a table kept per session (transitions, flowsheet rows, dose orders) for
        the chunk's sessions.

        PostgreSQL reads them by the sessions' keys, one array parameter, so each session's rows
        come from the session index. Joined to the sessions by patient (as SQLite reads them),
        its planner chose a merge join along the sessions' primary key whenever the table's
        session keys end early (sessions without transitions: imported ones, or bench.large's
        copies), and that walked every earlier session of the clinic to reach the chunk's first
        one (120 ms for the last chunk of a 12,800-patient clinic, against 1.2 ms by the keys)."""
        rows = self.of(model)
        if connections[rows.db].vendor == "sqlite":
            return rows
        tenant = self.export.actor.organization.pk
        keys = [s.id for s in (self.sessions() if sessions is None else sessions)]
        return QuerySet(model=model).filter(AnyOf("session_id", keys), organization_id=tenant)

    def once(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]

    def sessions(self) -> list[Any]:
        return cast(list[Any], self.once("sessions", lambda: _session_rows(self)))

    def session_refs(self) -> dict[int, Ref]:
        return cast(
            dict[int, Ref],
            self.once(
                "session_refs",
                lambda: {
                    s.id: Ref(s.public_id, self.patients[s.patient_id]) for s in self.sessions()
                },
            ),
        )

    def reasons(self) -> dict[int, Condition]:
        return cast(
            dict[int, Condition],
            self.once(
                "reasons",
                lambda: indication.treated_conditions_where(
                    cast(CorrectableQuerySet, self.of(Condition, CorrectableQuerySet))
                ),
            ),
        )

    def responses(self) -> list[Any]:
        return cast(list[Any], self.once("responses", lambda: list(_response_rows(self))))


# --- the chart --------------------------------------------------------------------------------


def _patients(chunk: Chunk) -> Iterator[Resource]:
    for row in chunk.patient_rows:
        yield emit_as_built(mappers.patient_to_fhir(row))


def _entry_source(model: Any, resource_type: str, mapper: Callable[[Any], Resource]) -> Any:
    lean = Lean(model, extra=("patient",))

    def source(chunk: Chunk) -> Iterator[Resource]:
        chunk.export.actor.require(Cap.CLINICAL_VIEW)
        pid, patients = lean.index["patient_id"], chunk.patients
        queryset = chunk.of(model).filter(not_deleted_q(resource_type))
        for row in lean.rows(queryset.order_by("patient_id", "pk"), lambda v: (patients[v[pid]],)):
            yield emit_as_built(mapper(row))

    return source


CHART_TABLES = {"w": BodyWeight, "h": BodyHeight, "v": VitalSign}
LEAN_CHART = {table: Lean(model, extra=("patient",)) for table, model in CHART_TABLES.items()}


def _chart_observations(chunk: Chunk) -> Iterator[Resource]:
    chunk.export.actor.require(Cap.CLINICAL_VIEW)
    patients = chunk.patients
    for table, model in CHART_TABLES.items():
        lean = LEAN_CHART[table]
        pid = lean.index["patient_id"]
        queryset = chunk.of(model).filter(not_deleted_q("Observation"))
        extra = lambda v, pid=pid: (patients[v[pid]],)  # noqa: E731
        for row in lean.rows(queryset.order_by("patient_id", "pk"), extra):
            yield emit_as_built(observations.observation_to_fhir(row, table))


# --- questionnaire responses and the scores derived from them -----------------------------------

LEAN_RESPONSE = Lean(QuestionnaireResponse, extra=("patient", "recorded_by"))


def _response_rows(chunk: Chunk) -> Iterator[Any]:
    pid, by = LEAN_RESPONSE.index["patient_id"], LEAN_RESPONSE.index["recorded_by_id"]
    patients, user = chunk.patients, chunk.export.user
    queryset = chunk.of(QuestionnaireResponse)
    return LEAN_RESPONSE.rows(
        queryset.order_by("patient_id", "pk"), lambda v: (patients[v[pid]], user(v[by]))
    )


def _responses(chunk: Chunk) -> Iterator[Resource]:
    chunk.export.actor.require(Cap.MEASURE_VIEW)
    for row in chunk.responses():
        yield emit_as_built(questionnaires.response_data(row))


def _survey_observations(chunk: Chunk) -> Iterator[Resource]:
    """As the Observation search's survey part: every part of every response not corrected."""
    if not chunk.export.actor.can(Cap.MEASURE_VIEW):
        return
    wanted = measure_observations._wanted_parts(SearchRequest()) or {}
    parts: dict[str, list[str]] = defaultdict(list)
    for part, instrument_ids in sorted(wanted.items()):
        for instrument_id in instrument_ids:
            parts[instrument_id].append(part)
    rows = chunk.responses()
    corrected = {r.corrects_id for r in rows if r.corrects_id is not None}
    derived = measure_observations.DerivedObservation
    total = measure_observations.TOTAL
    for row in rows:
        if row.id in corrected:
            continue
        for part in parts.get(row.instrument_id, ()):
            if row.total is None if part == total else part not in row.answers:
                continue
            yield emit_as_built(measure_observations.to_fhir(derived(row, part)))


# --- treatment sessions ---------------------------------------------------------------------

LEAN_SESSION = Lean(
    TreatmentSession, extra=("patient", "plan", "protocol", "clinic", "transitions")
)


LEAN_TRANSITION = Lean(SessionTransition, only=("session_id", "to_state", "at"))


def _session_rows(chunk: Chunk) -> list[Any]:
    """The chunk's sessions, each with its transitions (read after the sessions, by their
    keys)."""
    plans = {
        pk: Ref(str(public_id))
        for pk, public_id in chunk.of(TreatmentPlan).values_list("pk", "public_id")
    }
    transitions: dict[int, All] = {}
    export, patients, index = chunk.export, chunk.patients, LEAN_SESSION.index
    key, pid, plan, protocol, clinic = (
        index[n] for n in ("id", "patient_id", "plan_id", "protocol_id", "clinic_id")
    )

    def extra(v: list[Any]) -> tuple[Any, ...]:
        steps = transitions[v[key]] = All()
        return (
            patients[v[pid]],
            plans[v[plan]],
            export.protocols.get(v[protocol]) or export.other(ProtocolVersion, v[protocol]),
            export.clinics.get(v[clinic]) or export.other(Clinic, v[clinic]),
            steps,
        )

    queryset = chunk.of(TreatmentSession)
    sessions = list(LEAN_SESSION.rows(queryset.order_by("patient_id", "pk"), extra))
    steps = chunk.of_sessions(SessionTransition, sessions)
    for step in LEAN_TRANSITION.rows(steps.order_by("at", "pk")):
        transitions[step.session_id].append(step)
    return sessions


def _encounters(chunk: Chunk) -> Iterator[Resource]:
    actor = chunk.export.actor
    actor.require(Cap.SESSION_VIEW)
    reasons = chunk.reasons()
    for row in chunk.sessions():
        yield emit_as_built(encounter.session_to_fhir(row, reasons.get(row.patient_id)))
    if actor.can(Cap.THERAPY_VIEW):  # therapy visits: a few per patient, as models
        visits = therapy_resources._visits().filter(chunk.where("patient_id")).order_by("pk")
        for visit in visits:
            yield therapy_resources.encounter_to_fhir(visit)


LEAN_VITALS = Lean(VitalsEntry, extra=("session", "recorded_by"))


def _session_vitals(chunk: Chunk) -> Iterator[Resource]:
    if not chunk.export.actor.can(Cap.SESSION_VIEW):
        return
    sessions, user = chunk.session_refs(), chunk.export.user
    sid, by = LEAN_VITALS.index["session_id"], LEAN_VITALS.index["recorded_by_id"]
    queryset = chunk.of_sessions(VitalsEntry)
    vital = session_vitals.SessionVital
    parts = [(name, part.fields) for name, part in sorted(session_vitals.PARTS.items())]
    for row in LEAN_VITALS.rows(
        queryset.order_by("session_id", "pk"), lambda v: (sessions[v[sid]], user(v[by]))
    ):
        for name, fields in parts:
            if all(getattr(row, f) is not None for f in fields):
                yield emit_as_built(session_vitals.vital_to_fhir(vital(row, name)))


LEAN_DOSE = Lean(DoseAdministration, extra=("patient", "session", "order", "recorded_by"))


def _administrations(chunk: Chunk) -> Iterator[Resource]:
    chunk.export.actor.require(Cap.SESSION_VIEW)
    orders = {
        pk: Ref(str(public_id))
        for pk, public_id in chunk.of_sessions(DoseOrder).values_list("pk", "public_id")
    }
    sessions, patients, user, reasons = (
        chunk.session_refs(),
        chunk.patients,
        chunk.export.user,
        chunk.reasons(),
    )
    pid, sid, oid, by = (
        LEAN_DOSE.index[n] for n in ("patient_id", "session_id", "order_id", "recorded_by_id")
    )
    queryset = chunk.of(DoseAdministration)
    for row in LEAN_DOSE.rows(
        queryset.order_by("patient_id", "pk"),
        lambda v: (patients[v[pid]], sessions[v[sid]], orders[v[oid]], user(v[by])),
    ):
        yield emit_as_built(
            medication_administration.administration_to_fhir(row, reasons.get(row.patient_id))
        )


LEAN_EVENT = Lean(AdverseEvent, extra=("patient", "session", "recorded_by"))


def _adverse_events(chunk: Chunk) -> Iterator[Resource]:
    chunk.export.actor.require(Cap.SESSION_VIEW)
    given: dict[int, list[Ref]] = defaultdict(list)
    for session_id, public_id in (
        chunk.of(DoseAdministration)
        .order_by("started_at", "pk")
        .values_list("session_id", "public_id")
    ):
        given[session_id].append(Ref(str(public_id)))
    sessions, patients, user = chunk.session_refs(), chunk.patients, chunk.export.user
    pid, sid, by = (LEAN_EVENT.index[n] for n in ("patient_id", "session_id", "recorded_by_id"))
    queryset = chunk.of(AdverseEvent)
    for row in LEAN_EVENT.rows(
        queryset.order_by("patient_id", "pk"),
        lambda v: (patients[v[pid]], sessions[v[sid]], user(v[by])),
    ):
        yield emit_as_built(
            adverse_event.event_to_fhir(row, cast(Any, given.get(row.session_id, [])))
        )


# --- few rows per patient: through their own querysets ----------------------------------------


def _consents(chunk: Chunk) -> Iterator[Resource]:
    rows = consent_resource.search(chunk.export.actor, [], "").filter(chunk.where("patient_id"))
    for row in rows.order_by("pk"):
        yield consent_resource.to_fhir(row)


def _therapy_notes(chunk: Chunk) -> Iterator[Resource]:
    rows = therapy_resources.document_search(chunk.export.actor, [], "")
    for visit in rows.filter(chunk.where("patient_id")).order_by("pk"):
        yield therapy_resources.document_to_fhir(visit)


# --- received resources -----------------------------------------------------------------------


def received_rows(chunk: Chunk, resource_type: str, *, generic: bool) -> Iterator[Any]:
    queryset = StoredResource.objects.filter(
        chunk.where("patient_id"), resource_type=resource_type, current=True, generic=generic
    )
    if generic:
        queryset = queryset.filter(deleted=False)
    return LEAN_STORED.rows(queryset.order_by("patient_id", "pk"))


def overlay(chunk: Chunk, resource_type: str, resources: Iterable[Resource]) -> Iterator[Resource]:
    """`received.overlay` for a chunk: the kept JSON of the chunk's rows in one query."""
    kept = {row.resource_id: row for row in received_rows(chunk, resource_type, generic=False)}
    for resource in resources:
        row = kept.get(resource["id"]) if kept else None
        if row is not None and row.version_id == resource.get("meta", {}).get("versionId"):
            yield received.merge(resource, row.resource)
        else:
            yield resource


def generic_source(resource_type: str) -> Callable[[Chunk], Iterator[Resource]]:
    def source(chunk: Chunk) -> Iterator[Resource]:
        chunk.export.actor.require(Cap.CLINICAL_VIEW)
        for row in received_rows(chunk, resource_type, generic=True):
            yield received.generic_to_fhir(row)

    return source


SOURCES: dict[str, list[Callable[[Chunk], Iterator[Resource]]]] = {
    "Patient": [_patients],
    "Condition": [_entry_source(Condition, "Condition", mappers.condition_to_fhir)],
    "MedicationStatement": [
        _entry_source(MedicationStatement, "MedicationStatement", mappers.medication_to_fhir)
    ],
    "AllergyIntolerance": [_entry_source(Allergy, "AllergyIntolerance", mappers.allergy_to_fhir)],
    "Observation": [_chart_observations, _survey_observations, _session_vitals],
    "QuestionnaireResponse": [_responses],
    "Encounter": [_encounters],
    "MedicationAdministration": [_administrations],
    "AdverseEvent": [_adverse_events],
    "Consent": [_consents],
    "DocumentReference": [_therapy_notes],
}
