"""The Observation search's SQL is built once per shape and reused with each request's own values
(core.shapes, fhir/search_shapes.py, issue 13). Two clinics search with the same shapes: each gets
its own patients' Observations, in the order and pages the ORM-built query gives, and the second
clinic's searches run on the SQL the first one's built (the tenant is a bound value, never part
of the SQL text). The test settings also compare every shaped query with the ORM's own
(SQL_SHAPES_CHECKED)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.http import QueryDict
from django.test import Client
from django_scopes import scope

from conftest import actor_for, api_client, make_member, make_patient
from ketaclinic.accounts.actor import Actor
from ketaclinic.core import clock, shapes
from ketaclinic.fhir.registry import HANDLERS, ObservationHandler
from ketaclinic.fhir.search import parse_query
from ketaclinic.measures import services as measures
from ketaclinic.measures.tests.builders import phq9_total
from ketaclinic.patients import services as chart

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
LOINC = "http://loinc.org"
DAYS = (1, 20, 400)  # days ago: two within the last year, one before


def _clinic(actor: Actor) -> str:
    """A patient with a weight, a blood pressure and a PHQ-9 on each of DAYS; its id."""
    with scope(organization=actor.organization):
        patient = make_patient(actor)
        for i, days in enumerate(DAYS):
            when = clock.now() - timedelta(days=days)
            chart.weight_record(
                actor=actor, patient=patient, value="80", unit="kg", measured_at=when
            )
            measures.response_record(
                actor=actor,
                patient=patient,
                instrument_id="phq9",
                answers=phq9_total(4 + i),
                completed_at=when + timedelta(minutes=5),
            )
            chart.vital_sign_record(
                actor=actor,
                patient=patient,
                kind="bp",
                value=128,
                value_diastolic=82,
                unit="mm[Hg]",
                code="85354-9",
                measured_at=when + timedelta(minutes=10),
            )
    return str(patient.public_id)


def _searches(patient: str) -> list[dict[str, str]]:
    since = (clock.now() - timedelta(days=365)).date().isoformat()
    return [
        {"patient": patient, "code": f"{LOINC}|44261-6"},
        {"patient": patient, "code": f"{LOINC}|85354-9"},
        {"patient": patient, "date": f"ge{since}", "_count": "10"},  # pages by _cursor
        {"subject": f"Patient/{patient}", "date": f"lt{since}", "_sort": "date"},
        {"patient": patient, "category": "vital-signs", "date": f"ne{since}", "_count": "3"},
    ]


def _pages(client: Client, params: dict[str, str]) -> list[list[str]]:
    """The ids of every page the search's next links lead to."""
    pages, url = [], f"{BASE}Observation?{urlencode(params)}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        bundle = response.json()  # every resource validated as emitted (test settings)
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), "")
        url = urlsplit(url).path + "?" + urlsplit(url).query if url else ""
        assert len(pages) < 20
    return pages


def _built_pages(actor: Actor, params: dict[str, str]) -> list[list[str]]:
    """The same pages from the union the ORM builds for each request (the path before shapes)."""
    handler = HANDLERS["Observation"].base  # type: ignore[attr-defined]  # beside received ones
    assert isinstance(handler, ObservationHandler)
    pages: list[list[str]] = []
    query = QueryDict(urlencode(params))
    with scope(organization=actor.organization):
        while True:
            search = parse_query(query, allowed=handler.search_params, sorts=handler.sorts)
            descending = (search.sort or "-date").startswith("-")
            page = handler._search_built(actor, search, descending)
            pages.append([r["id"] for r in page.resources])
            if not page.next_cursor:
                return pages
            query = QueryDict(urlencode({**params, "_cursor": page.next_cursor}))


def test_two_clinics_share_each_shape_and_get_only_their_own_rows(
    members: dict[str, Any], org_b: Any, django_assert_max_num_queries: Any
) -> None:
    shapes.clear()
    a = actor_for(members["prescriber"], "fhir")
    b = actor_for(make_member(org_b, "prescriber", username="b-prescriber"), "fhir")
    clients = {"a": api_client(members["prescriber"]), "b": api_client(b.membership)}
    patients = {"a": _clinic(a), "b": _clinic(b)}
    found: dict[str, list[list[list[str]]]] = {}
    kept = 0
    for name, actor in (("a", a), ("b", b)):
        found[name] = []
        for params in _searches(patients[name]):
            pages = _pages(clients[name], params)
            assert pages == _built_pages(actor, params), params
            found[name].append(pages)
        shaped = len(shapes._shapes)
        if name == "a":
            # Five searches; two of them page on after a _cursor (a shape of their own).
            assert shaped == 7
        else:
            assert shaped == kept, "clinic B's searches built shapes of their own"
        kept = shaped
    ids = {name: {i for search in found[name] for page in search for i in page} for name in found}
    assert ids["a"]
    assert ids["b"]
    assert not ids["a"] & ids["b"]
    # Per search and page, the Observations of the clinic's patient that match: a day holds a
    # weight, a blood pressure and a PHQ-9 (its total and nine items), 12 Observations.
    counts = [[len(i) for i in pages] for pages in found["b"]]
    assert counts[:2] == [[3], [3]]  # three PHQ-9 totals; three blood pressures
    assert counts[2] == [10, 10, 4]  # two days in the last year
    assert counts[3:] == [[12], [3, 3]]  # the day before; every vital sign (not on `since`)
    # Another clinic's patient is nobody here, in a shape both clinics have used.
    outside = {"patient": patients["a"], "code": f"{LOINC}|85354-9"}
    assert _pages(clients["b"], outside) == [[]]
    # Queries: token, patient keys, the union, the page's rows per table and kept JSON, audit.
    with django_assert_max_num_queries(12):
        assert _pages(clients["b"], _searches(patients["b"])[0]) == found["b"][0]
