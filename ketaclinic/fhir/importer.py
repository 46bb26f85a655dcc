"""Import of FHIR transaction Bundles and bulk NDJSON into one organization, through the same
services as every other write. Idempotent: patients are matched by identifier (MRN), chart entries
by external_id (identifier, else fullUrl, else Type/id), so a second run changes nothing.

Each resource is its own unit: a rejected one is reported with its reason and the rest go on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.core.errors import DomainError
from ketaclinic.fhir import mappers, observations
from ketaclinic.fhir.bundles import replace_references
from ketaclinic.fhir.common import first_identifier_key
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.validation import parse_resource
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


@dataclass
class ImportReport:
    counts: Counter[str] = field(default_factory=Counter)
    skipped_types: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)

    def add(self, outcome: str, resource_type: str = "", reason: str = "") -> None:
        self.counts[outcome] += 1
        if outcome == "skipped":
            self.skipped_types[reason or resource_type] += 1
        if outcome == "rejected":
            self.rejected.append(reason)


def iter_resources(paths: Iterable[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(fullUrl or '', resource) from Bundles (.json) and NDJSON files, Patients first."""
    files: list[Path] = []
    for path in paths:
        files += (
            sorted(path.rglob("*.json")) + sorted(path.rglob("*.ndjson"))
            if path.is_dir()
            else [path]
        )
    files.sort(key=lambda p: (not p.name.startswith("Patient"), str(p)))
    for file in files:
        if file.suffix == ".ndjson":
            with file.open() as lines:
                for line in lines:
                    if line.strip():
                        yield "", json.loads(line)
            continue
        data = json.loads(file.read_text())
        if data.get("resourceType") == "Bundle":
            entries = sorted(
                data.get("entry") or [],
                key=lambda e: TYPE_ORDER.get((e.get("resource") or {}).get("resourceType"), 1),
            )
            for entry in entries:
                yield entry.get("fullUrl", ""), entry.get("resource") or {}
        else:
            yield "", data


class Importer:
    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.report = ImportReport()
        self.refs: dict[str, str] = {}  # outside reference -> Patient/<our id>

    def run(self, items: Iterable[tuple[str, dict[str, Any]]]) -> ImportReport:
        for full_url, raw in items:
            resource_type = str(raw.get("resourceType", "?"))
            label = f"{resource_type}/{raw.get('id', '?')}"
            try:
                with transaction.atomic():
                    outcome = self.one(full_url, raw, resource_type)
                self.report.add(outcome[0], resource_type, outcome[1])
            except FhirError as exc:
                self.report.add(
                    "rejected",
                    resource_type,
                    f"{label}: {exc.diagnostics} {'; '.join(m for _, m in exc.expressions)}".strip(),
                )
            except DomainError as exc:
                fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
                self.report.add(
                    "rejected", resource_type, f"{label}: {exc.detail} {fields}".strip()
                )
        return self.report

    def one(self, full_url: str, raw: dict[str, Any], resource_type: str) -> tuple[str, str]:
        if resource_type == "Patient":
            return self.patient(full_url, raw), ""
        if resource_type == "Observation":
            code = next(
                (
                    c.get("code")
                    for c in (raw.get("code") or {}).get("coding") or []
                    if c.get("system") == observations.LOINC
                    and c.get("code") in observations.SUPPORTED_CODES
                ),
                None,
            )
            if code is None:
                return "skipped", "Observation (not a supported vital sign)"
        elif resource_type not in ENTRY_MODELS:
            return "skipped", resource_type
        resource = parse_resource(replace_references(raw, self.refs), expected=resource_type)
        external_id = first_identifier_key(resource) or self._fallback_key(full_url, raw)
        if resource_type == "Observation":
            if any(m.objects.filter(external_id=external_id).exists() for m in OBSERVATION_MODELS):
                return "unchanged", ""
            observations.observation_record(
                self.actor, resource, source=ChartEntry.Source.IMPORT, external_id=external_id
            )
            return "imported", ""
        handler = HANDLERS[resource_type]
        existing = (
            ENTRY_MODELS[resource_type]
            .objects.select_related("patient")
            .filter(external_id=external_id)
            .first()
        )
        if existing is None:
            handler.create(
                self.actor, resource, source=ChartEntry.Source.IMPORT, external_id=external_id
            )
            return "imported", ""
        before = existing.updated_at
        updated = handler.update(self.actor, str(existing.public_id), resource)
        return ("updated" if updated.updated_at != before else "unchanged"), ""

    @staticmethod
    def _fallback_key(full_url: str, raw: dict[str, Any]) -> str:
        if full_url and ":" in full_url:
            return full_url[:200]
        return f"{raw.get('resourceType')}/{raw.get('id', '')}"[:200]

    def patient(self, full_url: str, raw: dict[str, Any]) -> str:
        resource = parse_resource(raw, expected="Patient")
        data = mappers.patient_from_fhir(resource)
        if "mrn" not in data:
            data["mrn"] = mappers.derived_mrn(
                "urn:ketaclinic:import", self._fallback_key(full_url, raw)
            )
        patient = Patient.objects.filter(mrn=data["mrn"]).first()
        outcome = "imported"
        if patient is None:
            patient = services.patient_create(actor=self.actor, data=data)
        else:
            before = patient.updated_at
            patient = services.patient_update(actor=self.actor, patient=patient, data=data)
            outcome = "updated" if patient.updated_at != before else "unchanged"
        ours = f"Patient/{patient.public_id}"
        for key in (full_url, f"Patient/{resource.id}" if resource.id else ""):
            if key:
                self.refs[key] = ours
        return outcome
