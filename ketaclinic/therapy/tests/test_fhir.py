"""FHIR: therapy visits are Encounters (class and type coded), signed progress notes are
DocumentReferences, and a psychotherapy note is in no FHIR answer at all."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.core import clock
from ketaclinic.fhir.tests.helpers import valid
from ketaclinic.therapy import services
from ketaclinic.therapy.tests.builders import complete_note, signed_visit

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
SECRET = "Process: rage at the brother, not yet said aloud."


@pytest.fixture
def course(therapist: Any, kap: Any, org_a: Any) -> dict[str, Any]:
    with scope(organization=org_a):
        preparation = signed_visit(therapist, kap["patient"], "preparation", modality="video")
        dosing = services.visit_create(
            actor=therapist,
            patient=kap["patient"],
            kind="dosing_support",
            session=kap["session"],
            started_at=clock.now() - timedelta(minutes=120),
        )
        complete_note(therapist, dosing)
        services.visit_sign(actor=therapist, visit=dosing)
        integration = signed_visit(therapist, kap["patient"], "integration")
        services.process_note_write(actor=therapist, visit=integration, text=SECRET)
        draft = services.visit_create(actor=therapist, patient=kap["patient"], kind="integration")
    return {
        "preparation": preparation,
        "dosing": dosing,
        "integration": integration,
        "draft": draft,
    }


def _decoded(resource: dict[str, Any]) -> str:
    return " ".join(
        base64.b64decode(c["attachment"]["data"]).decode() for c in resource.get("content", [])
    )


def test_a_therapy_visit_is_a_coded_encounter(members: Any, course: Any, kap: Any) -> None:
    client = api_client(members["prescriber"])
    dosing = valid(client.get(BASE + f"Encounter/{course['dosing'].public_id}").json())
    assert dosing["class"]["code"] == "AMB"
    assert dosing["type"][0]["coding"][0]["code"] == "dosing_support"
    assert dosing["partOf"]["reference"] == f"Encounter/{kap['session'].public_id}"
    assert dosing["length"]["value"] == 120
    assert dosing["status"] == "finished"
    preparation = valid(client.get(BASE + f"Encounter/{course['preparation'].public_id}").json())
    assert preparation["class"]["code"] == "VR"  # by video
    assert preparation["type"][0]["coding"][0]["display"] == "Preparation"
    found = client.get(BASE + f"Encounter?patient={kap['patient'].public_id}").json()
    valid(found)
    ids = {e["resource"]["id"] for e in found["entry"]}
    assert str(kap["session"].public_id) in ids
    assert str(course["integration"].public_id) in ids
    assert found["total"] == 5  # the session and four visits (the draft too: it took place)


def test_signed_progress_notes_are_document_references(members: Any, course: Any, kap: Any) -> None:
    client = api_client(members["nurse"])
    found = client.get(BASE + f"DocumentReference?patient={kap['patient'].public_id}").json()
    valid(found)
    assert found["total"] == 3  # the draft is not part of the record yet
    note = valid(client.get(BASE + f"DocumentReference/{course['integration'].public_id}").json())
    assert note["type"]["coding"][0]["code"] == "11506-3"
    assert note["docStatus"] == "final"
    assert "Grief is not a failure." in _decoded(note)
    assert note["context"]["encounter"][0]["reference"] == (
        f"Encounter/{course['integration'].public_id}"
    )
    assert client.get(BASE + f"DocumentReference/{course['draft'].public_id}").status_code == 404


def test_an_amendment_makes_the_document_amended(
    members: Any, therapist: Any, course: Any, org_a: Any, traveller: Any
) -> None:
    url = BASE + f"DocumentReference/{course['integration'].public_id}"
    before = api_client(members["prescriber"]).get(url).json()["meta"]["versionId"]
    traveller.shift(60)
    with scope(organization=org_a):
        services.visit_amend(
            actor=therapist, visit=course["integration"], text="Homework: walk.", reason="Added"
        )
    note = api_client(members["prescriber"]).get(
        BASE + f"DocumentReference/{course['integration'].public_id}"
    )
    assert note.json()["docStatus"] == "amended"
    assert note.json()["meta"]["versionId"] != before  # an amendment is a new version
    assert "Homework: walk." in _decoded(note.json())


@pytest.mark.parametrize("role", ["prescriber", "therapist", "nurse", "compliance"])
def test_no_fhir_answer_carries_a_psychotherapy_note(
    role: str, members: Any, course: Any, kap: Any
) -> None:
    client = api_client(members[role])
    pid = kap["patient"].public_id
    for url in (
        f"Patient/{pid}/$everything",
        f"DocumentReference?patient={pid}",
        f"Encounter?patient={pid}",
        f"DocumentReference/{course['integration'].public_id}",
        f"Encounter/{course['integration'].public_id}",
    ):
        response = client.get(BASE + url)
        assert response.status_code == 200, (url, response.content)
        body = response.content.decode()
        assert "rage at the brother" not in body
        resources = [e["resource"] for e in response.json().get("entry", [])] or [response.json()]
        assert all("rage at the brother" not in _decoded(r) for r in resources)


def test_roles_without_the_record_get_no_progress_note(
    members: Any, outsider: Any, course: Any
) -> None:
    url = BASE + f"DocumentReference/{course['integration'].public_id}"
    assert api_client(members["front_desk"]).get(url).status_code == 403
    assert api_client(outsider).get(url).status_code == 404


def test_the_capability_statement_lists_document_reference(members: Any, db: Any) -> None:
    metadata = api_client(members["nurse"]).get(BASE + "metadata").json()
    types = {r["type"]: r for r in metadata["rest"][0]["resource"]}
    # Therapy notes are read-only over FHIR; create is for letters an EHR attaches (kept as
    # received, never a therapy note), and every readable type has its history.
    assert {i["code"] for i in types["DocumentReference"]["interaction"]} == {
        "read",
        "vread",
        "search-type",
        "create",
        "history-instance",
        "history-type",
    }
