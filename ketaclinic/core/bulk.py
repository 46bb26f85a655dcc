"""Many rows of one model with one executemany INSERT, from plain values (no model instances).

Django's `bulk_create` builds a model instance per row and prepares every value field by field;
for the FHIR import that was most of the time spent per resource (issue 13). Here the statement
and, per column, how its value is adapted are worked out once per model and database; a value
passes to the driver as it is unless its field needs adapting (times, dates, UUIDs, decimals,
JSON). JSON is written with orjson; a value already serialized can be passed as `JsonText`.

The caller gives every column except the primary key and is responsible for what
`full_clean` would check: these rows skip model validation, as `bulk_create` does. For one row
with its new key read back, see `core.rows.insert`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from django.db import connection, models


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
    return dumps(value)


Adapter = Callable[[Any], Any] | None
_STATEMENTS: dict[tuple[str, str], tuple[str, list[tuple[str, Adapter]]]] = {}
_ADAPTED = (models.DateTimeField, models.DateField, models.UUIDField, models.DecimalField)


def _statement(model: type[models.Model]) -> tuple[str, list[tuple[str, Adapter]]]:
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
    def adapt(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if not isinstance(field, models.DateTimeField):
        return adapt
    to_database = connection.ops.adapt_datetimefield_value

    def adapt_time(value: Any) -> Any:
        # An aware time straight to the backend (what get_db_prep_save ends with); anything
        # else (naive, a string) through the field, which converts or refuses it.
        if isinstance(value, datetime) and value.tzinfo is not None:
            return to_database(value)
        return adapt(value)

    return adapt_time


def insert_rows(model: type[models.Model], rows: Iterable[Mapping[str, Any]]) -> int:
    """INSERT `rows` (each a mapping of attname -> value for every column but the primary key)
    into `model`'s table; returns how many. Call inside the caller's transaction."""
    sql, plan = _statement(model)
    params = [[row[a] if adapt is None else adapt(row[a]) for a, adapt in plan] for row in rows]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(params)


def insert_instances(model: type[models.Model], instances: Iterable[models.Model]) -> int:
    """INSERT unsaved `instances` as their attributes stand: no `pre_save` (a caller sets
    auto_now times itself) and no primary key is read back (rows are found by `public_id`)."""
    sql, plan = _statement(model)
    return insert_rows(model, [{a: getattr(obj, a) for a, _ in plan} for obj in instances])
