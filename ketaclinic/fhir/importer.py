"""Import of FHIR transaction Bundles and bulk NDJSON into one organization.

Every resource lands somewhere: the patient and the chart's types (conditions, medications,
allergies, the clinic's vital signs) become chart rows through the patients services, with the
received JSON kept beside them; every other type (Encounters, Claims, labs, ...) is kept as
received (fhir.received), searchable and returned unchanged.

Unit of work: one Bundle, or CHUNK lines of an NDJSON file, in one transaction:
- patients resolved once per run (a map from the sender's references to ours);
- duplicates found with one query per table for the whole unit (idempotent: patients by
  identifier (MRN), chart rows by external_id, kept resources by their source key: identifier,
  else fullUrl, else Type/id), so a second run changes nothing;
- chart rows checked one by one by the services' rules, then inserted with one INSERT per table
  (`patients.services.entries_batched`); kept resources, and the received JSON beside new chart
  rows and patients, with one executemany each (`core.bulk.insert_rows`, no model instances);
- one audit event for the unit, with the counts (and the chart rows per table, with their
  patients); a patient created by the import keeps its own creation event.
A resource the rules refuse is reported with its reason (and left out); the rest go on. NDJSON
files are imported by parallel worker processes (`workers`), patients first.

Kept-as-received resources are checked structurally on import (known type, known top-level
elements, ids, required bindings, profiles, dates of the indexed elements), not element by
element through fhir.resources as the API does (2 ms per resource, the import's whole budget);
JSON of the wrong shape that the structural check lets through is refused after a full
validation names the element. Chart types are fully validated because they feed the rules.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.core.bulk import insert_rows
from ketaclinic.core.errors import DomainError
from ketaclinic.fhir import mappers, observations, received
from ketaclinic.fhir.bundles import replace_references
from ketaclinic.fhir.common import (
    first_identifier_key,
    raw_identifier_key,
    resolved_patients,
    version_id,
)
from ketaclinic.fhir.models import StoredResource
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.validation import light_check, parse_resource
from ketaclinic.patients import services
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    ChartEntry,
    Condition,
    MedicationStatement,
    Patient,
    VitalSign,
)

ENTRY_MODELS = {
    "Condition": Condition,
    "MedicationStatement": MedicationStatement,
    "AllergyIntolerance": Allergy,
}
OBSERVATION_MODELS = (BodyWeight, BodyHeight, VitalSign)
TYPE_ORDER: dict[str | None, int] = {"Patient": 0}
CHUNK = 1000  # NDJSON lines per transaction


@dataclass
class ImportReport:
    counts: Counter[str] = field(default_factory=Counter)
    skipped_types: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    kept_types: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str, resource_type: str = "", reason: str = "") -> None:
        self.counts[outcome] += 1
        if outcome == "skipped":
            self.skipped_types[reason or resource_type] += 1
        if outcome == "rejected":
            self.rejected.append(reason)

    def merge(self, other: ImportReport) -> None:
        self.counts.update(other.counts)
        self.skipped_types.update(other.skipped_types)
        self.kept_types.update(other.kept_types)
        self.rejected += other.rejected


Item = tuple[str, dict[str, Any]]


def _files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += (
            sorted(path.rglob("*.json")) + sorted(path.rglob("*.ndjson"))
            if path.is_dir()
            else [path]
        )
    files.sort(key=lambda p: (not p.name.startswith("Patient"), str(p)))
    return files


def iter_units(paths: Iterable[Path], chunk: int = CHUNK) -> Iterator[tuple[str, list[Item]]]:
    """(label, [(fullUrl or '', resource)]) per Bundle or per `chunk` NDJSON lines."""
    for file in _files(paths):
        if file.suffix == ".ndjson":
            yield from _ndjson_units(file, chunk)
            continue
        data = orjson.loads(file.read_bytes())
        if data.get("resourceType") == "Bundle":
            entries = sorted(
                data.get("entry") or [],
                key=lambda e: TYPE_ORDER.get((e.get("resource") or {}).get("resourceType"), 1),
            )
            yield file.name, [(e.get("fullUrl", ""), e.get("resource") or {}) for e in entries]
        else:
            yield file.name, [("", data)]


def _ndjson_units(file: Path, chunk: int) -> Iterator[tuple[str, list[Item]]]:
    unit: list[Item] = []
    start = 1
    with file.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                unit.append(("", orjson.loads(line)))
            if len(unit) >= chunk:
                yield f"{file.name}:{start}-{number}", unit
                unit, start = [], number + 1
    if unit:
        yield f"{file.name}:{start}-", unit


def iter_resources(paths: Iterable[Path]) -> Iterator[Item]:
    for _, unit in iter_units(paths):
        yield from unit


def _vital_code(raw: dict[str, Any]) -> str | None:
    return next(
        (
            c.get("code")
            for c in (raw.get("code") or {}).get("coding") or []
            if isinstance(c, dict)
            and c.get("system") == observations.LOINC
            and c.get("code") in observations.SUPPORTED_CODES
        ),
        None,
    )


def _fallback_key(full_url: str, raw: dict[str, Any]) -> str:
    if full_url and ":" in full_url:
        return full_url[:200]
    return f"{raw.get('resourceType')}/{raw.get('id', '')}"[:200]


class Importer:
    def __init__(
        self,
        actor: Actor,
        *,
        refs: dict[str, str] | None = None,
        patients: dict[str, Patient] | None = None,
    ) -> None:
        self.actor = actor
        self.report = ImportReport()
        self.refs: dict[str, str] = dict(refs or {})  # sender's reference -> ours
        # Resolved once per run, by our id (a worker process starts from the parent's).
        self.patients: dict[str, Patient] = dict(patients or {})
        # The unit's new clinical rows and their received JSON, kept beside them at the end.
        self._beside: list[tuple[Any, dict[str, Any]]] = []
        # The unit's chart rows per table and their patients, for its one audit event.
        self._chart_detail: dict[str, Any] = {}

    def run(
        self,
        units: Iterable[tuple[str, list[Item]]],
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        token = resolved_patients.set(self.patients)
        try:
            for label, unit in units:
                self.unit(label, unit)
                if progress is not None:
                    progress(len(unit))
        finally:
            resolved_patients.reset(token)
        return self.report

    # --- one Bundle or NDJSON chunk, one transaction ----------------------------------------

    def unit(self, label: str, items: list[Item]) -> None:
        report = ImportReport()
        self._beside = []
        self._chart_detail = {}
        with transaction.atomic():
            patients = [(u, r) for u, r in items if r.get("resourceType") == "Patient"]
            others = [(u, r) for u, r in items if r.get("resourceType") != "Patient"]
            for full_url, raw in patients:
                self._guarded(report, raw, functools.partial(self.patient, full_url, raw))
            self._others(report, others)
            self._insert_beside()
            audit_record(
                actor=self.actor,
                action="fhir.import.unit",
                detail={
                    "unit": label[:200],
                    "counts": dict(report.counts),
                    # The chart rows written, per table, and their patients.
                    "chart": self._chart_detail,
                },
            )
        self.report.merge(report)

    def _guarded(
        self,
        report: ImportReport,
        raw: dict[str, Any],
        work: Callable[[], str],
        *,
        writes: bool = True,
    ) -> None:
        """`work` for one resource; a refusal is reported and the unit goes on. Work that
        `writes` runs in a savepoint, undone if refused; a chart row created inside
        `entries_batched` writes nothing until the unit's INSERTs, so needs none."""
        resource_type = str(raw.get("resourceType", "?"))
        label = f"{resource_type}/{raw.get('id', '?')}"
        try:
            if writes:
                with transaction.atomic():
                    report.add(work(), resource_type)
            else:
                report.add(work(), resource_type)
        except FhirError as exc:
            report.add("rejected", resource_type, _refusal(label, exc))
        except DomainError as exc:
            fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
            report.add("rejected", resource_type, f"{label}: {exc.detail} {fields}".strip())

    def _others(self, report: ImportReport, items: list[Item]) -> None:
        chart: list[tuple[str, dict[str, Any], str]] = []  # (key, raw, type)
        kept: list[tuple[str, dict[str, Any], str]] = []
        for full_url, raw in items:
            resource_type = str(raw.get("resourceType", "?"))
            is_chart = resource_type in ENTRY_MODELS or (
                resource_type == "Observation" and _vital_code(raw) is not None
            )
            if not is_chart and resource_type not in received.GENERIC:
                report.add("skipped", resource_type, f"{resource_type} (no handler)")
                continue
            identifier = raw_identifier_key(raw)
            key = identifier or _fallback_key(full_url, raw)
            (chart if is_chart else kept).append((key, raw, resource_type))
            if full_url and not is_chart:
                # Kept resources get their ids now, so references between them resolve.
                self.refs.setdefault(full_url, "")
        existing_kept = self._existing_kept(kept)
        for full_url, raw in items:
            if full_url in self.refs and not self.refs[full_url]:
                resource_type = str(raw.get("resourceType"))
                key = raw_identifier_key(raw) or _fallback_key(full_url, raw)
                ours = existing_kept.get((resource_type, key)) or str(uuid.uuid4())
                self.refs[full_url] = f"{resource_type}/{ours}"
        self._chart(report, chart)
        self._kept(report, kept, existing_kept, items)

    # --- chart rows, through the services --------------------------------------------------

    def _chart(self, report: ImportReport, chart: list[tuple[str, dict[str, Any], str]]) -> None:
        if not chart:
            return
        keys = [key for key, _, _ in chart]
        existing: dict[str, Any] = {}
        models: tuple[Any, ...] = (*ENTRY_MODELS.values(), *OBSERVATION_MODELS)
        for model in models:
            for found in model.objects.select_related("patient").filter(external_id__in=keys):
                existing[found.external_id] = found
        created = self._beside
        seen: set[str] = set()
        with services.entries_batched(
            actor=self.actor,
            action="patients.entries.imported",
            detail=self._chart_detail,
            audited_by_caller=True,
        ):
            for key, raw, resource_type in chart:
                if key in seen:
                    report.add("unchanged", resource_type)
                    continue
                seen.add(key)
                row = existing.get(key)

                def work(
                    key: str = key,
                    raw: dict[str, Any] = raw,
                    t: str = resource_type,
                    row: Any = row,
                ) -> str:
                    return self._chart_one(key, raw, t, row, created)

                self._guarded(report, raw, work, writes=row is not None)

    def _insert_beside(self) -> None:
        """The received JSON beside each new clinical row (patients and chart rows), at the row's
        version, with one INSERT; a Patient's references to resources later in its Bundle (its
        generalPractitioner) are resolved by now."""
        insert_rows(
            StoredResource,
            [
                {
                    **received.BESIDE_DEFAULTS,
                    "organization_id": self.actor.organization.pk,
                    "resource_type": raw["resourceType"],
                    "resource_id": str(row.public_id),
                    "version_id": version_id(row.updated_at),
                    "patient_id": row.pk if isinstance(row, Patient) else row.patient_id,
                    "resource": received.clean(
                        replace_references(raw, self.refs) if isinstance(row, Patient) else raw
                    ),
                    "source": StoredResource.Source.IMPORT,
                    "recorded_at": row.updated_at,
                    "recorded_by_id": self.actor.user.pk,
                }
                for row, raw in self._beside
            ],
        )

    def _chart_one(
        self,
        key: str,
        raw: dict[str, Any],
        resource_type: str,
        row: Any,
        created: list[tuple[Any, dict[str, Any]]],
    ) -> str:
        if resource_type == "Observation" and row is not None:
            # A measurement is never edited by an import (it is corrected by marking it
            # entered-in-error): one already charted is left as it is, without parsing it again.
            return "unchanged"
        data = replace_references(raw, self.refs)
        resource = parse_resource(data, expected=resource_type)
        if resource_type == "Observation":
            entry = observations.observation_record(
                self.actor, resource, source=ChartEntry.Source.IMPORT, external_id=key
            )
            created.append((entry, data))
            return "imported"
        handler = HANDLERS[resource_type]
        if row is None:
            entry = handler.create(
                self.actor, resource, source=ChartEntry.Source.IMPORT, external_id=key
            )
            created.append((entry, data))
            return "imported"
        before = row.updated_at
        updated = handler.update(self.actor, str(row.public_id), resource)
        return "updated" if updated.updated_at != before else "unchanged"

    # --- everything else, kept as received --------------------------------------------------

    def _existing_kept(
        self, kept: list[tuple[str, dict[str, Any], str]]
    ) -> dict[tuple[str, str], str]:
        if not kept:
            return {}
        rows = StoredResource.objects.filter(
            generic=True,
            current=True,
            resource_type__in={t for _, _, t in kept},
            source_key__in=[k for k, _, _ in kept],
        ).values_list("resource_type", "source_key", "resource_id")
        return {(t, k): rid for t, k, rid in rows}

    def _kept(
        self,
        report: ImportReport,
        kept: list[tuple[str, dict[str, Any], str]],
        existing: dict[tuple[str, str], str],
        items: list[Item],
    ) -> None:
        url_of = {id(raw): url for url, raw in items}
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for key, raw, resource_type in kept:
            if (resource_type, key) in existing or (resource_type, key) in seen:
                report.add("unchanged", resource_type)
                continue
            seen.add((resource_type, key))
            full_url = url_of.get(id(raw), "")
            ours = self.refs.get(full_url, "")
            try:
                data = replace_references(raw, self.refs)
                light_check(data, resource_type)
                row = received.generic_values(
                    self.actor,
                    resource_type,
                    _Shim(data),
                    data,
                    resource_id=ours.split("/", 1)[1] if ours else str(uuid.uuid4()),
                )
            except FhirError as exc:
                label = f"{resource_type}/{raw.get('id', '?')}"
                report.add("rejected", resource_type, _refusal(label, exc))
                continue
            except DomainError as exc:
                label = f"{resource_type}/{raw.get('id', '?')}"
                report.add("rejected", resource_type, f"{label}: {exc.detail}")
                continue
            except (TypeError, AttributeError, ValueError, KeyError) as exc:
                report.add("rejected", resource_type, _malformed(raw, resource_type, exc))
                continue
            row["source_key"] = key
            rows.append(row)
            report.add("imported", resource_type)
            report.kept_types[resource_type] += 1
        insert_rows(StoredResource, rows)

    # --- patients, once per run -----------------------------------------------------------

    def patient(self, full_url: str, raw: dict[str, Any]) -> str:
        resource = parse_resource(raw, expected="Patient")
        data = mappers.patient_from_fhir(resource)
        if "mrn" not in data:
            data["mrn"] = mappers.derived_mrn("urn:ketaclinic:import", _fallback_key(full_url, raw))
        patient = Patient.objects.filter(mrn=data["mrn"]).first()
        outcome = "imported"
        if patient is None:
            patient = services.patient_create(actor=self.actor, data=data)
            self._beside.append((patient, raw))
        else:
            before = patient.updated_at
            patient = services.patient_update(actor=self.actor, patient=patient, data=data)
            outcome = "updated" if patient.updated_at != before else "unchanged"
        ours = f"Patient/{patient.public_id}"
        self.patients[str(patient.public_id)] = patient
        for key in (full_url, f"Patient/{resource.id}" if resource.id else ""):
            if key:
                self.refs[key] = ours
        return outcome


def _malformed(raw: dict[str, Any], resource_type: str, exc: Exception) -> str:
    """Why a resource the structural check let through could not be read (JSON of the wrong
    shape below the top level, such as an object where a string belongs): the full validation
    names the element."""
    label = f"{resource_type}/{raw.get('id', '?')}"
    try:
        parse_resource(raw, expected=resource_type)
    except FhirError as error:
        return _refusal(label, error)
    return f"{label}: could not be read ({type(exc).__name__}: {exc})"


def _refusal(label: str, error: FhirError) -> str:
    """The report's line for a refused resource: what is wrong, and where (each element)."""
    where = "; ".join(f"{path}: {message}" for path, message in error.expressions)
    return f"{label}: {error.diagnostics}" + (f" [{where}]" if where else "")


class _Shim:
    """The few attributes `received` reads from a validated resource (the patient reference),
    read from the JSON for a resource checked structurally."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        if isinstance(value, dict) and ("reference" in value or "identifier" in value):
            return _Reference(value)
        return value


class _Reference:
    def __init__(self, data: dict[str, Any]) -> None:
        self.reference = data.get("reference")
        ident = data.get("identifier")
        self.identifier = _Identifier(ident) if isinstance(ident, dict) else None


class _Identifier:
    def __init__(self, data: dict[str, Any]) -> None:
        self.system = data.get("system")
        self.value = data.get("value")


# --- parallel NDJSON ---------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _work(task: tuple[str, list[Item]]) -> ImportReport:
    """One NDJSON chunk in a worker process (forked: Django is set up, the connection is new)."""
    from django_scopes import scope

    importer = Importer(_worker["actor"], refs=_worker["refs"], patients=_worker["patients"])
    with scope(organization=_worker["actor"].organization):
        importer.run([task])
    return importer.report


def run_import(
    actor: Actor,
    paths: list[Path],
    *,
    workers: int = 1,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Bundles and patient files in this process, in order; the other NDJSON chunks by
    `workers` processes (fork) when more than one, each chunk its own transaction."""
    import multiprocessing

    from django.db import connections
    from django_scopes import scope

    importer = Importer(actor)
    parallel: list[tuple[str, list[Item]]] = []
    with scope(organization=actor.organization):
        for label, unit in iter_units(paths, chunk):
            is_ndjson = ".ndjson:" in label
            first_type = unit[0][1].get("resourceType") if unit else None
            if workers > 1 and is_ndjson and first_type != "Patient":
                parallel.append((label, unit))
                continue
            importer.run([(label, unit)], progress)
    if not parallel:
        return importer.report
    _worker.update(actor=actor, refs=importer.refs, patients=importer.patients)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        for report in pool.imap_unordered(_work, parallel):
            importer.report.merge(report)
            if progress is not None:
                progress(sum(report.counts.values()))
    return importer.report


__all__ = [
    "Importer",
    "ImportReport",
    "iter_resources",
    "iter_units",
    "run_import",
    "first_identifier_key",
]
