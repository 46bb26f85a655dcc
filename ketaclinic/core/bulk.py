"""Many rows of one model with one executemany INSERT, from plain values (no model instances).

Django's `bulk_create` builds a model instance per row and prepares every value field by field;
for the FHIR import that was most of the time spent per resource (issue 13). Here the statement
and, per column, how its value is adapted are worked out once per model and database; a value
passes to the driver as it is unless its field needs adapting (times, dates, UUIDs, decimals,
JSON). JSON is written with orjson; a value already serialized can be passed as `JsonText`.

`insert_rows` reads each row from a mapping, `insert_objects` from attributes (model instances,
dataclasses); both take the values every row shares once (`same`).

The caller gives every column except the primary key and is responsible for what
`full_clean` would check: these rows skip model validation, as `bulk_create` does. For one row
with its new key read back, see `core.rows.insert`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from ketaclinic.core import rows


class JsonText(str):
    """JSON already serialized, written to a JSONField column as it is."""

    __slots__ = ()


def dumps(value: Any) -> str:
    """JSON text for a JSONField column: orjson, or the standard module for what orjson cannot
    write (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, JsonText):
        return value
    if type(value) is list and not value:
        return "[]"  # orjson's text for it; most flowsheet rows carry no alert
    return dumps(value)


Adapter = Callable[[Any], Any] | None
_STATEMENTS: dict[tuple[str, str], tuple[str, list[tuple[str, Adapter]]]] = {}
_ADAPTED = (models.DateTimeField, models.DateField, models.UUIDField, models.DecimalField)


def _statement(model: type[models.Model]) -> tuple[str, list[tuple[str, Adapter]]]:
    """The INSERT of every column but the primary key, and per column its attname and how its
    value is adapted (None: passed to the driver as it is). Worked out once per model and
    database vendor."""
    key = (model._meta.label, connection.vendor)
    if key not in _STATEMENTS:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        marks = []
        plan: list[tuple[str, Adapter]] = []
        for field in fields:
            adapter: Adapter = None
            mark = "%s"
            if isinstance(field, models.JSONField):
                adapter = _json
                if connection.vendor == "postgresql":
                    mark = "%s::jsonb"
            elif isinstance(field, _ADAPTED):
                adapter = _field_adapter(field)
            marks.append(mark)
            plan.append((field.attname, adapter))
        columns = ", ".join(quote(f.column) for f in fields)
        table = quote(model._meta.db_table)
        # Built from the model's own table and column names, never from input.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(marks)})"  # noqa: S608
        _STATEMENTS[key] = (sql, plan)
    return _STATEMENTS[key]


def _field_adapter(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """What `field.get_db_prep_save` would give, with the common case (an aware time, a UUID)
    done directly: per value, the field's path costs more than the rest of a row."""

    def adapt(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    native_uuid = connection.features.has_native_uuid_field
    if isinstance(field, models.UUIDField):

        def adapt_uuid(value: Any) -> Any:
            if isinstance(value, uuid.UUID):
                return value if native_uuid else value.hex
            return adapt(value)

        return adapt_uuid
    if not isinstance(field, models.DateTimeField):
        return adapt
    if connection.vendor == "sqlite":
        # DatabaseOperations.adapt_datetimefield_value: naive in the connection's zone, as text.
        zone = connection.timezone

        def adapt_time(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                return str(value.astimezone(zone).replace(tzinfo=None))
            return adapt(value)

        return adapt_time
    to_database = connection.ops.adapt_datetimefield_value

    def adapt_aware(value: Any) -> Any:
        # An aware time straight to the backend (what get_db_prep_save ends with); anything
        # else (naive, a string) through the field, which converts or refuses it.
        if isinstance(value, datetime) and value.tzinfo is not None:
            return to_database(value)
        return adapt(value)

    return adapt_aware


def _adapted(plan: list[tuple[str, Adapter]], same: Mapping[str, Any]) -> dict[str, Any]:
    return {a: same[a] if adapt is None else adapt(same[a]) for a, adapt in plan if a in same}


def insert_rows(
    model: type[models.Model],
    rows: Iterable[Mapping[str, Any]],
    *,
    same: Mapping[str, Any] | None = None,
) -> int:
    """INSERT `rows` (each a mapping of attname -> value for every column but the primary key)
    into `model`'s table; returns how many. `same`: values every row shares (adapted once; a
    row need not repeat them). Call inside the caller's transaction."""
    sql, plan = _statement(model)
    fixed = _adapted(plan, same or {})
    params = [
        [
            fixed[a] if a in fixed else row[a] if adapt is None else adapt(row[a])
            for a, adapt in plan
        ]
        for row in rows
    ]
    return _execute(sql, params)


def insert_objects(
    model: type[models.Model],
    objects: Iterable[Any],
    *,
    same: Mapping[str, Any] | None = None,
) -> int:
    """INSERT one row per object, each column read from the object's attribute of the column's
    attname (a model instance, a dataclass), except those given in `same` for every row."""
    return insert_prepared(prepare_objects(model, objects, same=same))


@dataclass(frozen=True, slots=True)
class Prepared:
    """An executemany INSERT with every row's values already adapted (`prepare_objects`)."""

    sql: str
    params: list[Any]  # one sequence of values per row


def insert_prepared(prepared: Prepared) -> int:
    """Run a `prepare_objects` INSERT; returns how many rows. Call inside the transaction."""
    return _execute(prepared.sql, prepared.params)


def prepare_objects(
    model: type[models.Model],
    objects: Iterable[Any],
    *,
    same: Mapping[str, Any] | None = None,
) -> Prepared:
    """`insert_objects`' statement and values, adapted but not yet run: a writer can do this
    work before its transaction begins and hold the database's write lock only for the INSERT
    (SQLite lets one writer in at a time, issue 13)."""
    same = same or {}
    plain, adapted, fixed_names, sql = _object_plan(model, frozenset(same))
    fixed = _adapted(_statement(model)[1], same)
    constants = tuple(fixed[a] for a in fixed_names)
    # The statement lists the columns read as they are first, then those adapted, then the
    # shared ones: a row is two attrgetter tuples and the constants, not a loop over columns
    # (for a 60-row vitals batch that loop was a fifth of the request's CPU).
    read_plain = _tuple_getter([a for a, _ in plain])
    read_adapted = _tuple_getter([a for a, _ in adapted])
    adapters = [adapt for _, adapt in adapted if adapt is not None]  # all of them
    params: list[Any] = []
    add = params.append
    if len(adapters) == 1:
        (adapt,) = adapters
        for obj in objects:
            add((*read_plain(obj), adapt(read_adapted(obj)[0]), *constants))
    else:
        for obj in objects:
            values = read_adapted(obj)
            add(
                (
                    *read_plain(obj),
                    *[adapt(value) for adapt, value in zip(adapters, values, strict=True)],
                    *constants,
                )
            )
    return Prepared(sql, params)


def _tuple_getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """attrgetter that always answers a tuple (for one name too; none: the empty tuple)."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names)


_ObjectPlan = tuple[list[tuple[str, Adapter]], list[tuple[str, Adapter]], list[str], str]
_OBJECT_PLANS: dict[tuple[str, str, frozenset[str]], _ObjectPlan] = {}


def _object_plan(model: type[models.Model], same: frozenset[str]) -> _ObjectPlan:
    """The columns read from each object as they are, those read and adapted, those shared
    (`same`), and the INSERT listing them in that order; worked out once per model, database
    vendor and set of shared columns."""
    key = (model._meta.label, connection.vendor, same)
    if key not in _OBJECT_PLANS:
        _, plan = _statement(model)
        fields = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
        plain: list[tuple[str, Adapter]] = [
            (a, adapt) for a, adapt in plan if a not in same and adapt is None
        ]
        adapted: list[tuple[str, Adapter]] = [
            (a, adapt) for a, adapt in plan if a not in same and adapt is not None
        ]
        shared = [a for a, _ in plan if a in same]
        quote = connection.ops.quote_name
        order = [a for a, _ in plain] + [a for a, _ in adapted] + shared
        marks = {a: "%s" for a in order}
        if connection.vendor == "postgresql":
            for a in order:
                if isinstance(fields[a], models.JSONField):
                    marks[a] = "%s::jsonb"
        columns = ", ".join(quote(fields[a].column) for a in order)
        table = quote(model._meta.db_table)
        # Built from the model's own table and column names, never from input.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(marks[a] for a in order)})"  # noqa: S608
        _OBJECT_PLANS[key] = (plain, adapted, shared, sql)
    return _OBJECT_PLANS[key]


def _execute(sql: str, params: list[Any]) -> int:
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(params)


def insert_instances(model: type[models.Model], instances: Iterable[models.Model]) -> int:
    """INSERT unsaved `instances` as their attributes stand: no `pre_save` (a caller sets
    auto_now times itself) and no primary key is read back (rows are found by `public_id`)."""
    return insert_objects(model, instances)


def insert_one(model: type[models.Model], row: Mapping[str, Any]) -> None:
    """`insert_rows` of one row, run on the driver's own cursor when nobody records queries
    (core.rows.execute): a FHIR create writes its received JSON and its version this way, and
    Django's cursor wrapper around executemany cost more than the row."""
    sql, plan = _statement(model)
    params = [row[a] if adapt is None else adapt(row[a]) for a, adapt in plan]
    # The connection itself: each attribute read through django.db.connection is a lookup.
    rows.execute(connections[DEFAULT_DB_ALIAS], sql, params, fetch=False)
