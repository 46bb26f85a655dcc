"""The lean write path (issue 13): what the hot writes answer, how many queries they make, and
that the shortcuts they take give what the slow way gives.

- The weight and height writes answer with `core.api.render_json` (not validated again through
  their response schema): each answer is validated here against the schema the route declares,
  and equals what the schema and the API's renderer would have written.
- `render_json` writes every kind of value as the API's renderer does, and the encoder's
  direct path for decimals, datetimes, dates and UUIDs writes the bytes ninja's and Django's
  encoders wrote.
- `core.rows.preparer` gives every column of the hot tables the value Django's
  `get_db_prep_save` gives.
- Query counts of the weight write and the FHIR Observation create are pinned.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from django.db import connection
from django.test import RequestFactory
from django_scopes import scope
from ninja.responses import NinjaJSONEncoder

from conftest import api_client, audit_count
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.core import rows
from ketaclinic.core.api import PlainDecimalEncoder, PlainDecimalRenderer, render_json
from ketaclinic.fhir.models import ResourceVersion, StoredResource
from ketaclinic.fhir.tests.helpers import FHIR as FHIR_JSON
from ketaclinic.fhir.tests.helpers import bp_json, post
from ketaclinic.patients.api import HeightOut, WeightOut
from ketaclinic.patients.models import BodyHeight, BodyWeight, Patient, VitalSign
from ketaclinic.sessions.models import VitalsEntry

pytestmark = pytest.mark.django_db


def _renderer_text(data: Any) -> Any:
    """What ninja's route would have answered: the API's renderer over `data`."""
    request = RequestFactory().get("/")
    return json.loads(PlainDecimalRenderer().render(request, data, response_status=201))


@pytest.mark.parametrize(
    ("kind", "schema", "model", "body"),
    [
        ("weights", WeightOut, BodyWeight, {"value": "185", "unit": "lb"}),
        ("heights", HeightOut, BodyHeight, {"value": "70.5", "unit": "in"}),
    ],
)
def test_a_measurement_write_answers_its_declared_schema(
    members: Any, patient_a: Any, django_assert_max_num_queries: Any, kind: str, schema: Any,
    model: Any, body: dict[str, str],
) -> None:  # fmt: skip
    api = api_client(members["prescriber"])
    url = f"/api/v1/patients/{patient_a.public_id}/{kind}"
    api.get(f"/api/v1/patients/{patient_a.public_id}")  # the token is resolved (and cached)
    # The patient by its key, the row, the audit event, and the savepoint the test's own
    # transaction turns the write's transaction into (SAVEPOINT, RELEASE).
    with django_assert_max_num_queries(5):
        response = api.post(url, body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    answer = response.json()
    with scope(organization=members["prescriber"].organization):
        stored = model.objects.get(public_id=answer["id"])
    # The answer is the schema's rendering of the row, value for value (the stored decimals carry
    # the column's places: 70.50 for the 70.5 entered, which the answer gives as entered).
    expected = _renderer_text(schema.model_validate(stored).model_dump())
    assert set(answer) == set(expected) == set(schema.model_fields)
    for name, value in expected.items():
        if name in ("entered_value", "weight_kg", "height_cm"):
            assert Decimal(answer[name]) == Decimal(value), name
        else:
            assert answer[name] == value, name
    assert answer["entered_value"] == body["value"]
    schema.model_validate({**answer, "public_id": answer["id"]})  # the declared shape
    assert audit_count(action=f"patients.{kind[:-1]}.recorded") == 1


def test_a_refused_measurement_writes_nothing_and_names_the_field(
    members: Any, patient_a: Any
) -> None:
    api = api_client(members["prescriber"])
    url = f"/api/v1/patients/{patient_a.public_id}/weights"
    response = api.post(url, {"value": "1800", "unit": "lb"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "weight"
    assert audit_count(action="patients.weight.recorded") == 0
    # A role without the capability is refused by the service (and the refusal audited).
    reception = api_client(members["front_desk"])
    refused = reception.post(url, {"value": "70", "unit": "kg"}, content_type="application/json")
    assert refused.status_code in (403, 404)
    with scope(organization=members["prescriber"].organization):
        assert not BodyWeight.objects.filter(patient=patient_a).exists()


@pytest.mark.parametrize("kind", ["weights", "heights"])
def test_a_measurement_time_is_held_to_the_birth_date_the_lookup_read(
    members: Any, patient_a: Any, django_assert_max_num_queries: Any, kind: str
) -> None:
    """The write reads only the patient's key, organization and birth date
    (services.MEASUREMENT_PATIENT_FIELDS); the birth date check still holds, with no query more."""
    api = api_client(members["prescriber"])
    url = f"/api/v1/patients/{patient_a.public_id}/{kind}"
    api.get(f"/api/v1/patients/{patient_a.public_id}")  # the token is resolved (and cached)
    born = datetime.combine(patient_a.birth_date, time(12), tzinfo=UTC)
    body = {"value": "70", "unit": "kg" if kind == "weights" else "in"}
    with django_assert_max_num_queries(5):
        before = api.post(
            url, {**body, "measured_at": (born - timedelta(days=2)).isoformat()},
            content_type="application/json",
        )  # fmt: skip
    assert before.status_code == 400, before.content
    assert before.json()["errors"][0]["field"] == "measured_at"
    with django_assert_max_num_queries(5):
        after = api.post(
            url, {**body, "measured_at": (born + timedelta(days=2)).isoformat()},
            content_type="application/json",
        )  # fmt: skip
    assert after.status_code == 201, after.content
    assert after.json()["measured_at"].startswith((born + timedelta(days=2)).date().isoformat())


def test_another_organizations_patient_is_not_found_by_the_write(
    outsider: Any, patient_a: Any
) -> None:
    api = api_client(outsider)
    response = api.post(
        f"/api/v1/patients/{patient_a.public_id}/weights",
        {"value": "70", "unit": "kg"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert audit_count(action="patients.patient.lookup_denied", outcome="denied") == 1


@pytest.mark.parametrize(
    "value",
    [
        Decimal("72.50"),
        Decimal("100"),
        Decimal("1E+2"),
        Decimal("0.001"),
        datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, 120000, tzinfo=UTC).astimezone(ZoneInfo("America/Chicago")),
        date(2026, 3, 4),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        'Zoë ☂ "quoted"',
        None,
        [1, 2.5, True],
        {"nested": {"when": datetime(2026, 1, 1, tzinfo=UTC), "kg": Decimal("3.10")}},
    ],
    ids=repr,
)
def test_render_json_writes_what_the_api_renderer_writes(value: Any) -> None:
    response = render_json({"value": value}, 201)
    assert response.status_code == 201
    assert json.loads(response.content) == _renderer_text({"value": value})


class _NinjasEncoder(NinjaJSONEncoder):
    """PlainDecimalEncoder before it wrote the common types itself: decimals in fixed point,
    everything else through ninja's and Django's encoders."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal) and o.is_finite():
            return format(o, "f")
        return super().default(o)


class _Instant(datetime):
    """A datetime subclass: the encoder's direct path takes exact types only."""


_ENCODED = [
    Decimal("72.50"),
    Decimal("-0.0"),
    Decimal("1E+2"),
    Decimal("NaN"),
    Decimal("-Infinity"),
    datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
    datetime(2026, 3, 4, 5, 6, 7, 999, tzinfo=UTC),
    datetime(2026, 3, 4, 5, 6, 7, 120000, tzinfo=UTC).astimezone(ZoneInfo("America/Chicago")),
    datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 4, 5, 6, 7, 5),  # naive
    _Instant(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC),
    date(2026, 3, 4),
    date(1, 1, 1),
    time(5, 6, 7, 123456),
    timedelta(days=1, seconds=5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID("00000000-0000-4000-8000-00000000000a"),
    BodyWeight.Source.CLINIC,  # an enum (a str subclass)
]


@pytest.mark.parametrize("value", _ENCODED, ids=repr)
def test_the_encoder_writes_the_bytes_ninjas_and_djangos_encoders_wrote(value: Any) -> None:
    data = {"value": value, "list": [value, {"nested": value}]}
    # render_json (orjson, datetimes handed to the encoder).
    ours = render_json(data).content
    reference = orjson.dumps(
        data, default=_NinjasEncoder().default, option=orjson.OPT_PASSTHROUGH_DATETIME
    )
    assert ours == reference
    # The API's renderer (the standard json module) on every other route.
    assert json.dumps(data, cls=PlainDecimalEncoder) == json.dumps(data, cls=_NinjasEncoder)


def _values_for(field: Any) -> list[Any]:
    """Values of every kind the field may be given: the usual type, None where allowed, and the
    other types Django accepts (text for numbers and keys, naive times...)."""
    name = type(field).__name__
    if field.is_relation:
        return [1, "2", None] if field.null else [1, "2"]
    kinds: dict[str, list[Any]] = {
        "CharField": ["", "text", "Zoë"],
        "TextField": ["", "a\nb"],
        "BooleanField": [True, False, 1, 0],
        "DecimalField": [Decimal("72.50"), Decimal("1E+2"), Decimal("0.001"), "3.5", 4],
        "UUIDField": [uuid.uuid4(), "12345678123456781234567812345678"],
        "DateTimeField": [
            datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
            datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC) + timedelta(hours=1),
            datetime(2026, 6, 1, 12, tzinfo=UTC).astimezone(ZoneInfo("America/Chicago")),
        ],
        "ClockStampField": [datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)],
        "PositiveSmallIntegerField": [0, 7, "8"],
        "PositiveIntegerField": [0, 7, "8"],
        "IntegerField": [-3, 7, "8"],
        "SmallIntegerField": [-3, 7],
        "BigIntegerField": [2**40],
        "JSONField": [{"a": [1, 2]}, []],
        "DateField": [date(2026, 3, 4)],
    }
    values = kinds.get(name, [])
    return values + [None] if field.null else values


@pytest.mark.parametrize(
    "model",
    [
        BodyWeight,
        BodyHeight,
        Patient,
        AuditEvent,
        VitalsEntry,
        ResourceVersion,
        StoredResource,
    ],  # fmt: skip
    ids=lambda m: m.__name__,
)
def test_every_column_is_prepared_as_django_prepares_it(model: Any) -> None:
    checked = 0
    for field in model._meta.concrete_fields:
        prepare = rows.preparer(field, connection)
        for value in _values_for(field):
            ours, django = prepare(value), field.get_db_prep_save(value, connection)
            assert type(ours) is type(django)
            # The driver's JSON wrapper (PostgreSQL) compares by identity: compare what it wraps.
            assert getattr(ours, "obj", ours) == getattr(django, "obj", django), (field, value)
            checked += 1
    assert checked >= len(model._meta.concrete_fields)


def test_a_fhir_observation_create_keeps_its_query_count(
    members: Any, patient_a: Any, django_assert_max_num_queries: Any
) -> None:
    client = api_client(members["prescriber"])
    client.get(f"/fhir/r4/Patient/{patient_a.public_id}")  # the token is resolved (and cached)
    before = audit_count()
    # The patient, the reading, the received JSON and the version, one audit event, and the
    # savepoint of the test's transaction. No look for an earlier version or received JSON of
    # the id the create just made, no savepoint of the chart service's own (11 before, issue 13).
    with django_assert_max_num_queries(7):
        response = post(client, "/fhir/r4/Observation", bp_json(str(patient_a.public_id), 124, 78))
    assert response.status_code == 201, response.content
    assert response.json()["component"][0]["valueQuantity"]["value"] == 124
    assert audit_count() == before + 1


def _statements_by_depth(client: Any, url: str, body: dict[str, Any]) -> tuple[Any, list]:
    """The response, and each statement the request ran with how many atomic blocks the view
    had open around it (the test's own transaction not counted)."""
    base = len(connection.atomic_blocks)
    seen: list[tuple[str, int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql.split(None, 1)[0].upper(), len(connection.atomic_blocks) - base))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = post(client, url, body)
    return response, seen


def test_a_fhir_observation_create_checks_before_its_transaction_and_only_writes_inside(
    members: Any, patient_a: Any
) -> None:
    # On SQLite the transaction holds the one write lock: the patient lookup and the reading's
    # checks run before it, so concurrent creates queue only for their INSERTs.
    client = api_client(members["prescriber"])
    response, seen = _statements_by_depth(
        client, "/fhir/r4/Observation", bp_json(str(patient_a.public_id), 124, 78)
    )
    assert response.status_code == 201, response.content
    outside = [verb for verb, depth in seen if depth == 0]
    inside = [verb for verb, depth in seen if depth > 0]
    assert "SELECT" in outside  # the patient
    assert set(inside) <= {"INSERT", "SAVEPOINT", "RELEASE"}, seen
    assert inside.count("INSERT") == 4  # the reading, its audit event, received JSON, version
    with scope(organization=patient_a.organization):
        assert VitalsEntry.objects.count() == 0  # a chart reading, not a session's
        assert VitalSign.objects.filter(patient=patient_a).count() == 1


def test_a_refused_fhir_observation_create_never_opens_its_transaction(
    members: Any, patient_a: Any
) -> None:
    client = api_client(members["prescriber"])
    with scope(organization=patient_a.organization):
        kept = (ResourceVersion.objects.count(), StoredResource.objects.count())
    before = (audit_count(), *kept)
    response, seen = _statements_by_depth(
        client, "/fhir/r4/Observation", bp_json(str(patient_a.public_id), 80, 95)
    )
    assert response.status_code == 400, response.content
    assert "diastolic" in json.dumps(response.json()).lower()
    assert all(depth == 0 for _, depth in seen), seen
    with scope(organization=patient_a.organization):
        kept = (ResourceVersion.objects.count(), StoredResource.objects.count())
        assert VitalSign.objects.filter(patient=patient_a).count() == 0
    assert (audit_count(), *kept) == before


def test_a_conditional_fhir_observation_create_still_decides_inside_its_transaction(
    members: Any, patient_a: Any
) -> None:
    client = api_client(members["prescriber"])
    body = {**bp_json(str(patient_a.public_id), 124, 78), "identifier": [
        {"system": "urn:example:device", "value": "reading-1"}
    ]}  # fmt: skip
    headers = {"If-None-Exist": "identifier=urn:example:device|reading-1"}
    first = client.post("/fhir/r4/Observation", json.dumps(body), FHIR_JSON, headers=headers)
    again = client.post("/fhir/r4/Observation", json.dumps(body), FHIR_JSON, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json()["id"] == first.json()["id"]
    with scope(organization=patient_a.organization):
        assert VitalSign.objects.filter(patient=patient_a).count() == 1


@pytest.mark.django_db(transaction=True)
def test_staged_chart_entries_are_written_only_inside_a_transaction(members: Any) -> None:
    from ketaclinic.patients import services

    with pytest.raises(RuntimeError, match="inside a transaction"):
        services.StagedEntries().write(members["prescriber"])


def test_the_vital_sign_fields_the_service_sets_are_what_the_model_would_accept() -> None:
    # vital_sign_record leaves kind, unit and time out of the model's field checks: it takes
    # them from this table (the time it checks itself).
    from ketaclinic.patients.services import VITAL_LIMITS, VITAL_UNITS

    assert set(VITAL_UNITS) == set(VitalSign.Kind.values) == set(VITAL_LIMITS)
    unit_field = VitalSign._meta.get_field("unit")
    for kind, unit in VITAL_UNITS.items():
        unit_field.clean(unit, VitalSign(kind=kind))
        VitalSign._meta.get_field("kind").clean(kind, VitalSign())


def test_a_vital_sign_the_model_refuses_is_still_refused(members: Any, patient_a: Any) -> None:
    from ketaclinic.accounts.actor import Actor
    from ketaclinic.core.errors import ValidationFailed
    from ketaclinic.patients.services import vital_sign_record

    actor = Actor(membership=members["prescriber"], channel="api")
    with scope(organization=patient_a.organization):
        with pytest.raises(ValidationFailed) as refused:
            vital_sign_record(
                actor=actor, patient=patient_a, kind="heart_rate", value="72.123", unit="/min",
                code="8867-4",
            )  # fmt: skip
        assert VitalSign.objects.filter(patient=patient_a).count() == 0
    assert "decimal places" in str(refused.value.errors)
