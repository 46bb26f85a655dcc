"""Exports leave psychotherapy notes out: the FHIR Bulk Data export carries the signed progress
notes (part of the record) and never a process note, and the de-identified research export knows
nothing of therapy notes at all."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.therapy import services
from ketaclinic.therapy.tests.builders import signed_visit

pytestmark = pytest.mark.django_db
SECRET = "Process: the argument with the brother, word for word."


def test_the_bulk_export_carries_progress_notes_and_no_process_note(
    settings: Any,
    tmp_path: Any,
    members: Any,
    therapist: Any,
    kap: Any,
    org_a: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.VAR_DIR = tmp_path
    with scope(organization=org_a):
        visit = signed_visit(therapist, kap["patient"], "integration")
        services.process_note_write(actor=therapist, visit=visit, text=SECRET)
    client = api_client(members["compliance"])
    with django_capture_on_commit_callbacks(execute=True):
        kicked = client.get(
            "/fhir/r4/Patient/$export",
            HTTP_PREFER="respond-async",
            HTTP_ACCEPT="application/fhir+json",
        )
    assert kicked.status_code == 202, kicked.content
    for _ in range(20):
        status = client.get(kicked["Content-Location"])
        if status.status_code == 200:
            break
    manifest = status.json()
    exported: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        body = b"".join(client.get(output["url"]).streaming_content)  # type: ignore[attr-defined]
        exported.setdefault(output["type"], []).extend(
            orjson.loads(line) for line in body.splitlines() if line
        )
    notes = exported["DocumentReference"]
    assert [n["id"] for n in notes] == [str(visit.public_id)]
    everything = orjson.dumps(exported).decode()
    attachments = " ".join(
        base64.b64decode(n["content"][0]["attachment"]["data"]).decode() for n in notes
    )
    assert "Grief is not a failure." in attachments
    assert "brother" not in everything
    assert "brother" not in attachments


def test_the_research_export_carries_no_therapy_note(
    settings: Any,
    tmp_path: Any,
    members: Any,
    prescriber: Any,
    therapist: Any,
    org_a: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from datetime import UTC, datetime

    from django_scopes import scopes_disabled

    from conftest import make_patient
    from ketaclinic.outcomes.synthetic import add_histories
    from ketaclinic.outcomes.tests.test_research_export import download, run_export

    settings.VAR_DIR = tmp_path
    patients = [make_patient(prescriber, mrn=f"R{i:03d}") for i in range(3)]
    add_histories(
        organization=org_a,
        recorded_by=prescriber.user,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    with scope(organization=org_a):
        visit = signed_visit(therapist, patients[0], "integration")
        services.process_note_write(actor=therapist, visit=visit, text=SECRET)
    with scopes_disabled():
        assert visit.patient_id == patients[0].pk
    client = api_client(members["researcher"])
    job = run_export(client, django_capture_on_commit_callbacks)
    assert job["files"]
    for file in job["files"]:
        body = download(client, file)
        assert b"brother" not in body, file["name"]
        assert b"Grief is not a failure" not in body, file["name"]
