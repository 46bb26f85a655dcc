"""The suite-wide query pins (tests/query_pins.py): every route has one, no pin outlives its
route, and a request above its pin fails the test that made it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from conftest import api_client
from ketaclinic.fhir.registry import HANDLERS
from tests.query_pin_table import PINS
from tests.query_pins import route_key
from tests.test_phi_audit_routes import _api_operations

FHIR = "/fhir/r4"
# What each interaction the registry declares is, as a request.
INTERACTION_KEYS = {
    "read": "GET {base}/{type}/{{id}}",
    "search-type": "GET {base}/{type}",
    "create": "POST {base}/{type}",
    "update": "PUT {base}/{type}/{{id}}",
    "delete": "DELETE {base}/{type}/{{id}}",
}
SYSTEM_KEYS = (
    f"GET {FHIR}/metadata",
    f"POST {FHIR}/",  # transaction and batch Bundles
    f"GET {FHIR}/Patient/{{id}}/$everything",
    f"GET {FHIR}/_history",
    f"GET {FHIR}/$export",
    f"GET {FHIR}/Patient/$export",
    f"GET {FHIR}/$export-status/{{id}}",
    f"GET {FHIR}/$export-file/{{id}}/{{name}}",
)


def _declared_fhir_keys() -> set[str]:
    keys = set(SYSTEM_KEYS)
    for resource_type, handler in HANDLERS.items():
        for interaction in handler.interactions:
            keys.add(INTERACTION_KEYS[interaction].format(base=FHIR, type=resource_type))
    return keys


def test_every_api_route_and_fhir_interaction_has_a_query_pin() -> None:
    api = {f"{method.upper()} {path}" for method, path in _api_operations()}
    missing = sorted((api | _declared_fhir_keys()) - set(PINS))
    assert len(api) > 100
    assert not missing, "routes without a query pin (no test makes this request): " + ", ".join(
        missing
    )


def test_no_pin_outlives_its_route() -> None:
    """Each pin's path, its parameters filled in, still resolves to the route it names."""
    stale = []
    for key in PINS:
        method, template = key.split(" ", 1)
        parts = re.split(r"\{\w+\}", template)
        filled = [str(uuid.UUID(int=n)) for n in range(1, len(parts))]
        path = "".join(p + f for p, f in zip(parts, [*filled, ""], strict=True))
        if route_key(method, path) != key:
            stale.append(key)
    assert not stale, "pins of routes that no longer exist: " + ", ".join(stale)


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", "/api/v1/patients/0b4e28ba-2fa1-11d2-883f-0016d3cca427/weights",
         "POST /api/v1/patients/{patient_id}/weights"),
        ("PUT", "/api/v1/patients/0b4e28ba-2fa1-11d2-883f-0016d3cca427/contact/sms",
         "PUT /api/v1/patients/{patient_id}/contact/{channel}"),
        ("GET", "/fhir/r4/Observation/abc-1/_history/2", "GET /fhir/r4/Observation/{id}/_history/{vid}"),
        ("PUT", "/fhir/r4/Patient/abc-1", "PUT /fhir/r4/Patient/{id}"),
        ("POST", "/fhir/r4/", "POST /fhir/r4/"),
        ("GET", "/portal/", None),
        ("GET", "/fhir/r4/not/a/route/at/all", None),
    ],
)  # fmt: skip
def test_a_request_is_keyed_by_its_route_template(method: str, path: str, key: str | None) -> None:
    assert route_key(method, path) == key


@pytest.mark.django_db
def test_a_request_above_its_pin_fails_the_test_that_made_it(
    members: dict[str, Any], patient_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api_client(members["prescriber"])
    url = f"/api/v1/patients/{patient_a.public_id}"
    assert client.get(url).status_code == 200  # within its pin
    monkeypatch.setitem(PINS, "GET /api/v1/patients/{patient_id}", 0)
    with pytest.raises(AssertionError, match=r"GET /api/v1/patients/\{patient_id\} made \d+ SQL"):
        client.get(url)
    monkeypatch.delitem(PINS, "GET /api/v1/patients/{patient_id}")
    with pytest.raises(AssertionError, match="has no query pin"):
        client.get(url)
