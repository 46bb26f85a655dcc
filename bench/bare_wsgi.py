"""Second baseline: a bare WSGI handler (no Django) for `POST /api/v1/patients/<id>/weights`
and `POST /api/v1/sessions/<id>/vitals`.

It does what the API views do at the database and HTTP level and nothing else: checks the
bearer token (SHA-256, one indexed SELECT), parses the JSON body, runs the same transaction
(bench.sqlrows: WeightWriter, VitalsWriter) and answers 201 with JSON. Served by the same
gunicorn with the same workers, so the gap to ketaclinic is Django, django-ninja, middleware and
the ORM.

Configured by the environment: BENCH_DB (the SQLite file), or BENCH_DATABASE_URL (PostgreSQL:
the weight write only, through bench.pgrows with psycopg).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bench.sqlrows import VitalsWriter, WeightWriter, connect

ROUTE = re.compile(r"^/api/v1/patients/([0-9a-fA-F-]{32,36})/weights$")
VITALS = re.compile(r"^/api/v1/sessions/([0-9a-fA-F-]{32,36})/vitals$")
_state: dict[str, Any] = {}  # one connection per worker process, opened on first use


def _writer() -> tuple[sqlite3.Connection, WeightWriter]:
    if "writer" not in _state:
        conn = connect(os.environ["BENCH_DB"])
        _state["conn"], _state["writer"] = conn, WeightWriter(conn)
    return _state["conn"], _state["writer"]


def _vitals_writer() -> VitalsWriter:
    conn, _ = _writer()
    if "vitals" not in _state:
        _state["vitals"] = VitalsWriter(conn, os.environ.get("BENCH_VITALS_USER", "nurse"))
    return _state["vitals"]


def _reply(start: Callable[..., Any], status: str, body: dict) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _pg_writer() -> Any:
    if "pg" not in _state:
        from bench.pgrows import PgWeightWriter
        from bench.pgrows import connect as pg_connect

        _state["pg"] = PgWeightWriter(pg_connect(os.environ["BENCH_DATABASE_URL"]))
    return _state["pg"]


def _pg_application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The weight write on PostgreSQL: token, body, the same transaction, 201."""
    match = ROUTE.match(environ.get("PATH_INFO", ""))
    if not match or environ["REQUEST_METHOD"] != "POST":
        return _reply(start_response, "404 Not Found", {"detail": "Not found."})
    writer = _pg_writer()
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    secret = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    if writer.token_membership(hashlib.sha256(secret.encode()).hexdigest()) is None:
        return _reply(start_response, "401 Unauthorized", {"detail": "Bearer token required."})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length))
        value = Decimal(str(payload["value"]))
        if value <= 0 or payload.get("unit", "kg") != "kg":
            raise ValueError
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return _reply(start_response, "422 Unprocessable Entity", {"detail": "Invalid."})
    try:
        weight = writer.write(match.group(1), value, environ.get("REMOTE_ADDR", ""))
    except LookupError:
        return _reply(start_response, "404 Not Found", {"detail": "No such patient."})
    return _reply(start_response, "201 Created", weight)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return _reply(start_response, "200 OK", {"status": "ok"})
    if os.environ.get("BENCH_DATABASE_URL"):
        return _pg_application(environ, start_response)
    match = ROUTE.match(path)
    vitals = VITALS.match(path)
    if not (match or vitals) or environ["REQUEST_METHOD"] != "POST":
        return _reply(start_response, "404 Not Found", {"detail": "Not found."})
    conn, writer = _writer()
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    secret = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    token = conn.execute(
        "SELECT membership_id FROM accounts_apitoken"
        " WHERE key_hash = ? AND revoked_at IS NULL AND expires_at > ?",
        (hashlib.sha256(secret.encode()).hexdigest(), now),
    ).fetchone()
    if token is None:
        return _reply(start_response, "401 Unauthorized", {"detail": "Bearer token required."})
    if vitals:
        return _vitals(environ, start_response, vitals.group(1))
    assert match is not None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length))
        value = Decimal(str(payload["value"]))
        if value <= 0 or payload.get("unit", "kg") != "kg":
            raise ValueError
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return _reply(start_response, "422 Unprocessable Entity", {"detail": "Invalid."})
    try:
        weight = writer.write(match.group(1), value, environ.get("REMOTE_ADDR", ""))
    except LookupError:
        return _reply(start_response, "404 Not Found", {"detail": "No such patient."})
    return _reply(start_response, "201 Created", weight)


def _vitals(
    environ: dict[str, Any], start_response: Callable[..., Any], session: str
) -> Iterable[bytes]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        samples = json.loads(environ["wsgi.input"].read(length))["samples"]
        if not isinstance(samples, list) or not 1 <= len(samples) <= 100:
            raise ValueError
        for sample in samples:
            datetime.fromisoformat(sample["taken_at"])
            for name in ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate"):
                if sample.get(name) is not None and not 0 < int(sample[name]) < 400:
                    raise ValueError
    except (ValueError, KeyError, TypeError):
        return _reply(start_response, "422 Unprocessable Entity", {"detail": "Invalid."})
    try:
        answer = _vitals_writer().write(session, samples, environ.get("REMOTE_ADDR", ""))
    except LookupError:
        return _reply(start_response, "404 Not Found", {"detail": "No such session."})
    data = json.dumps(answer).encode()
    start_response("201 Created", [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(data)))])  # fmt: skip
    return [data]
