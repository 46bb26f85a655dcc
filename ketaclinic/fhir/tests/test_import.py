"""`ketaclinic import-fhir`: all 30 Synthea bundles and the bulk NDJSON, twice, changes nothing."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django_scopes import scope

from ketaclinic.accounts.models import AuditEvent
from ketaclinic.fhir.models import StoredResource
from ketaclinic.fhir.tests.helpers import DATA
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    Condition,
    MedicationStatement,
    Patient,
    VitalSign,
)

pytestmark = pytest.mark.django_db
SYNTHEA = DATA / "synthea-r4"


def _import(username: str, *paths: Any) -> str:
    out = StringIO()
    call_command(
        "import_fhir", *[str(p) for p in paths], username=username, no_progress=True, stdout=out
    )
    return out.getvalue()


def _counts(org: Any) -> tuple[int, ...]:
    with scope(organization=org):
        return (
            Patient.objects.count(),
            Condition.objects.count(),
            BodyWeight.objects.count(),
            VitalSign.objects.count(),
        )


def _snapshot(org: Any) -> dict[str, list[Any]]:
    """Every imported row as stored: ids, versions, times and the received JSON."""
    with scope(organization=org):
        tables: dict[str, list[Any]] = {
            "stored": sorted(
                StoredResource.objects.values_list(
                    "resource_type", "resource_id", "version_id", "current", "source_key"
                )
            ),
            "json": sorted(
                json.dumps(r, sort_keys=True)
                for r in StoredResource.objects.values_list("resource", flat=True)
            ),
        }
        for model in (Patient, Condition, MedicationStatement, Allergy, BodyWeight, BodyHeight):
            tables[model.__name__] = sorted(model.objects.values_list("public_id", "updated_at"))
        tables["VitalSign"] = sorted(VitalSign.objects.values_list("public_id", "updated_at"))
    return tables


def test_synthea_bundles_import_once_and_a_second_run_changes_nothing(
    members: dict[str, Any], org_a: Any
) -> None:
    username = members["prescriber"].user.username
    first = _import(username, SYNTHEA / "smart-generated-sample-data-R4")
    # Every one of the 4,639 resources lands: 1,034 in the chart, the rest kept as received
    # (the 1,437 Observations that are not clinic vital signs among them); the 15 Organizations
    # and 15 Practitioners that two bundles share are found again, not stored twice.
    assert "imported 4609, updated 0, unchanged 30, skipped 0, rejected 0" in first, first
    assert "Observation x1437" in first, first
    with scope(organization=org_a):
        from ketaclinic.fhir.models import StoredResource

        kept = StoredResource.objects.filter(generic=True)
        assert kept.count() == 4609 - 1034
        assert kept.filter(resource_type="Claim", patient__isnull=False).count() == 526
        # The received JSON beside every charted row (and patient).
        assert StoredResource.objects.filter(generic=False).count() == 1034
        # One audit event per Bundle, with its counts and the chart rows it wrote; besides it
        # only the creation of each new patient is its own event (the patient's access record).
        units = AuditEvent.objects.filter(action="fhir.import.unit")
        assert units.count() == 30
        assert sum(sum(u.detail["chart"]["counts"].values()) for u in units) == 1034 - 30
        assert AuditEvent.objects.filter(action="patients.entries.imported").count() == 0
        assert AuditEvent.objects.filter(action="patients.patient.created").count() == 30
    patients, conditions, weights, vitals = _counts(org_a)
    assert patients == 30
    assert conditions == 165
    assert weights == 211
    with scope(organization=org_a):
        assert VitalSign.objects.filter(kind="bp", code="85354-9").count() == 211
    before = _snapshot(org_a)
    second = _import(username, SYNTHEA / "smart-generated-sample-data-R4")
    assert "imported 0, updated 0" in second, second
    # A re-import changes nothing: not a row, a version, a time or a byte of received JSON.
    assert _snapshot(org_a) == before


def test_bulk_ndjson_imports_idempotently(members: dict[str, Any], org_a: Any) -> None:
    username = members["prescriber"].user.username
    folder = SYNTHEA / "sample-bulk-fhir-10-patients"
    first = _import(username, *sorted(folder.glob("*.000.ndjson")))
    assert "skipped" in first
    with scope(organization=org_a):
        assert Patient.objects.count() >= 10
    before = _snapshot(org_a)
    second = _import(username, *sorted(folder.glob("*.000.ndjson")))
    assert "imported 0, updated 0" in second, second
    assert _snapshot(org_a) == before


def test_imported_vitals_and_conditions_show_on_the_chart(
    members: dict[str, Any], org_a: Any
) -> None:
    from conftest import staff_client

    _import(members["prescriber"].user.username, SYNTHEA / "smart-generated-sample-data-R4")
    with scope(organization=org_a):
        vital = VitalSign.objects.filter(kind="bp").select_related("patient").first()
        assert vital is not None
        patient = vital.patient
        condition = Condition.objects.filter(patient=patient).first()
        assert condition is not None
    page = staff_client(members["nurse"]).get(f"/patients/{patient.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Blood pressure" in html
    assert "mm[Hg]" in html
    assert condition.display in html


def _ndjson(folder: Path, name: str, resources: list[dict[str, Any]]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def test_invalid_resources_are_refused_naming_the_element_and_the_rest_land(
    members: dict[str, Any], org_a: Any, tmp_path: Path
) -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    sent: list[dict[str, Any]] = [
        {**encounter, "id": "fine"},
        {**encounter, "id": "colour", "colour": "blue"},  # not an R4 element
        {**encounter, "id": "status", "status": "over"},  # outside the required value set
        {**encounter, "id": "bad_id!"},
        {**encounter, "id": "meta", "meta": "yesterday"},  # a string where an object belongs
        {
            "resourceType": "Practitioner",
            "id": "pigeon",
            "telecom": [{"system": "pigeon", "value": "loft 3"}],
        },
    ]
    out = _import(members["prescriber"].user.username, _ndjson(tmp_path, "Encounter.ndjson", sent))
    assert "imported 1, updated 0, unchanged 0, skipped 0, rejected 5" in out, out
    rejected = [line for line in out.splitlines() if line.startswith("rejected: ")]
    expected = {
        "Encounter/colour": "Encounter.colour",
        "Encounter/status": "Encounter.status",
        "Encounter/bad_id!": "Encounter.id",
        "Encounter/meta": "Encounter.meta",
        "Practitioner/pigeon": "Practitioner.telecom[0].system",
    }
    for label, element in expected.items():
        line = next((r for r in rejected if f"rejected: {label}:" in r), "")
        assert element in line, (label, rejected)
    with scope(organization=org_a):
        kept = StoredResource.objects.filter(generic=True)
        assert list(kept.values_list("resource_type", "status")) == [("Encounter", "finished")]
