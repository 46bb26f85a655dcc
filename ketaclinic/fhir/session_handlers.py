"""Registry entries for the treatment-session resources: Encounter (the session),
MedicationAdministration (the dose), AdverseEvent, and Observation extended with the session
flowsheet's vital signs (`encounter` = the session)."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir import adverse_event as ae
from ketaclinic.fhir import encounter as enc
from ketaclinic.fhir import medication_administration as ma
from ketaclinic.fhir import session_vitals
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS, Handler, ObservationHandler, Page, _page
from ketaclinic.fhir.search import SearchRequest


def _patients(rows: list[Any]) -> list[str]:
    return sorted({str(r.patient.public_id) for r in rows})


class MedicationAdministrationHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return ma.one_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        row = ma.read(actor, resource_id)
        self.audit_read(actor, row, row.patient)
        return self.to_fhir(row)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = ma.search(actor, dict(search.items()))
        total, rows = _page(queryset, search)
        reasons = ma.reasons_for(rows)
        return Page(
            total, [ma.to_fhir(r, reasons.get(r.patient_id)) for r in rows], _patients(rows)
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        return ma.create(actor, resource)


class EncounterHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return enc.one_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        session = enc.read(actor, resource_id)
        self.audit_read(actor, session, session.patient)
        return self.to_fhir(session)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = enc.search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        reasons = enc.reasons_for(rows)
        return Page(
            total, [enc.to_fhir(s, reasons.get(s.patient_id)) for s in rows], _patients(rows)
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        return enc.create(actor, resource)

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Any:
        return enc.update(actor, resource_id, resource)


class AdverseEventHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return ae.one_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        row = ae.read(actor, resource_id)
        self.audit_read(actor, row, row.patient)
        return self.to_fhir(row)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = ae.search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        given = ae.administrations_by_session(rows)
        return Page(
            total, [ae.to_fhir(r, given.get(r.session_id, [])) for r in rows], _patients(rows)
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        return ae.create(actor, resource)


class SessionObservationHandler(ObservationHandler):
    """The chart's Observations plus the session flowsheet's. With `encounter` in a search only
    session vitals can match (chart and survey Observations have no encounter)."""

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, session_vitals.SessionVital):
            return session_vitals.to_fhir(obj)
        return super().to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        if session_vitals.is_session_id(resource_id):
            vital = session_vitals.read(actor, resource_id)
            if vital is not None:
                self.audit_read(actor, vital.entry, vital.patient)
                return self.to_fhir(vital)
        return super().read(actor, resource_id)

    def _entry_to_mark(self, actor: Actor, resource_id: str) -> Any:
        # A flowsheet reading is part of the session's record (its alerts, the dose gate): it is
        # corrected in that record, never withdrawn on its own.
        if session_vitals.is_session_id(resource_id):
            actor.require(Cap.CLINICAL_EDIT)
            vital = session_vitals.read(actor, resource_id)
            if vital is not None:
                raise FhirError(
                    422,
                    f"Observation/{resource_id} is a reading on the flowsheet of Encounter/"
                    f"{vital.entry.session.public_id}: flowsheet readings belong to the treatment "
                    "session's record and are not marked entered-in-error or edited through "
                    "FHIR. Correct it in the session record: record the correct reading on the "
                    "session while it is open, and say which reading was wrong in the session "
                    "note (in an amendment once the note is signed).",
                    expressions=[
                        ("Observation.encounter", f"Encounter/{vital.entry.session.public_id}")
                    ],
                )
        return super()._entry_to_mark(actor, resource_id)

    def _union_parts(self, actor: Actor, search: SearchRequest) -> list[Any]:
        # A search by encounter asks for a session's flowsheet only: no chart vitals match it.
        by_encounter = any(name == "encounter" for name, _ in search.items())
        chart = [] if by_encounter else super()._union_parts(actor, search)
        return chart + session_vitals.union_parts(actor, search)

    def _load(self, keys: list[tuple[Any, str, int]]) -> dict[tuple[str, int], Any]:
        loaded = super()._load(keys)
        loaded.update(session_vitals.load(keys))
        return loaded

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        session_id = session_vitals.session_reference(resource)
        if session_id is not None:
            return session_vitals.record(actor, resource, session_id)
        return super().create(actor, resource, **kw)

    def stages(self, resource: Any) -> bool:
        # A session's reading is checked against the session's state and limits inside the
        # transaction that writes it.
        return session_vitals.session_reference(resource) is None


_chart_observations = HANDLERS["Observation"]
SESSION_HANDLERS: dict[str, Handler] = {
    "Observation": SessionObservationHandler(
        type="Observation",
        interactions=_chart_observations.interactions,
        search_params={**_chart_observations.search_params, "encounter": "reference"},
        sorts=_chart_observations.sorts,
        documentation={
            **_chart_observations.documentation,
            "encounter": "Encounter/<session id>: the session flowsheet's vital signs "
            "(blood pressure, heart rate, SpO2, respiratory rate); create with an encounter "
            "records the reading on that session's flowsheet",
        },
    ),
    "Encounter": EncounterHandler(
        type="Encounter",
        interactions=("read", "create", "update", "search-type"),
        search_params={
            "_id": "token",
            "patient": "reference",
            "subject": "reference",
            "date": "date",
            "status": "token",
        },
        sorts=("date",),
        documentation={
            "status": "planned, arrived, in-progress, finished or cancelled",
            "date": "period.start: check-in, or the scheduled time while planned",
            "_id": "create: status planned, subject, basedOn = the treatment plan (identifier "
            f"system {enc.PLAN_SYSTEM}; optional when the patient has one active plan), "
            "period.start = the scheduled time; the treatment gate applies. update: status "
            "finished discharges the session (every discharge criterion is checked)",
        },
    ),
    "MedicationAdministration": MedicationAdministrationHandler(
        type="MedicationAdministration",
        interactions=("read", "create", "search-type"),
        search_params={
            "_id": "token",
            "patient": "reference",
            "subject": "reference",
            "context": "reference",
            "date": "date",
        },
        documentation={
            "context": "Encounter/<session id>; ketamine is RxNorm 6130 ([U])",
            "date": "effective[x] (the start of the dose)",
        },
    ),
    "AdverseEvent": AdverseEventHandler(
        type="AdverseEvent",
        interactions=("read", "create", "search-type"),
        search_params={
            "_id": "token",
            "patient": "reference",
            "subject": "reference",
            "date": "date",
            "encounter": "reference",
        },
        sorts=("date",),
        documentation={
            "date": "onset of the event",
            "encounter": "Encounter/<session id>; create requires it (the event is recorded in "
            f"that session); severity carries the CTCAE grade ({ae.GRADE_SYSTEM})",
        },
    ),
}
