"""The resource types this server implements: what each supports, and how (the one table the
views, the Bundle processor, the importer and the CapabilityStatement all read)."""

from __future__ import annotations

import functools
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import CharField, Q, QuerySet, Value
from django_scopes import scope

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock, shapes
from ketaclinic.core.errors import NotFound
from ketaclinic.core.rows import prepared as prepared_rows
from ketaclinic.core.rows import prepared_sql
from ketaclinic.fhir import (
    keyset,
    mappers,
    measure_observations,
    observations,
    quantity,
    search_shapes,
)
from ketaclinic.fhir.common import derived_mrn, emit, first_identifier_key, version_id
from ketaclinic.fhir.history import not_deleted_q
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import (
    SearchRequest,
    any_of,
    as_uuid,
    date_q,
    encode_cursor,
    identifier_q,
    order,
    patient_ids,
    patient_keys,
    token,
)
from ketaclinic.fhir.text_search import string_filter
from ketaclinic.patients import selectors, services
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    ChartEntry,
    Condition,
    CorrectableEntry,
    MedicationStatement,
    Patient,
    VitalSign,
)


@dataclass
class Page:
    total: int | None  # None: not counted (see search.SearchRequest.page_total)
    resources: list[dict[str, Any]]
    patient_ids: list[str]
    # Keyset paging: the cursor of the next page (None: offset paging, or no next page).
    next_cursor: str | None = None


@dataclass
class Handler:
    """One resource type. Subclasses implement read/search/create/update as the domain allows."""

    type: str
    interactions: tuple[str, ...]
    search_params: dict[str, str]  # name -> FHIR search type
    sorts: tuple[str, ...] = ()
    documentation: dict[str, str] = field(default_factory=dict)
    # Search modifiers a parameter accepts (e.g. name -> exact, contains).
    modifiers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Part of the patient's record ($everything, bulk export). The audit trail is about the record,
    # not in it: it is read for compliance, under its own capability.
    patient_record: bool = True

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        raise NotImplementedError

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Any:
        raise NotImplementedError

    def stages(self, resource: Any) -> bool:
        """Whether `stage_create` takes this resource (decided without a query)."""
        return False

    def stage_create(self, actor: Actor, resource: Any, raw: dict[str, Any]) -> Callable[[], Any]:
        """A create in two steps, for a resource the handler `stages`: now, outside any
        transaction, every lookup and check `create_from` makes (a refusal raises here, having
        written nothing); then the returned function, called inside the create's transaction,
        writes the rows and returns what `create_from` would have. Why: views.type_level."""
        raise NotImplementedError

    def create_from(self, actor: Actor, resource: Any, raw: dict[str, Any], **kw: Any) -> Any:
        """Create from the validated resource; `raw` is the JSON as received (references
        resolved), for handlers that keep it whole."""
        return self.create(actor, resource, **kw)

    def update_from(
        self, actor: Actor, resource_id: str, resource: Any, raw: dict[str, Any]
    ) -> Any:
        return self.update(actor, resource_id, resource)

    def fresh(self, obj: Any) -> bool:
        """True when the create just inserted `obj` under a new id: no version and no received
        JSON of it can exist yet, so both are inserted without looking for earlier ones."""
        return False

    def keep_received(
        self, actor: Actor, obj: Any, data: dict[str, Any], raw: Any, *, fresh: bool = False
    ) -> dict[str, Any]:
        """Keep the received JSON beside the clinical row just written (fhir.received) and
        return what a read will now return."""
        from ketaclinic.fhir import received

        if self.type not in received.KEEP_BESIDE:
            return data
        if self.type in received.WORKFLOW and isinstance(raw, dict):
            received.check_agrees(self.type, data, raw)
        patient = obj if isinstance(obj, Patient) else getattr(obj, "patient", None)

        def touch() -> dict[str, Any]:
            # An update that changed only what the row does not record: a new version all the
            # same, so the version served before stays what a vread of it returns.
            obj.updated_at = max(clock.now(), obj.updated_at + timedelta(microseconds=1))
            type(obj)._base_manager.filter(pk=obj.pk).update(updated_at=obj.updated_at)
            return self.to_fhir(obj)

        return received.keep_beside(
            actor,
            data,
            raw,
            patient if isinstance(patient, Patient) else None,
            touch=touch if hasattr(obj, "updated_at") else None,
            fresh=fresh,
        )

    def delete(self, actor: Actor, resource_id: str) -> None:
        raise NotImplementedError

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def current_version(self, actor: Actor, resource_id: str) -> str | None:
        """The version an update or delete would replace, locked for this transaction (for
        If-Match); None where this type's updates are not version-checked."""
        return None

    @property
    def versioning(self) -> str:
        """CapabilityStatement versioning: emitted meta.versionId, checked on If-Match."""
        if type(self).current_version is not Handler.current_version:
            return "versioned-update"
        return "versioned"

    def audit_read(self, actor: Actor, obj: Any, patient: Patient) -> None:
        audit_record(
            actor=actor,
            action=f"fhir.{self.type.lower()}.read",
            patient_id=patient.public_id,
            obj=obj,
        )


def _locked_version(obj: Any) -> str:
    """Re-read the row's last change under a row lock: on PostgreSQL a concurrent writer waits
    here and then sees the newer version (SQLite's IMMEDIATE transaction already holds the
    database's write lock), so no write slips between the If-Match check and the update."""
    updated_at = (
        type(obj)
        ._base_manager.select_for_update()
        .filter(pk=obj.pk)
        .values_list("updated_at", flat=True)
        .get()
    )
    return version_id(updated_at)


def _after_key(cursor: list[Any], descending: bool) -> Q:
    """Rows strictly after (measured_at, src, pk) in the page order."""
    moment, src, pk = search_shapes.cursor_key(cursor)
    op = "lt" if descending else "gt"
    return (
        Q(**{f"measured_at__{op}": moment})
        | Q(measured_at=moment, **{f"src__{op}": src})
        | Q(measured_at=moment, src=src, **{f"pk__{op}": pk})
    )


def _moment(value: Any) -> datetime:
    """A union's time column as the ORM converts it (SQLite's cursor gives naive UTC, as a
    datetime where the column's declared type says timestamp, else as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _page(queryset: QuerySet, search: SearchRequest) -> tuple[int | None, list[Any]]:
    """One page of rows (one query, fetching one row more to know whether a next page exists)
    and the total where it is known or asked for (a second, counting query only then).

    Paged by key (fhir/keyset.py) wherever the ordering allows: a `_cursor` continues after the
    previous page's last row, and a page with more after it sets `search.next_cursor`."""
    if not search.count:
        return queryset.count(), []
    key = keyset.sort_key(queryset)
    if key is None:
        if search.cursor is not None:
            raise FhirError(400, "_cursor is not one this server sent for this search.")
        rows = list(queryset[search.window()])
        search.more = len(rows) > search.count
        rows = rows[: search.count]
        return search.page_total(len(rows), queryset.count), rows
    queryset = keyset.ordered(queryset, key)
    if search.cursor is not None:
        rows = list(queryset.filter(keyset.after(key, search.cursor))[: search.count + 1])
        search.more = len(rows) > search.count
        rows = rows[: search.count]
        total = queryset.count() if search.counts else None
    else:
        rows = list(queryset[search.window()])
        search.more = len(rows) > search.count
        rows = rows[: search.count]
        total = search.page_total(len(rows), queryset.count)
    if search.more and rows:
        search.next_cursor = encode_cursor(keyset.cursor_of(rows[-1], key))
    return total, rows


# --- Patient ------------------------------------------------------------------------------------


class PatientHandler(Handler):
    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        patient = selectors.patient_chart_read(actor, resource_id, action="fhir.patient.read")
        return self.to_fhir(patient)

    def to_fhir(self, obj: Patient) -> dict[str, Any]:
        return emit(mappers.patient_to_fhir(obj))

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.PATIENT_LIST)
        queryset = Patient.objects.all()
        for name, values in search.items():
            if name == "_id":
                queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
            elif name == "identifier":
                mrns = []
                for value in values:
                    system, code = token(value)
                    mrns.append(derived_mrn(system, code))
                queryset = queryset.filter(mrn__in=mrns)
            elif name.split(":")[0] in ("name", "family", "given"):
                base, _, modifier = name.partition(":")
                fields = {
                    "name": ("family_name", "given_name"),
                    "family": ("family_name",),
                    "given": ("given_name",),
                }[base]
                queryset = string_filter(queryset, fields, values, modifier)
            elif name == "gender":
                sexes = [s for v in values for s in SEX_OF_GENDER.get(token(v)[1], ())]
                queryset = queryset.filter(sex_at_birth__in=sexes)
            elif name == "birthdate":
                queryset = queryset.filter(
                    any_of(values, lambda v: date_q("birth_date", v, is_date=True))
                )
            elif name == "_lastUpdated":
                queryset = queryset.filter(any_of(values, lambda v: date_q("updated_at", v)))
        queryset = order(
            queryset, search.sort, {"birthdate": "birth_date", "family": "family_name"}, "family"
        )
        total, rows = _page(queryset, search)
        return Page(total, [self.to_fhir(p) for p in rows], [str(p.public_id) for p in rows])

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Patient:
        return services.patient_create(actor=actor, data=mappers.patient_from_fhir(resource))

    def current_version(self, actor: Actor, resource_id: str) -> str:
        patient = selectors.patient_get_for_actor(
            actor, resource_id, capability=Cap.PATIENT_EDIT_DEMOGRAPHICS
        )
        return _locked_version(patient)

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Patient:
        patient = selectors.patient_get_for_actor(
            actor, resource_id, capability=Cap.PATIENT_EDIT_DEMOGRAPHICS
        )
        data = mappers.patient_from_fhir(resource)
        data.setdefault("mrn", patient.mrn)
        if resource.active is not None and resource.active != patient.is_active:
            raise FhirError(422, "Deactivating a patient is not supported through FHIR.")
        return services.patient_update(actor=actor, patient=patient, data=data)


SEX_OF_GENDER = {
    gender: tuple(sex for sex, g in mappers.GENDER_OF_SEX.items() if g == gender)
    for gender in set(mappers.GENDER_OF_SEX.values())
}


# --- Condition, MedicationStatement, AllergyIntolerance ---------------------------------------


@dataclass
class EntryHandler(Handler):
    model: type[ChartEntry] | None = None
    to_fhir_fn: Callable[[Any], dict[str, Any]] | None = None
    from_fhir_fn: Callable[[Actor, Any], tuple[Patient, dict[str, Any]]] | None = None
    add: Callable[..., Any] | None = None
    change: Callable[..., Any] | None = None
    change_kw: str = ""
    date_field: str = ""
    date_is_date: bool = True
    patient_field: str = "subject"
    code_filter: Callable[[str], Q] | None = None
    category: str = ""

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        assert self.to_fhir_fn is not None
        return emit(self.to_fhir_fn(obj))

    def _get(self, actor: Actor, resource_id: str, capability: Cap) -> Any:
        assert self.model is not None
        return selectors.entry_get_for_actor(actor, self.model, resource_id, capability=capability)

    def current_version(self, actor: Actor, resource_id: str) -> str:
        return _locked_version(self._get(actor, resource_id, Cap.CLINICAL_EDIT))

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        entry = self._get(actor, resource_id, Cap.CLINICAL_VIEW)
        self.audit_read(actor, entry, entry.patient)
        return self.to_fhir(entry)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.CLINICAL_VIEW)
        assert self.model is not None
        queryset = self.model.objects.select_related("patient")
        if "delete" in self.interactions:
            queryset = queryset.filter(not_deleted_q(self.type))
        for name, values in search.items():
            queryset = queryset.filter(self.filter_q(name, values))
        queryset = order(queryset, search.sort, {"date": self.date_field}, "-date")
        total, rows = _page(queryset, search)
        return Page(
            total, [self.to_fhir(e) for e in rows], sorted({str(e.patient.public_id) for e in rows})
        )

    def filter_q(self, name: str, values: list[str]) -> Q:
        if name in ("patient", "subject"):
            return Q(patient__public_id__in=patient_ids(values))
        if name == "_id":
            return Q(public_id__in=[k for v in values if (k := as_uuid(v))])
        if name == "identifier":
            return identifier_q(values)
        if name in ("date", "onset-date", "effective"):
            return any_of(values, lambda v: date_q(self.date_field, v, is_date=self.date_is_date))
        if name == "_lastUpdated":
            return any_of(values, lambda v: date_q("updated_at", v))
        if name == "code" and self.code_filter is not None:
            return any_of(values, self.code_filter)
        if name == "category":
            return Q() if any(token(v)[1] == self.category for v in values) else Q(pk__in=[])
        if name == "clinical-status":
            return Q(clinical_status__in=[token(v)[1] for v in values])
        raise FhirError(400, f"Unsupported search parameter {name!r}.")

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        assert self.from_fhir_fn is not None
        assert self.add is not None
        patient, data = self.from_fhir_fn(actor, resource)
        if _entered_in_error(resource):
            raise FhirError(422, "A new record cannot be created as entered-in-error.")
        kw.setdefault("external_id", _identifier_key(resource))
        return self.add(actor=actor, patient=patient, data=data, **kw)

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Any:
        assert self.from_fhir_fn is not None
        assert self.change is not None
        entry = self._get(actor, resource_id, Cap.CLINICAL_EDIT)
        if _entered_in_error(resource):
            services.entry_mark_entered_in_error(actor=actor, entry=entry, reason="FHIR update")
            return entry
        patient, data = self.from_fhir_fn(actor, resource)
        if patient.pk != entry.patient_id:
            raise FhirError(422, "An update cannot move a record to another patient.")
        return self.change(actor=actor, **{self.change_kw: entry}, data=data)

    def delete(self, actor: Actor, resource_id: str) -> None:
        entry = self._get(actor, resource_id, Cap.CLINICAL_EDIT)
        services.entry_mark_entered_in_error(actor=actor, entry=entry, reason="FHIR delete")


def _entered_in_error(resource: Any) -> bool:
    status = getattr(resource, "status", None)
    verification = getattr(resource, "verificationStatus", None)
    return status == "entered-in-error" or (
        verification is not None
        and any(c.code == "entered-in-error" for c in verification.coding or [])
    )


def _identifier_key(resource: Any) -> str:
    return first_identifier_key(resource)


def _condition_code(value: str) -> Q:
    system, code = token(value)
    q = Q(code=code) if code else Q()
    return q & Q(code_system=system) if system else q


def _medication_code(value: str) -> Q:
    system, code = token(value)
    if system and system != mappers.RXNORM:
        return Q(pk__in=[])
    return Q(rxnorm_code=code) if code else ~Q(rxnorm_code="")


# --- Observation (vital signs) ------------------------------------------------------------------

SOURCES: dict[str, type[CorrectableEntry]] = {"w": BodyWeight, "h": BodyHeight, "v": VitalSign}


def _with_patient(model: type[CorrectableEntry]) -> QuerySet[Any]:
    return model.objects.select_related("patient")


class ObservationHandler(Handler):
    """Vital signs (three chart tables) and survey scores derived from questionnaire responses."""

    def fresh(self, obj: Any) -> bool:
        return isinstance(obj, CorrectableEntry)  # observation_record inserts a new chart row

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, measure_observations.DerivedObservation):
            return emit(measure_observations.to_fhir(obj))
        return emit(observations.observation_to_fhir(obj))

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        actor.require(Cap.CLINICAL_VIEW)
        if "." in resource_id:  # "<questionnaire response id>.<part>"
            derived = measure_observations.read(actor, resource_id)
            self.audit_read(actor, derived.response, derived.patient)
            superseded = measure_observations.is_superseded(derived.response)
            return emit(measure_observations.to_fhir(derived, superseded=superseded))
        entry = self._chart_entry(resource_id)
        self.audit_read(actor, entry, entry.patient)
        return self.to_fhir(entry)

    def _chart_entry(self, resource_id: str) -> CorrectableEntry:
        """The weight, height or vital-sign row with this id (in the current organization)."""
        key = as_uuid(resource_id)
        if key is not None:
            for model in SOURCES.values():
                entry = model.objects.select_related("patient").filter(public_id=key).first()
                if entry is not None:
                    return entry
        raise NotFound("No such Observation.")

    def _entry_to_mark(self, actor: Actor, resource_id: str) -> CorrectableEntry:
        """The chart row a DELETE or PUT marks entered-in-error. Survey Observations are computed
        from a questionnaire response and are corrected there, never on their own."""
        actor.require(Cap.CLINICAL_EDIT)
        if "." in resource_id:  # "<questionnaire response id>.<part>"
            derived = measure_observations.read(actor, resource_id)
            raise FhirError(
                422,
                f"Observation/{resource_id} is computed from QuestionnaireResponse/"
                f"{derived.response.public_id} and cannot be marked entered-in-error or changed "
                "on its own. Correct the questionnaire response instead (Record a correction on "
                "the response in the chart): the correction's Observations replace these, which "
                "are then served as entered-in-error.",
                expressions=[
                    (
                        "Observation.derivedFrom",
                        f"QuestionnaireResponse/{derived.response.public_id}",
                    )
                ],
            )
        return self._chart_entry(resource_id)

    def current_version(self, actor: Actor, resource_id: str) -> str:
        return _locked_version(self._entry_to_mark(actor, resource_id))

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Any:
        """Only "this measurement was entered in error": the status, nothing else, and once."""
        entry = self._entry_to_mark(actor, resource_id)
        changes = observations.observation_changes(entry, resource)
        if resource.status != observations.ENTERED_IN_ERROR or changes:
            raise observations.update_refused(entry, resource, changes)
        services.entry_mark_entered_in_error(actor=actor, entry=entry, reason="FHIR update")
        return entry

    def delete(self, actor: Actor, resource_id: str) -> None:
        entry = self._entry_to_mark(actor, resource_id)
        services.entry_mark_entered_in_error(actor=actor, entry=entry, reason="FHIR delete")

    def _source_filters(self, search: SearchRequest) -> dict[str, Q] | None:
        """Per table, the filter the query's code and category parameters leave (None: nothing)."""
        filters = {src: Q() for src in SOURCES}
        for name, values in search.items():
            if name == "value-quantity":
                filters = {
                    src: q & any_of(values, lambda v, s=src: quantity.source_q(s, v))
                    for src, q in filters.items()
                }
            elif name == "category":
                if not any(token(v)[1] == "vital-signs" for v in values):
                    return {}
            elif name == "code":
                wanted: dict[str, Q | None] = {}
                for value in values:
                    system, code = token(value)
                    if system not in (None, "", observations.LOINC):
                        continue
                    if not code:  # code=http://loinc.org| : every LOINC-coded row
                        wanted.update({src: None for src in SOURCES})
                        continue
                    vital = observations.CODES.get(observations.canonical_code(code))
                    if vital is None:
                        continue
                    src = {"weight": "w", "height": "h"}.get(vital.kind, "v")
                    if src != "v":
                        wanted[src] = None  # the table holds only this code
                    elif src not in wanted or wanted[src] is not None:
                        clause = Q(code=vital.code)
                        wanted[src] = clause if src not in wanted else wanted[src] | clause  # type: ignore[operator]
                filters = {
                    src: q & (wanted[src] or Q()) for src, q in filters.items() if src in wanted
                }
        return filters

    def _common_q(self, name: str, values: list[str], search: SearchRequest) -> Q:
        if name in ("patient", "subject"):
            return Q(patient_id__in=patient_keys(search, values))
        if name == "_id":
            return Q(public_id__in=[k for v in values if (k := as_uuid(v))])
        if name == "identifier":
            return identifier_q(values)
        if name == "date":
            return any_of(values, lambda v: date_q("measured_at", v))
        if name == "_lastUpdated":
            return any_of(values, lambda v: date_q("updated_at", v))
        return Q()

    def _union_parts(self, actor: Actor, search: SearchRequest) -> list[Any]:
        """One `(measured_at, src, pk)` query per table an Observation may come from."""
        filters = self._source_filters(search)
        common = not_deleted_q(self.type)
        for name, values in search.items():
            common &= self._common_q(name, values, search)
        parts = [
            SOURCES[src]
            .objects.filter(q & common)
            .order_by()
            .annotate(src=Value(src, output_field=CharField()))
            .values_list("measured_at", "src", "pk")
            for src, q in (filters or {}).items()
        ]
        return parts + measure_observations.union_parts(actor, search)

    def _load(self, keys: list[tuple[Any, str, int]]) -> dict[tuple[str, int], Any]:
        """The rows behind one page of union keys, one query per source table."""
        by_src: dict[str, list[int]] = {}
        for _, src, pk in keys:
            if src in SOURCES:
                by_src.setdefault(src, []).append(pk)
        loaded: dict[tuple[str, int], Any] = {}
        for src, pks in by_src.items():
            rows = shapes.rows_in(
                ("observation-page", src), functools.partial(_with_patient, SOURCES[src]), "pk", pks
            )
            loaded.update(((src, obj.pk), obj) for obj in rows)
        loaded.update(measure_observations.load(keys))
        return loaded

    @staticmethod
    def _union(parts: list[Any]) -> Any:
        return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]

    def _ordered(self, parts: list[Any], descending: bool) -> Any:
        """One sorted UNION ALL across the sources (paging stays stable and the query count
        fixed: the page's rows are then loaded per source)."""
        prefix = "-" if descending else ""
        return self._union(parts).order_by(f"{prefix}measured_at", f"{prefix}src", f"{prefix}pk")

    def _after(self, parts: list[Any], search: SearchRequest, descending: bool) -> list[Any]:
        """Keyset paging: the rows after the previous page's last key, whatever was inserted
        meanwhile (no row is served twice, none skipped)."""
        if search.cursor is None:
            return parts
        after = _after_key(search.cursor, descending)
        return [part.filter(after) for part in parts]

    def _shape(self, actor: Actor, bound: search_shapes.Bound, descending: bool) -> shapes.Shape:
        """The page query built from the bound search's stand-ins (once per shape)."""
        search = bound.stand_search
        with scope(organization=bound.stand_organization):
            parts = self._after(self._union_parts(actor, search), search, descending)
            ordered = self._ordered(parts, descending) if parts else None
            return shapes.compile_shape(ordered, bound.slots, suffix=search_shapes.PAGE)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.CLINICAL_VIEW)
        descending = (search.sort or "-date").startswith("-")
        bound = search_shapes.bind(actor, search, descending)
        shape = None
        if bound is not None:
            shape = shapes.shape_for(bound.key, lambda: self._shape(actor, bound, descending))
        if bound is None or shape is None or shape.sql is None:
            return self._search_built(actor, search, descending)
        # SQL built once for this shape, the request's values bound (fhir/search_shapes.py);
        # prepared on PostgreSQL: the union's plan is made once per connection (core.rows).
        params = shape.params(bound.slots.values)
        if settings.SQL_SHAPES_CHECKED:
            self._check_shape(actor, search, descending, shape.sql, params)
        keys = [
            (_moment(measured_at), src, pk)
            for measured_at, src, pk in prepared_sql(shape.using, shape.sql, params)
        ]

        def count_all() -> int:
            return self._union(self._union_parts(actor, search)).count()

        return self._page_of(search, keys, count_all)

    def _check_shape(
        self, actor: Actor, search: SearchRequest, descending: bool, sql: str, params: list[Any]
    ) -> None:
        """The cached shape with this request's values is the query the ORM builds for it
        (settings.SQL_SHAPES_CHECKED: the test suite)."""
        parts = self._after(self._union_parts(actor, search), search, descending)
        built, built_params = self._ordered(parts, descending).query.sql_with_params()
        offset = 0 if search.cursor is not None else search.offset
        assert (sql, params) == (
            built + search_shapes.PAGE,
            [*built_params, search.count + 1, offset],
        ), f"shape differs from the ORM's query:\n{sql}\n{params}\n{built}\n{built_params}"

    def _search_built(self, actor: Actor, search: SearchRequest, descending: bool) -> Page:
        """The search with its union built by the ORM for this request (shapes not cached)."""
        parts = self._union_parts(actor, search)
        if not parts:
            return Page(0, [], [])
        full = self._union(parts)
        offset = search.offset
        if search.cursor is not None:
            parts = self._after(parts, search, descending)
            offset = 0
        keys: list[Any] = []
        if search.count:
            ordered = self._ordered(parts, descending)
            stop = offset + search.count
            # Prepared on PostgreSQL: the union's plan is made once per connection (core.rows).
            keys = prepared_rows(ordered[offset : stop + 1 if stop < sys.maxsize else stop])
        return self._page_of(search, keys, full.count)

    def _page_of(
        self, search: SearchRequest, keys: list[Any], count_all: Callable[[], int]
    ) -> Page:
        """The page from its union keys (one row more than the page when another follows)."""
        next_cursor = None
        if search.count:
            search.more = len(keys) > search.count
            if search.more:
                keys = keys[: search.count]
                last = keys[-1]
                next_cursor = encode_cursor([last[0].isoformat(), last[1], last[2]])
        if not search.count:
            total: int | None = count_all()
        elif search.cursor is not None:
            total = count_all() if search.counts else None
        else:
            total = search.page_total(len(keys), count_all)
        loaded = self._load(keys)
        rows = [loaded[(src, pk)] for _, src, pk in keys if (src, pk) in loaded]
        return Page(
            total,
            [self.to_fhir(r) for r in rows],
            sorted({str(r.patient.public_id) for r in rows}),
            next_cursor=next_cursor,
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        kw.setdefault("external_id", _identifier_key(resource))
        return observations.observation_record(actor, resource, **kw)

    def stages(self, resource: Any) -> bool:
        return True  # a vital sign: one chart row the patients services record

    def stage_create(self, actor: Actor, resource: Any, raw: dict[str, Any]) -> Callable[[], Any]:
        with services.entries_staged() as staged:
            entry = self.create(actor, resource)
        if [staged_entry for staged_entry, _, _ in staged.entries] != [entry]:
            raise RuntimeError("An Observation create staged something else than its chart row.")

        def write() -> Any:
            staged.write(actor)
            return entry

        return write


READ_CREATE_SEARCH = ("read", "create", "search-type")
ENTRY_PARAMS = {
    "_id": "token",
    "_lastUpdated": "date",
    "identifier": "token",
    "patient": "reference",
    "subject": "reference",
    "date": "date",
}

HANDLERS: dict[str, Handler] = {
    "Patient": PatientHandler(
        type="Patient",
        interactions=("read", "update", *READ_CREATE_SEARCH[1:]),
        search_params={
            "_id": "token",
            "_lastUpdated": "date",
            "identifier": "token",
            "name": "string",
            "family": "string",
            "given": "string",
            "birthdate": "date",
            "gender": "token",
        },
        sorts=("family", "birthdate"),
        modifiers={
            "name": ("exact", "contains"),
            "family": ("exact", "contains"),
            "given": ("exact", "contains"),
        },
        documentation={
            "name": "family, given or preferred name; starts with the value, case and accents "
            "ignored (:contains anywhere, :exact as stored)",
            "identifier": "system|value, or the value alone for this clinic's MRN",
        },
    ),
    "Observation": ObservationHandler(
        type="Observation",
        interactions=(*READ_CREATE_SEARCH, "update", "delete"),
        search_params={
            **ENTRY_PARAMS,
            "code": "token",
            "category": "token",
            "value-quantity": "quantity",
        },
        sorts=("date",),
        documentation={
            "value-quantity": "the chart's weights, heights and vital signs other than blood "
            "pressure (not session flowsheet readings or scores), in their UCUM unit (weights and heights converted from [lb_av], g, "
            "[in_i], m); prefixes eq ne gt lt ge le sa eb ap",
            "code": "LOINC vital-sign codes: "
            + ", ".join(observations.SUPPORTED_CODES)
            + "; questionnaire scores and items (category survey): "
            + ", ".join(measure_observations.supported_codes()),
        },
    ),
    "Condition": EntryHandler(
        type="Condition",
        interactions=(*READ_CREATE_SEARCH, "update", "delete"),
        search_params={
            **ENTRY_PARAMS,
            "onset-date": "date",
            "code": "token",
            "category": "token",
            "clinical-status": "token",
        },
        sorts=("date",),
        model=Condition,
        to_fhir_fn=mappers.condition_to_fhir,
        from_fhir_fn=mappers.condition_from_fhir,
        add=services.condition_add,
        change=services.condition_update,
        change_kw="condition",
        date_field="onset_date",
        code_filter=_condition_code,
        category="problem-list-item",
    ),
    "MedicationStatement": EntryHandler(
        type="MedicationStatement",
        interactions=(*READ_CREATE_SEARCH, "update", "delete"),
        search_params={**ENTRY_PARAMS, "effective": "date", "code": "token"},
        sorts=("date",),
        model=MedicationStatement,
        to_fhir_fn=mappers.medication_to_fhir,
        from_fhir_fn=mappers.medication_from_fhir,
        add=services.medication_add,
        change=services.medication_update,
        change_kw="medication",
        date_field="start_date",
        code_filter=_medication_code,
    ),
    "AllergyIntolerance": EntryHandler(
        type="AllergyIntolerance",
        interactions=(*READ_CREATE_SEARCH, "update", "delete"),
        # No `date`: FHIR's is recordedDate, which the clinic keeps only in the received JSON
        # (the row knows when it was entered here); _lastUpdated finds that.
        search_params={
            k: v
            for k, v in {**ENTRY_PARAMS, "clinical-status": "token"}.items()
            if k not in ("subject", "date")
        },
        sorts=("date",),
        model=Allergy,
        to_fhir_fn=mappers.allergy_to_fhir,
        from_fhir_fn=mappers.allergy_from_fhir,
        add=services.allergy_add,
        change=services.allergy_update,
        change_kw="allergy",
        date_field="created_at",
        date_is_date=False,
        patient_field="patient",
    ),
}


def run_search(
    actor: Actor, handler: Handler, query: Any, base_url: str, *, strict: bool = False
) -> dict[str, Any]:
    """Parse, search, audit once for the request, and return the searchset Bundle (with any
    _include/_revinclude resources and, when a lenient search ignored parameters, an
    OperationOutcome entry saying which)."""
    from ketaclinic.fhir import chain, include
    from ketaclinic.fhir.search import parse_query, searchset

    query = chain.resolve(actor, handler, query, base_url)
    search = parse_query(
        query,
        allowed=handler.search_params,
        sorts=handler.sorts,
        strict=strict,
        modifiers=handler.modifiers,
    )
    page = handler.search(actor, search)
    if page.next_cursor is None and search.more:
        page.next_cursor = search.next_cursor
    from ketaclinic.fhir.received import overlay

    page.resources = overlay(page.resources)
    audit_record(
        actor=actor,
        action=f"fhir.{handler.type.lower()}.searched",
        patient_id=uuid.UUID(page.patient_ids[0]) if len(page.patient_ids) == 1 else None,
        detail={
            "query": query.urlencode()[:500],
            "total": page.total,
            "patients": page.patient_ids[:200],
        },
    )
    bundle = searchset(
        base_url=base_url,
        resource_type=handler.type,
        query=query,
        search=search,
        total=page.total,
        resources=page.resources,
    )
    return include.complete(actor, handler, query, search, page, bundle, base_url)


# Treatment-session resources live in their own module; registered here, last, to avoid a cycle.
from ketaclinic.fhir.session_handlers import SESSION_HANDLERS  # noqa: E402

HANDLERS.update(SESSION_HANDLERS)

from ketaclinic.fhir.questionnaire_handlers import QUESTIONNAIRE_HANDLERS  # noqa: E402

HANDLERS.update(QUESTIONNAIRE_HANDLERS)

from ketaclinic.fhir.consent_handlers import CONSENT_HANDLERS  # noqa: E402

HANDLERS.update(CONSENT_HANDLERS)

from ketaclinic.fhir.therapy_handlers import THERAPY_HANDLERS  # noqa: E402

HANDLERS.update(THERAPY_HANDLERS)

from ketaclinic.fhir.audit_handlers import AUDIT_HANDLERS  # noqa: E402

HANDLERS.update(AUDIT_HANDLERS)

from ketaclinic.fhir.scheduling_resources import SCHEDULING_HANDLERS  # noqa: E402

HANDLERS.update(SCHEDULING_HANDLERS)

from ketaclinic.fhir.group import GROUP_HANDLERS  # noqa: E402

HANDLERS.update(GROUP_HANDLERS)

# Last: types kept as received, and received resources beside the clinic's own (wraps the above).
from ketaclinic.fhir.received_handlers import RECEIVED_HANDLERS  # noqa: E402

HANDLERS.update(RECEIVED_HANDLERS)
