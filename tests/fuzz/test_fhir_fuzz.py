"""FHIR fuzzing: thousands of generated payloads against /fhir/r4/, none may be answered >= 500.

Payloads start from valid resources of every supported type (and Bundles of them) and are then
mutated by hypothesis: elements replaced by hostile values (huge and tiny numbers, control
characters, long strings, wrong types, deep nesting), removed, or added. Searches get generated
parameters. Requests go through Django's in-process test client (no sockets) so the fixed budget,
FUZZ_EXAMPLES (default 5,000, the acceptance line of issue 12), stays cheap; CI runs it on SQLite
and on PostgreSQL with the derandomized "ci" hypothesis profile, so a red run replays exactly.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import api_client
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.tests.helpers import FHIR, bp_json, patient_json, weight_json

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5000"))
LOINC = "http://loinc.org"


def _seeds(patient_id: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{patient_id}"}
    return [
        patient_json(
            identifier=[{"system": "urn:ketaclinic:mrn", "value": "MRN-1"}],
            telecom=[{"system": "phone", "value": "555-0100"}],
            address=[{"line": ["1 Main St"], "city": "Springfield"}],
            communication=[{"language": {"coding": [{"code": "en"}]}}],
        ),
        weight_json(patient_id, 165),
        bp_json(patient_id),
        {
            "resourceType": "Condition",
            "subject": subject,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "F32.2",
                        "display": "Major depressive disorder",
                    }
                ]
            },
            "onsetDateTime": "2020-01-01",
        },
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "subject": subject,
            "medicationCodeableConcept": {
                "text": "sertraline",
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "36437"}
                ],
            },
            "dosage": [{"text": "50 mg daily"}],
            "effectivePeriod": {"start": "2024-01-01"},
        },
        {
            "resourceType": "AllergyIntolerance",
            "patient": subject,
            "code": {"text": "penicillin"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "reaction": [{"manifestation": [{"text": "hives"}], "severity": "mild"}],
        },
        {
            "resourceType": "Encounter",
            "status": "planned",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            "period": {"start": "2026-03-02T15:00:00+00:00"},
        },
        {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "questionnaire": "http://loinc.org/q/44249-1",
            "subject": subject,
            "authored": "2026-03-01T10:00:00+00:00",
            "item": [{"linkId": "1", "answer": [{"valueInteger": 2}]}],
        },
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "44261-6"}]},
            "subject": subject,
            "effectiveDateTime": "2026-03-01",
            "valueInteger": 14,
        },
    ]


# --- hostile values -------------------------------------------------------------------------------

_STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\x1b[31m",
            "\ud7ff\ufffe",
            "1e30",
            "NaN",
            "-0",
            "2026-02-30",
            "2026-13-01T25:61:00Z",
            "0001-01-01",
            "9999-12-31T23:59:59+14:00",
            "Patient/",
            "Patient/00000000-0000-0000-0000-000000000000",
            "#missing",
            "urn:uuid:not-a-uuid",
            "http://loinc.org",
            "85354-9",
            "29463-7",
            "[lb_av]",
            "mm[Hg]",
            "entered-in-error",
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            "%00",
        ]
    ),
    st.sampled_from([17, 33, 65, 101, 201, 256, 100_001]).map(lambda n: "x" * n),
)
_NUMBERS = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e30, -1e30, 1e-30, 10**15, 10**40, 2**31, 2**63, 0.005, 999999.995]),
)
_LEAVES = st.one_of(st.none(), st.booleans(), _NUMBERS, _STRINGS)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
    max_leaves=6,
)


@functools.cache
def _deep_json(depth: int) -> str:
    value: dict[str, Any] = {"url": "http://example.org/x", "valueString": "leaf"}
    for _ in range(depth):
        value = {"url": "http://example.org/x", "extension": [value]}
    return json.dumps(value)


_HOSTILE = st.one_of(
    _VALUES, st.sampled_from([10, 40, 70, 130]).map(lambda depth: json.loads(_deep_json(depth)))
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _mutate(document: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action == "replace" else document
    parent = document
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return document
    last = path[-1]
    try:
        if action == "replace":
            parent[last] = value
        elif action == "delete":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][f"extra{len(parent[last])}"] = value
        elif isinstance(parent[last], list):
            parent[last].append(value)
        else:
            parent[last] = value
    except (KeyError, IndexError, TypeError):
        pass
    return document


@st.composite
def mutated(draw: Any, seeds: list[dict[str, Any]]) -> Any:
    document = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        document = _mutate(document, path, action, draw(_HOSTILE))
    return document


@st.composite
def requests(draw: Any, seeds: list[dict[str, Any]], ids: dict[str, str]) -> tuple[str, ...]:
    """One request: (method, path, body or query JSON)."""
    kind = draw(
        st.sampled_from(["create"] * 4 + ["update"] * 2 + ["bundle"] * 3 + ["search"] * 2 + ["raw"])
    )
    if kind == "create":
        document = draw(mutated(seeds))
        resource_type = document.get("resourceType") if isinstance(document, dict) else None
        target = (
            resource_type
            if isinstance(resource_type, str) and resource_type.isalpha()
            else "Patient"
        )
        return ("POST", BASE + target, json.dumps(document))
    if kind == "update":
        document = draw(mutated(seeds))
        resource_type = document.get("resourceType") if isinstance(document, dict) else None
        target = (
            resource_type
            if isinstance(resource_type, str) and resource_type in HANDLERS
            else "Patient"
        )
        resource_id = draw(st.sampled_from([ids.get(target, "x"), str(uuid.uuid4()), "abc"]))
        if isinstance(document, dict) and draw(st.booleans()):
            document["id"] = resource_id
        return ("PUT", f"{BASE}{target}/{resource_id}", json.dumps(document))
    if kind == "bundle":
        entries = []
        for index in range(draw(st.integers(min_value=0, max_value=3))):
            resource = draw(mutated(seeds))
            resource_type = (
                resource.get("resourceType") if isinstance(resource, dict) else "Patient"
            )
            entries.append(
                {
                    "fullUrl": draw(
                        st.sampled_from(
                            [
                                f"urn:uuid:{uuid.UUID(int=index)}",
                                "urn:uuid:" + str(uuid.UUID(int=0)),
                            ]
                        )
                    ),
                    "resource": resource,
                    "request": {
                        "method": draw(st.sampled_from(["POST", "PUT", "GET", "DELETE"])),
                        "url": str(resource_type),
                    },
                }
            )
        bundle: Any = {
            "resourceType": "Bundle",
            "type": draw(st.sampled_from(["transaction", "batch"])),
            "entry": entries,
        }
        if draw(st.booleans()):
            bundle = _mutate(
                bundle, draw(st.sampled_from(_paths(bundle))), "replace", draw(_HOSTILE)
            )
        return ("POST", BASE, json.dumps(bundle))
    if kind == "search":
        resource_type = draw(st.sampled_from(sorted(HANDLERS)))
        names = [*HANDLERS[resource_type].search_params, "_count", "_sort", "_offset", "bogus"]
        params = draw(
            st.dictionaries(
                st.sampled_from(names), _STRINGS.map(str) | _NUMBERS.map(str), max_size=3
            )
        )
        return ("GET", BASE + resource_type, json.dumps(params))
    body = draw(
        st.one_of(st.binary(max_size=64).map(lambda b: b.decode("latin-1")), st.text(max_size=64))
    )
    return ("POST", BASE + draw(st.sampled_from(["Patient", "Observation", ""])), body)


@pytest.mark.long
def test_generated_fhir_payloads_never_get_a_server_error(members: dict[str, Any]) -> None:
    client: Client = api_client(members["prescriber"])
    patient_id = client.post(
        BASE + "Patient", json.dumps(patient_json()), content_type=FHIR
    ).json()["id"]
    seeds = _seeds(patient_id)
    ids = {"Patient": patient_id}
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(request=requests(seeds, ids))
    def one_request(request: tuple[str, ...]) -> None:
        method, path, payload = request
        if method == "GET":
            response = client.get(path, json.loads(payload))
        elif method == "PUT":
            response = client.put(path, data=payload, content_type=FHIR)
        else:
            response = client.post(path, data=payload, content_type=FHIR)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append(f"{method} {path} {payload[:2000]}")

    one_request()
    print(
        f"FHIR fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}"
    )
    assert not server_errors, "\n".join(server_errors[:5])
    assert sum(statuses.values()) >= FUZZ_EXAMPLES
