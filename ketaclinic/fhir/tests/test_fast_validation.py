"""fast_validation vouches only for what fhir.resources accepts, and reads it as the model does.

- Property: over generated Observations (mostly the shapes clients send, with wrong values,
  wrong types, nulls, empty arrays and unknown elements mixed in), whatever the fast path
  accepts, `parse_resource` (the R4B model, the required bindings, the profile codes) accepts
  too, with equal values element by element; what the model refuses, the fast path leaves to
  the model, so the answer is the model's OperationOutcome.
- The usual shapes (bench.fhir's panel, the suite's weights and panels) take the fast path.
- Through the API: bad input is a 4xx OperationOutcome naming the element, nothing written; a
  create through the fast path answers and stores what the model's path does.
- The suite's own guard (settings.FHIR_CHECK_FAST_INPUT) fails when the two disagree.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import override_settings
from django_scopes import scopes_disabled
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench import fhir as bench_fhir
from conftest import api_client, audit_count
from ketaclinic.fhir import fast_validation
from ketaclinic.fhir.fast_validation import Element, difference
from ketaclinic.fhir.models import ResourceVersion, StoredResource
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import SOURCES
from ketaclinic.fhir.tests.helpers import bp_json, post, put, weight_json
from ketaclinic.fhir.validation import check_limits, parse_received, parse_resource

BASE = "/fhir/r4/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# --- generated Observations ---------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.fixed_dictionaries({"x": st.integers()}),
)


def weighted(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` 19 times in 20 (st.one_of picks its branches alike)."""
    return st.sampled_from(range(20)).flatmap(lambda n: rare if n == 0 else usual)


def maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the valid values, sometimes anything else."""
    return weighted(valid, junk)


def usually(valid: list[Any], edges: list[Any], anything: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the usual values, then edge cases, then anything of the kind."""
    return weighted(st.sampled_from(valid), st.one_of(st.sampled_from(edges), anything))


strings = usually(
    ["Vital Signs", "Systolic blood pressure", "mmHg", " ", "a\tb", "Körper"],
    ["", "\x0b", "\u2028", "a\x00b", " \x1c ", "\x85", "\n", "\x7f", "a\tb", "x" * 100_001],
    st.text(max_size=8),
)
codes = usually(
    ["85354-9", "8480-6", "8462-4", "29463-7", "8302-2", "8867-4", "mm[Hg]", "kg", "[lb_av]"],
    ["a b", "a  b", " a", "", "a\xa0b", "\x1c", "a\u2028b", "é"],
    st.text(max_size=6),
)
uris = usually(
    [LOINC, UCUM, "http://terminology.hl7.org/CodeSystem/observation-category", "urn:oid:1.2"],
    ["", "http://a b", "a\x1cb", "a\xa0b"],
    st.text(max_size=6),
)
numbers = usually(
    [120, 80, 80.5, 98.6, 1.0, 0],
    [-0.0, 1e-07, 1e22, True, "120", 10**30, -5, 1e300, 10**15, 10**15 - 1, -(10**15), 1e15],
    st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
)


@st.composite
def date_times(draw: Any) -> str:
    moment = draw(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))  # noqa: DTZ001
    )
    minutes = draw(st.integers(-14 * 60, 14 * 60))
    zone = timezone(timedelta(minutes=minutes))
    text = moment.replace(tzinfo=zone).isoformat()
    style = draw(st.integers(0, 5))
    if style == 1:
        text = moment.replace(tzinfo=UTC, microsecond=0).isoformat().replace("+00:00", "Z")
    elif style == 2:
        text = text[:10]
    elif style == 3:
        text = text[: draw(st.sampled_from([4, 7]))]
    elif style == 4:
        text = moment.isoformat()  # no offset: not FHIR
    return text


date_time_values = st.one_of(
    date_times(),
    st.sampled_from(
        [
            "2024-02-30",
            "2024-13",
            "2024-02-29T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-03-01T09:30:60Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T09:30Z",
            "2024-03-01T09:30:00.1234567Z",
            "2024-03-01T09:30:00.5+14:00",
            "2024-03-01T09:30:00-00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "0000",
        ]
    ),
)


def obj(
    required: dict[str, Any], optional: dict[str, Any], others: dict[str, Any] | None = None
) -> st.SearchStrategy:
    """An object of these elements; now and then with a required one missing, an element the
    type does not define, or one of `others` (valid elements the fast path leaves alone)."""
    base = st.fixed_dictionaries(required, optional=optional)
    extra = st.sampled_from(["extension", "id", "foo", "_code", "fhir_comments"])
    with_extra = st.tuples(base, extra, junk).map(lambda t: {**t[0], t[1]: t[2]})
    without = st.tuples(base, st.sampled_from(sorted(required) or [""])).map(
        lambda t: {k: v for k, v in t[0].items() if k != t[1] or k == "resourceType"}
    )
    rare = [with_extra, without]
    if others:
        rare.append(
            st.tuples(base, st.fixed_dictionaries({}, optional=others)).map(
                lambda t: {**t[0], **t[1]}
            )
        )
    return weighted(base, st.one_of(*rare))


codings = obj(
    {"system": maybe(uris), "code": maybe(codes)},
    {
        "display": maybe(strings),
        "version": maybe(strings),
        "userSelected": maybe(st.booleans()),
    },
)
concepts = obj(
    {"coding": maybe(st.lists(maybe(codings), min_size=1, max_size=3))}, {"text": maybe(strings)}
)
quantities = obj(
    {"value": maybe(numbers)},
    {
        "unit": maybe(strings),
        "system": maybe(uris),
        "code": maybe(codes),
    },
    {"comparator": st.sampled_from(["<", "<=", "about"])},
)
references = obj(
    {"reference": maybe(st.sampled_from(["Patient/abc", "Patient/", "#p"]) | strings)},
    {
        "display": maybe(strings),
        "type": maybe(uris),
    },
    {"identifier": st.just({"value": "123"})},
)
identifiers = obj(
    {"value": maybe(strings)},
    {
        "use": maybe(st.sampled_from(["usual", "official", "secondary", "wrong"])),
        "system": maybe(uris),
    },
)
metas = obj(
    {
        "profile": maybe(
            st.lists(
                st.sampled_from(
                    [
                        "http://hl7.org/fhir/StructureDefinition/bp",
                        "http://hl7.org/fhir/StructureDefinition/bodyweight",
                        "http://example.org/x",
                        "a b",
                    ]
                ),
                min_size=1,
                max_size=2,
            )
        ),
    },
    {},
    {"versionId": strings},
)
components = obj(
    {"code": maybe(concepts)},
    {"valueQuantity": maybe(quantities)},
    {"valueString": maybe(strings)},
)
observations = obj(
    {
        "resourceType": st.just("Observation"),
        "status": maybe(
            weighted(st.sampled_from(["final", "amended"]), st.sampled_from(["done", "Final", ""]))
        ),
        "code": maybe(concepts),
    },
    {
        "category": maybe(st.lists(maybe(concepts), min_size=1, max_size=2)),
        "subject": maybe(references),
        "effectiveDateTime": maybe(date_time_values),
        "valueQuantity": maybe(quantities),
        "component": maybe(st.lists(maybe(components), min_size=1, max_size=3)),
        "identifier": maybe(st.lists(maybe(identifiers), min_size=1, max_size=2)),
        "meta": maybe(metas),
    },
    {
        "effectiveInstant": st.sampled_from(["2024-03-01T09:30:00Z"]),
        "note": st.just([{"text": "after exercise"}]),
        "encounter": maybe(references),
        "id": maybe(st.sampled_from(["abc", "x.y-1", "A" * 64, "A" * 65, "a b", "a_b", ""])),
    },
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        found += _paths(value, (*path, key))
    return found


@st.composite
def mutated(draw: Any, base: st.SearchStrategy) -> Any:
    """A generated resource with up to two elements replaced, removed or added anywhere."""
    data = json.loads(json.dumps(draw(base)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        path = draw(st.sampled_from(_paths(data)[1:] or [()]))
        if not path:
            break
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extension", "foo", "_status", "id"]))] = draw(junk)
    return data


def _outcome(call: Any) -> Any:
    try:
        return call()
    except FhirError as error:
        return error


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(observations))
def test_what_the_fast_path_accepts_the_model_accepts_with_the_same_values(data: Any) -> None:
    data = json.loads(json.dumps(data))  # as the body arrives: JSON's own types
    full = _outcome(lambda: parse_resource(data, expected="Observation"))
    fast = fast_validation.observation(data)
    if fast is None:
        event("left to the model: " + ("refused" if isinstance(full, FhirError) else "valid"))
        return
    check_limits(data)  # what the fast path accepts keeps the input limits (no walk of its own)
    assert not isinstance(full, FhirError) or full.expressions == [
        ("Observation.code", full.expressions[0][1])  # only the profile's code is missing
    ], (data, full.expressions)
    with override_settings(FHIR_CHECK_FAST_INPUT=False):
        received = _outcome(lambda: parse_received(data, expected="Observation"))
    if isinstance(full, FhirError):
        event("fast path: the profile's code is missing")
        assert isinstance(received, FhirError)
        assert (received.status, received.expressions) == (full.status, full.expressions)
        return
    event("fast path")
    assert isinstance(received, Element)
    assert difference(fast, full) is None, data
    assert difference(received, full) is None, data


def _bench_panels(count: int) -> list[dict[str, Any]]:
    make = bench_fhir.requests({"patients": ["0f1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"], "token": ""})
    rng = random.Random(3)
    return [json.loads(make["create"](0, rng)[2] or b"") for _ in range(count)]


USUAL = [
    *_bench_panels(5),
    bp_json("abc"),
    bp_json("abc", 120.5, 80.25, when="2024-03-01"),
    weight_json("abc", 80, "kg"),
    weight_json("abc", 176.4, when="2024-03-01T09:00:00.123-05:00"),
    {
        **weight_json("abc", 80, "kg"),
        "identifier": [{"use": "official", "system": "urn:oid:1.2.3", "value": "w-1"}],
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"]},
        "effectiveDateTime": "2024-03",
    },
]


@pytest.mark.parametrize("data", USUAL)
def test_the_usual_shapes_take_the_fast_path_and_read_as_the_model(data: dict[str, Any]) -> None:
    fast = fast_validation.observation(data)
    assert fast is not None
    assert difference(fast, parse_resource(data, expected="Observation")) is None
    assert fast.id is None  # elements the type defines but the client did not send read None
    assert fast.encounter is None
    with pytest.raises(AttributeError):
        fast.no_such_element  # noqa: B018 - not an element of Observation, as on the model


WIDER = [
    {**bp_json("abc"), "id": "0f1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"},  # an update (PUT)
    {**bp_json("abc"), "encounter": {"reference": "Encounter/abc"}},  # a session's reading
]


@pytest.mark.parametrize("data", WIDER)
def test_an_id_and_an_encounter_take_the_fast_path_and_read_as_the_model(
    data: dict[str, Any],
) -> None:
    fast = fast_validation.observation(data)
    assert fast is not None
    assert difference(fast, parse_resource(data, expected="Observation")) is None


@pytest.mark.parametrize("bad", ["a b", "A" * 65, "", 7])
def test_an_invalid_id_is_left_to_the_model_which_names_it(bad: Any) -> None:
    data = {**bp_json("abc"), "id": bad}
    assert fast_validation.observation(data) is None
    with pytest.raises(FhirError) as refused:
        parse_received(data, expected="Observation")
    assert refused.value.status == 400
    assert "Observation.id" in json.dumps(refused.value.outcome())


def test_a_profile_whose_code_is_missing_is_refused_as_the_model_path_refuses_it() -> None:
    data = {**bp_json("abc"), "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bmi"]}}
    assert fast_validation.observation(data) is not None
    with pytest.raises(FhirError) as fast:
        parse_received(data, expected="Observation")
    with pytest.raises(FhirError) as full:
        parse_resource(data, expected="Observation")
    assert (fast.value.status, fast.value.expressions) == (
        full.value.status,
        full.value.expressions,
    )


# --- the guard the suite runs under (settings.FHIR_CHECK_FAST_INPUT) ------------------------------


def test_the_guard_fails_when_the_fast_path_reads_a_value_otherwise(monkeypatch: Any) -> None:
    other = fast_validation.observation(bp_json("abc", 150, 90))
    monkeypatch.setattr(fast_validation, "observation", lambda data: other)
    with override_settings(FHIR_CHECK_FAST_INPUT=True), pytest.raises(AssertionError) as failed:
        parse_received(bp_json("abc", 124, 78), expected="Observation")
    assert "Observation.component[0].valueQuantity.value" in str(failed.value)


def test_the_guard_fails_when_the_fast_path_accepts_what_the_model_refuses(
    monkeypatch: Any,
) -> None:
    accepted = fast_validation.observation(bp_json("abc"))
    monkeypatch.setattr(fast_validation, "observation", lambda data: accepted)
    with override_settings(FHIR_CHECK_FAST_INPUT=True), pytest.raises(AssertionError) as failed:
        parse_received({**bp_json("abc"), "status": 7}, expected="Observation")
    assert "refuses" in str(failed.value)


# --- through the API -------------------------------------------------------------------------------


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


def _written() -> tuple[int, ...]:
    with scopes_disabled():
        tables: list[Any] = [*SOURCES.values(), StoredResource, ResourceVersion]
        counts = [table.objects.count() for table in tables]
    return (*counts, audit_count())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "status", "element"),
    [
        ({"status": "done"}, 422, "Observation.status"),
        ({"status": None}, 400, "Observation.status"),
        ({"effectiveDateTime": "2024-02-30T10:00:00Z"}, 400, "Observation.effectiveDateTime"),
        ({"effectiveDateTime": "2024-03-01T10:00:00"}, 400, "Observation.effectiveDateTime"),
        ({"subject": {"reference": ""}}, 400, "Observation.subject.reference"),
        ({"category": []}, 201, None),  # the model allows an empty array; the chart ignores it
        ({"valueSomething": 1}, 400, "Observation.valueSomething"),
        ({"code": {"coding": [{"system": LOINC, "code": " 85354-9"}]}}, 400, "Observation.code"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_element_and_nothing_is_written(
    client: Any, patient_a: Any, change: dict[str, Any], status: int, element: str | None
) -> None:
    before = _written()
    response = post(client, BASE + "Observation", {**bp_json(str(patient_a.public_id)), **change})
    assert response.status_code == status, response.content
    if element is None:
        return
    issues = response.json()["issue"]
    assert any(element in json.dumps(issue) for issue in issues), issues
    assert _written() == before


@pytest.mark.django_db
def test_bad_component_value_is_a_400_naming_it(client: Any, patient_a: Any) -> None:
    data = bp_json(str(patient_a.public_id))
    data["component"][1]["valueQuantity"]["value"] = "eighty"
    before = _written()
    response = post(client, BASE + "Observation", data)
    assert response.status_code == 400
    expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", [])]
    assert "Observation.component.1.valueQuantity.value" in expressions
    assert _written() == before


def _without_server_parts(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("id", "meta")}


@pytest.mark.django_db
@pytest.mark.parametrize("index", range(len(USUAL)))
def test_a_create_through_the_fast_path_answers_and_stores_what_the_models_path_does(
    client: Any, patient_a: Any, monkeypatch: Any, index: int
) -> None:
    data = json.loads(json.dumps(USUAL[index]).replace("abc", str(patient_a.public_id)))
    data["subject"] = {"reference": f"Patient/{patient_a.public_id}"}
    fast = post(client, BASE + "Observation", data)
    with monkeypatch.context() as patched:
        patched.setattr(fast_validation, "observation", lambda data: None)
        slow = post(client, BASE + "Observation", data)
    assert (fast.status_code, slow.status_code) == (201, 201), (fast.content, slow.content)
    assert _without_server_parts(fast.json()) == _without_server_parts(slow.json())
    with scopes_disabled():
        kept = [
            StoredResource.objects.get(resource_id=r.json()["id"]).resource for r in (fast, slow)
        ]
        rows = [_chart_row(r.json()["id"]) for r in (fast, slow)]
    assert kept[0] == kept[1]
    assert rows[0] == rows[1]
    assert rows[0]


def _chart_row(public_id: str) -> dict[str, Any]:
    """The chart row's recorded columns (all but its ids and times of writing)."""
    for model in SOURCES.values():
        found = model.objects.filter(public_id=public_id).values().first()
        if found is not None:
            skip = {"id", "public_id", "created_at", "updated_at"}
            return {k: v for k, v in found.items() if k not in skip}
    return {}


@pytest.fixture
def accepted(monkeypatch: Any) -> list[Any]:
    """What the fast path vouched for during the test (None where it left the body to the
    model)."""
    seen: list[Any] = []
    real = fast_validation.observation

    def spy(data: Any) -> Any:
        seen.append(real(data))
        return seen[-1]

    monkeypatch.setattr(fast_validation, "observation", spy)
    return seen


@pytest.mark.django_db
def test_a_transaction_bundles_observations_take_the_fast_path(
    client: Any, patient_a: Any, accepted: list[Any]
) -> None:
    entry = {
        "resource": bp_json(str(patient_a.public_id)),
        "request": {"method": "POST", "url": "Observation"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}
    response = post(client, BASE, bundle)
    assert response.status_code == 200, response.content
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    assert len(accepted) == 2
    assert all(a is not None for a in accepted)


@pytest.mark.django_db
def test_an_update_takes_the_fast_path_and_answers_as_the_models_path(
    client: Any, patient_a: Any, monkeypatch: Any, accepted: list[Any]
) -> None:
    ids = [post(client, BASE + "Observation", bp_json(str(patient_a.public_id))).json()["id"]]
    ids.append(post(client, BASE + "Observation", bp_json(str(patient_a.public_id))).json()["id"])
    withdrawn = [
        {**bp_json(str(patient_a.public_id)), "id": i, "status": "entered-in-error"} for i in ids
    ]
    fast = put(client, f"{BASE}Observation/{ids[0]}", withdrawn[0])
    assert accepted[-1] is not None
    with monkeypatch.context() as patched:
        patched.setattr(fast_validation, "observation", lambda data: None)
        slow = put(client, f"{BASE}Observation/{ids[1]}", withdrawn[1])
    assert (fast.status_code, slow.status_code) == (200, 200), (fast.content, slow.content)
    assert fast.json()["status"] == "entered-in-error"
    assert _without_server_parts(fast.json()) == _without_server_parts(slow.json())
