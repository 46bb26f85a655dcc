"""Keyset (cursor) paging for every searchable type (issue 14 item 3): a client paging through a
search while another client inserts sees no resource twice and skips none, because each `next`
link carries the last row's sort key (`_cursor`), not a position. One small case per type;
Observation's 1,000-row case is in test_history.py."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from conftest import api_client
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.helpers import patient_json, post, valid

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
ORIGINALS = 7
PAGE = 3
SLOT_PAGE = 15  # more than the slots one infusion visit takes (12)

Builder = Callable[[str, int], dict[str, Any]]


def _named(i: int) -> dict[str, Any]:
    # Family names before and after the others' (the default Patient sort is by family name).
    return patient_json(name=[{"family": f"{'AMZ'[i % 3]}paging{i:03d}", "given": ["Kim"]}])


# type -> (builder(patient id, i), searched per patient)
CASES: dict[str, tuple[Builder, bool]] = {
    "Patient": (lambda pid, i: _named(i), False),
    "Condition": (lambda pid, i: rich.condition(pid), True),
    "AllergyIntolerance": (lambda pid, i: rich.allergy(pid), True),
    "MedicationStatement": (lambda pid, i: rich.medication_statement(pid), True),
    "MedicationRequest": (lambda pid, i: rich.medication_request(pid), True),
    "Observation": (lambda pid, i: rich.lab(pid), True),  # kept as received: the second phase
    "Encounter": (lambda pid, i: rich.encounter(pid), True),
    "DocumentReference": (lambda pid, i: rich.letter(pid), True),
    "Practitioner": (lambda pid, i: rich.practitioner(), False),
    "PractitionerRole": (lambda pid, i: rich.practitioner_role(), False),
    "Organization": (lambda pid, i: rich.organization(), False),
    "Location": (lambda pid, i: rich.location(), False),
    "Medication": (lambda pid, i: rich.medication(), False),
    "Provenance": (lambda pid, i: rich.provenance(f"Patient/{pid}"), False),
}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _walk(client: Client, url: str, insert: Callable[[int], object]) -> tuple[list[str], int]:
    """Follow the next links to the end, inserting after each page; (ids seen, pages)."""
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = valid(response.json())
        seen += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
        pages += 1
        insert(pages)
        url = next((_path(x["url"]) for x in page["link"] if x["relation"] == "next"), "")
        assert not url or "_cursor=" in url, f"next page by position: {url}"
        assert pages < 20
    return seen, pages


@pytest.mark.parametrize("resource_type", sorted(CASES))
def test_paging_is_stable_while_another_client_inserts(
    members: dict[str, Any], resource_type: str
) -> None:
    client = api_client(members["prescriber"])
    other = api_client(members["prescriber"])  # another client: its own token
    build, per_patient = CASES[resource_type]
    made = post(client, BASE + "Patient", patient_json())
    assert made.status_code == 201, made.content
    pid = made.json()["id"]

    def create(who: Client, i: int) -> str:
        response = post(who, BASE + resource_type, build(pid, i))
        assert response.status_code == 201, response.content
        return str(response.json()["id"])

    originals = {create(client, i) for i in range(ORIGINALS)}
    if resource_type == "Patient":
        originals.add(pid)
    query = f"patient={pid}&" if per_patient else ""
    seen, pages = _walk(
        client, f"{BASE}{resource_type}?{query}_count={PAGE}", lambda n: create(other, 100 + n)
    )
    assert pages >= 3
    assert len(seen) == len(set(seen)), "a resource was served twice"
    assert originals <= set(seen), f"{len(originals - set(seen))} resources were skipped"


def test_audit_event_paging_is_stable_while_requests_are_audited(
    members: dict[str, Any],
) -> None:
    """Every request writes an AuditEvent: paging them is paging a table that grows meanwhile."""
    compliance = api_client(members["compliance"])
    client = api_client(members["prescriber"])
    for _ in range(ORIGINALS):
        assert post(client, BASE + "Patient", patient_json()).status_code == 201
    before = compliance.get(BASE + "AuditEvent", {"_count": 200}).json()
    originals = {e["resource"]["id"] for e in before["entry"]}
    assert len(originals) >= ORIGINALS

    seen, pages = _walk(
        compliance,
        f"{BASE}AuditEvent?_count={PAGE}",
        lambda n: client.get(BASE + "Patient", {"_count": 1}),
    )
    assert len(seen) == len(set(seen)), "an event was served twice"
    assert originals <= set(seen)


def test_a_cursor_from_elsewhere_is_refused(members: dict[str, Any]) -> None:
    client = api_client(members["prescriber"])
    response = client.get(BASE + "Condition", {"_cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400
    assert "_cursor" in response.json()["issue"][0]["diagnostics"]


def test_questionnaire_paging_is_stable_while_an_instrument_is_shipped(
    members: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The instrument library grows when a release ships an instrument: a client paging
    through it meanwhile (the new id sorts first) sees none twice and skips none."""
    from ketaclinic.measures import definitions

    client = api_client(members["prescriber"])
    originals = {e["resource"]["id"] for e in client.get(BASE + "Questionnaire").json()["entry"]}
    shipped = tmp_path / "aaa-paging.v1.json"
    gad7 = next(f for f in definitions._instrument_files() if f.name == "gad7.v1.json")
    shipped.write_text(gad7.read_text().replace("gad7", "aaa-paging"))
    files = definitions._instrument_files()

    def ship(page: int) -> None:
        if page == 1:
            monkeypatch.setattr(definitions, "_instrument_files", lambda: [shipped, *files])
            # A fresh cache for the grown library; undo() puts back the original cache, so the
            # instrument objects every other test holds stay the ones served.
            fresh = functools.cache(definitions.load_instruments.__wrapped__)
            monkeypatch.setattr(definitions, "load_instruments", fresh)

    try:
        seen, pages = _walk(client, f"{BASE}Questionnaire?_count={PAGE}", ship)
        assert "aaa-paging" in {i.id for i in definitions.current_instruments()}
    finally:
        monkeypatch.undo()
    assert "aaa-paging" not in {i.id for i in definitions.current_instruments()}
    assert pages >= 3
    assert len(seen) == len(set(seen)), "a questionnaire was served twice"
    assert originals <= set(seen)


def test_slot_paging_is_stable_while_another_client_books_and_cancels(
    members: dict[str, Any], org_a: Any
) -> None:
    """Free slots are computed: a visit booked while a client pages takes slots out, and its
    cancellation puts them back. Paged by key (start, chair), the client sees each free slot
    once and skips none (by position the booking shifted the next page past unseen slots)."""
    import time_machine
    from django_scopes import scope

    from conftest import actor_for, make_patient
    from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

    with time_machine.travel(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), tick=False):
        with scope(organization=org_a):
            open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
            types(org_a)
        seat = chair(org_a, 1)
        reader = api_client(members["front_desk"])
        other = api_client(members["front_desk"])
        query = f"{BASE}Slot?schedule=Schedule/{seat.public_id}&start=2026-03-03"
        every = reader.get(query + "&_count=200").json()["entry"]
        originals = [e["resource"]["id"] for e in every]
        patient = make_patient(actor_for(members["prescriber"]))
        booked: dict[str, str] = {}

        def book_then_cancel(page: int) -> None:
            if page == 1:
                response = post(
                    other,
                    BASE + "Appointment",
                    {
                        "resourceType": "Appointment",
                        "status": "booked",
                        "slot": [{"reference": f"Slot/{originals[0]}"}],
                        "participant": [
                            {
                                "actor": {"reference": f"Patient/{patient.public_id}"},
                                "status": "accepted",
                            },
                            {
                                "actor": {"reference": f"Location/{seat.public_id}"},
                                "status": "accepted",
                            },
                        ],
                    },
                )
                assert response.status_code == 201, response.content
                booked.update(response.json())
                left = {
                    e["resource"]["id"] for e in reader.get(query + "&_count=200").json()["entry"]
                }
                taken = set(originals) - left
                assert taken
                assert taken <= set(originals[:SLOT_PAGE])
            elif page == 2:
                cancel = {**booked, "status": "cancelled", "cancelationReason": {"text": "ill"}}
                response = other.put(
                    BASE + f"Appointment/{booked['id']}",
                    json.dumps(cancel),
                    content_type="application/fhir+json",
                )
                assert response.status_code == 200, response.content

        seen, pages = _walk(reader, f"{query}&_count={SLOT_PAGE}", book_then_cancel)
    assert pages >= 3
    assert len(seen) == len(set(seen)), "a slot was served twice"
    assert set(originals) <= set(seen), "a free slot was skipped"
