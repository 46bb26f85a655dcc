"""Plain rows for bulk export: a queryset's own SQL (scope, joins and filters as Django builds
them) run on a cursor without building model instances, each row a named tuple that reads like
the model to the FHIR mappers.

Why: building a model instance and running Django's per-column converters cost most of an
export's CPU (about 100 microseconds per Encounter with its transitions). Here a row is one tuple
and a handful of cheap conversions, so the mappers (the one definition of each resource's shape)
run on it unchanged:

- every concrete field is there under its attribute name (`patient_id`, `updated_at`, ...);
- `pk`, `get_<field>_display()` and the model's own properties (e.g. `Patient.full_name`,
  `QuestionnaireResponse.score`) work as on the model;
- relations a mapper follows (`condition.patient`, `session.plan`) are extra fields the caller
  fills from what it prefetched for the chunk.

Values have the types the model would give: aware UTC datetimes, dates, Decimals with the
field's places, booleans, parsed JSON, and public ids as strings.

Every query here reads one chunk of patients' rows (bulk_sources), so its result is small
whatever the clinic's size. SQLite streams it with `fetchmany`; PostgreSQL takes it in one round
trip on a plain cursor: a server-side cursor (as `QuerySet.iterator()` uses) cost a DECLARE ...
WITH HOLD, two or more FETCHes and a CLOSE per query, each a wait for the server.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from typing import Any

import orjson
from django.db import connections, models
from django.db.models import F, Lookup
from django.db.models.functions import Cast
from django.db.models.sql.constants import MULTI

FETCH_ROWS = 2000
TEXT_READ = frozenset({"DateTimeField", "DateField", "UUIDField"})


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)  # PostgreSQL's text in its UTC session: +00
    zone = value.tzinfo
    if zone is UTC:  # fromisoformat gives the UTC singleton for +00: nothing to convert
        return value
    return value.replace(tzinfo=UTC) if zone is None else value.astimezone(UTC)


def _day(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _uuid_text(value: Any) -> str:
    if isinstance(value, str) and len(value) == 32:  # SQLite keeps the 32 hex digits
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _decimal(field: models.DecimalField) -> Callable[[Any], Decimal]:
    """As Django's own converter: the stored number to the field's decimal places."""
    context = Context(prec=field.max_digits)
    places = Decimal(1).scaleb(-(field.decimal_places or 0))

    def convert(value: Any) -> Decimal:
        if isinstance(value, Decimal):
            return value
        number = (
            context.create_decimal_from_float(value) if isinstance(value, float) else Decimal(value)
        )
        return number.quantize(places, context=context)

    return convert


def _converter(field: models.Field) -> Callable[[Any], Any] | None:
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return _aware
    if kind == "DateField":
        return _day
    if kind == "UUIDField":
        return _uuid_text
    if kind == "JSONField":
        return _json
    if kind == "BooleanField":
        return bool
    if kind == "DecimalField":
        assert isinstance(field, models.DecimalField)
        return _decimal(field)
    return None


def _pk(self: Any) -> Any:
    return self.id


def _display(attname: str, labels: dict[Any, str]) -> Callable[[Any], str]:
    def get_display(self: Any) -> str:
        value = getattr(self, attname)
        return labels.get(value, value)

    return get_display


def _properties(model: type[models.Model]) -> dict[str, property]:
    """The model's own properties (not Django's), base classes first."""
    found: dict[str, property] = {}
    for klass in reversed(model.__mro__):
        if not klass.__module__.startswith("ketaclinic."):
            continue
        for name, attribute in vars(klass).items():
            if isinstance(attribute, property):
                found[name] = attribute
    return found


class Lean:
    """How to read one model's rows plainly; build once per export, reuse for every chunk."""

    def __init__(
        self,
        model: type[models.Model],
        extra: Sequence[str] = (),
        *,
        only: Sequence[str] = (),
    ) -> None:
        fields = [f for f in model._meta.concrete_fields if not only or f.attname in only]
        self.model = model
        self.names = [f.attname for f in fields]
        # Times, dates and ids are read as text and parsed here: the drivers' own loaders (a
        # regular expression per timestamp in psycopg's text protocol, Django's decoder on
        # SQLite) cost more than the rest of a row's conversion together.
        self.as_text = {
            f"{f.attname}_as_text": Cast(f.attname, output_field=models.TextField())
            for f in fields
            if f.get_internal_type() in TEXT_READ
        }
        self.selected = [
            f"{f.attname}_as_text" if f.get_internal_type() in TEXT_READ else f.attname
            for f in fields
        ]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.converters = [
            (i, convert) for i, f in enumerate(fields) if (convert := _converter(f)) is not None
        ]
        base = namedtuple(f"{model.__name__}Row", [*self.names, *extra])  # type: ignore[misc]
        namespace: dict[str, Any] = {"__slots__": ()}
        if "id" in self.index:
            namespace["pk"] = property(_pk)
        for f in fields:
            if f.choices:
                labels = {value: str(label) for value, label in f.flatchoices}
                namespace[f"get_{f.name}_display"] = _display(f.attname, labels)
        for name, attribute in _properties(model).items():
            if name not in self.index and name not in extra:
                namespace[name] = attribute
        self.row: Any = type(base.__name__, (base,), namespace)

    def rows(
        self,
        queryset: models.QuerySet,
        extra: Callable[[list[Any]], tuple[Any, ...]] | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[Any]:
        """The queryset's rows, every concrete field converted; `extra(values)` gives the extra
        fields from the converted values (e.g. the prefetched patient of `values[patient_id]`)."""
        selected = queryset.annotate(**self.as_text).values_list(*self.selected)
        query = (selected[:limit] if limit is not None else selected).query
        connection = connections[queryset.db]
        compiler = query.get_compiler(using=queryset.db)
        streamed = connection.vendor == "sqlite"
        batches = compiler.execute_sql(MULTI, chunked_fetch=streamed, chunk_size=FETCH_ROWS)
        make = self.row._make
        converters = self.converters
        for batch in batches:
            for raw in batch:
                values = list(raw)
                for i, convert in converters:
                    value = values[i]
                    if value is not None:
                        values[i] = convert(value)
                if extra is not None:
                    values.extend(extra(values))
                yield make(values)


class AnyOf(Lookup):
    """`column = ANY(%s)` with the keys as one array parameter (PostgreSQL): however many keys,
    one parameter and an index scan."""

    prepare_rhs = False

    def __init__(self, column: str, keys: Sequence[int]) -> None:
        super().__init__(F(column), list(keys))

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.lhs)
        return f"{column} = ANY(%s)", [*params, self.rhs]


class All(list):
    """A prefetched related list that answers `.all()` as a related manager would."""

    def all(self) -> All:
        return self
