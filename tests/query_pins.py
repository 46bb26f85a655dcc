"""Every JSON API and FHIR request any test makes is held to its route's query pin (issue 13).

The test client is wrapped once for the whole suite (conftest.py): each request to /api/ or
/fhir/ counts its SQL statements as `django_assert_max_num_queries` does, and fails the test when
the count is above the pin of its route, or when the route has no pin at all. So every write
route is pinned by the tests that already exercise it, on the success path and on the refusals
alike, on SQLite and on PostgreSQL, and tests/test_query_pins.py checks that every route the API
declares and every FHIR interaction the registry declares has a pin.

A route's key is its method and path template: the OpenAPI path for the JSON API
(`POST /api/v1/patients/{patient_id}/weights`), the resource type kept for FHIR
(`PUT /fhir/r4/Observation/{id}`). A pin is the most statements any test's request of the route
made when pinned (both databases); a count above it means a new query per row or a lost
`select_related`, not a larger number. A route that got cheaper: lower its pin.

Not counted: the token's `last_used_at` UPDATE, written at most once a minute per token
(accounts.identity_cache), which a long test would otherwise see at an arbitrary request.

`KETACLINIC_RECORD_QUERY_PINS=DIR` records instead of checking: each test process writes the most
statements seen per route to DIR (a JSON file per process) for `python -m tests.query_pins DIR`
to merge into a new table.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

RECORD_ENV = "KETACLINIC_RECORD_QUERY_PINS"
_BOOKKEEPING = re.compile(r'^UPDATE "accounts_apitoken" SET "last_used_at"', re.IGNORECASE)
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
# FHIR path parameters and how a key spells them (the resource type is kept as sent).
_FHIR_PARAMETERS = {"resource_id": "{id}", "vid": "{vid}", "group_id": "{id}",
                    "export_id": "{id}", "name": "{name}"}  # fmt: skip

_recorded: dict[str, int] = {}


def route_key(method: str, path: str) -> str | None:
    """The pin key of a request, or None for a path that is not an API or FHIR route."""
    if not path.startswith(("/api/", "/fhir/")):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if match.namespace == "api":
        return f"{method} /" + _CONVERTER.sub(r"{\1}", match.route)
    if match.namespace != "fhir" or "rest" in match.kwargs:
        return None
    parts = path.split("/")
    for name, spelled in _FHIR_PARAMETERS.items():
        value = match.kwargs.get(name)
        if value is not None:
            parts = [spelled if part == str(value) else part for part in parts]
    return f"{method} {'/'.join(parts)}"


def counted(queries: list[dict[str, Any]]) -> int:
    return sum(1 for query in queries if not _BOOKKEEPING.match(query["sql"]))


def install() -> None:
    """Wrap the test client's request (once per process)."""
    if getattr(Client.request, "query_pinned", False):
        return
    original = Client.request
    recording = os.environ.get(RECORD_ENV)

    def request(self: Client, **environ: Any) -> Any:
        key = route_key(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        if key is None:
            return original(self, **environ)
        captured = CaptureQueriesContext(connection)
        try:
            captured.__enter__()
        except RuntimeError:  # pytest-django refuses this test the database: nothing to count
            return original(self, **environ)
        try:
            response = original(self, **environ)
        finally:
            captured.__exit__(None, None, None)
        count = counted(captured.captured_queries)
        if recording:
            _recorded[key] = max(count, _recorded.get(key, 0))
            return response
        from tests.query_pin_table import PINS

        pin = PINS.get(key)
        if pin is None:
            raise AssertionError(
                f"{key} has no query pin: add it to tests/query_pin_table.py ({count} statements "
                f"in this request)"
            )
        if count > pin:
            statements = "\n".join(q["sql"][:200] for q in captured.captured_queries)
            raise AssertionError(
                f"{key} made {count} SQL statements, pinned at {pin} "
                f"(tests/query_pin_table.py):\n{statements}"
            )
        return response

    request.query_pinned = True  # type: ignore[attr-defined]
    Client.request = request  # type: ignore[method-assign]


def save_recorded(worker: str) -> None:
    directory = os.environ.get(RECORD_ENV)
    if directory and _recorded:
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{worker}-{os.getpid()}.json").write_text(json.dumps(_recorded, indent=1))


def merge(directory: Path) -> dict[str, int]:
    merged: dict[str, int] = {}
    for file in sorted(directory.glob("*.json")):
        for key, count in json.loads(file.read_text()).items():
            merged[key] = max(count, merged.get(key, 0))
    return dict(sorted(merged.items()))


if __name__ == "__main__":
    for key, count in merge(Path(sys.argv[1])).items():
        print(f"    {key!r}: {count},")
