"""A query's SQL built once per shape, its values bound per request (issue 13).

Django builds and compiles a queryset anew for every request (filter -> WHERE tree -> SQL). For
the FHIR Observation search, an up-to-18-part UNION, that was about 40% of a search's CPU, while
the SQL is the same text for every request of the same shape: only the values differ (the tenant,
the patient's keys, the dates). Here the queryset is built once per shape with stand-in values,
compiled, and each parameter position of the compiled SQL is traced back to the request value it
stands for. Later requests of that shape give their values in the same order, and the SQL runs
with them, without building or compiling anything.

Stand-ins are values no request gives and no constant of a query holds: negative integers far
below any key, instants in the year 1001, texts starting with a NUL. A compiled parameter equal to
a stand-in (as Django prepared it for the driver: SQLite receives datetimes as text) is that
slot; any other is a constant of the shape (a code, a resource type). A shape whose constants
still look like a stand-in (Django transformed a value on its way) is not kept: such a search is
built by the ORM every time, as before.

Tenancy: the organization is a slot like any other value. The shape is built inside a scope on a
stand-in organization, so the scoped managers put their `organization_id = %s` into the SQL and
every request binds its own organization there; SQL text never carries a tenant.

With `settings.SQL_SHAPES_CHECKED` (the test settings) every execution also builds the query the
ORM way for the request's own values and asserts the same SQL and parameters.

On PostgreSQL the SQL is run as a server-side prepared statement (`rows.prepared_sql`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import (  # type: ignore[attr-defined]  # Django's, unstubbed
    FlatValuesListIterable,
    ModelIterable,
    get_related_populators,
)
from django_scopes import get_scope, scope

STAND_INT = -(10**15)  # a stand-in key: every key and tenant here is positive
STAND_MOMENT = datetime(1001, 1, 1, tzinfo=UTC)
STAND_TEXT = "\x00slot"
MAX_SHAPES = 512  # shapes a process keeps (a client choosing codes makes new shapes)


class Slots:
    """One request's values in slot order, each beside the stand-in that takes its place while
    the shape is built for the first time (every stand-in distinct)."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.stands: list[Any] = []

    def add(self, value: Any, stand: Any) -> Any:
        self.values.append(value)
        self.stands.append(stand)
        return stand

    def int(self, value: int) -> int:
        return self.add(value, STAND_INT - len(self.values))

    def moment(self, value: datetime) -> datetime:
        # Whole minutes apart: a stand-in plus one second (the end of a date search's
        # interval, added with `add`) is still distinct from every other.
        return self.add(value, STAND_MOMENT + timedelta(minutes=len(self.values)))

    def text(self, value: str) -> str:
        return self.add(value, f"{STAND_TEXT}{len(self.values)}")

    def uuid(self, value: uuid.UUID) -> uuid.UUID:
        return self.add(value, uuid.UUID(int=len(self.values) + 1))

    def any(self, value: Any) -> Any:
        """The stand-in of a key of any of the kinds above."""
        if isinstance(value, uuid.UUID):
            return self.uuid(value)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.int(value)
        raise Uncacheable(f"no stand-in for {type(value).__name__}")


def _looks_stand_in(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value <= STAND_INT + 10**9
    if isinstance(value, datetime):
        return value.year == STAND_MOMENT.year
    if isinstance(value, str):
        # SQLite's text of a stand-in time, and of a stand-in UUID (its hex)
        return value.startswith((STAND_TEXT, "1001-01-01 ", _STAND_HEX))
    if isinstance(value, uuid.UUID):
        return value.int < 2**32
    return False


_STAND_HEX = "0" * 24
_hex = attrgetter("hex")


@dataclass(frozen=True)
class Shape:
    """Compiled SQL (None: the shape matches nothing) and, per parameter, the slot it takes its
    value from with the preparation Django gave it, or the constant it always is."""

    sql: str | None
    sources: tuple[tuple[int, Callable[[Any], Any] | None, Any], ...] = ()
    using: str = "default"  # the database alias the query was built for

    def params(self, values: Sequence[Any]) -> list[Any]:
        out = []
        for slot, prepare, constant in self.sources:
            if slot < 0:
                out.append(constant)
            else:
                value = values[slot]
                out.append(prepare(value) if prepare is not None else value)
        return out


class Uncacheable(Exception):
    """The compiled query's parameters cannot be traced back to the request's values."""


_shapes: dict[tuple[Any, ...], Shape | None] = {}  # None: a shape the ORM builds every time
_lock = threading.Lock()


def _form(value: Any) -> tuple[str, Any]:
    """A parameter's kind and value, whatever wrapper type the driver's adaptation gave it."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, str):
        return ("str", str(value))
    return (type(value).__name__, value)


def compile_shape(queryset: QuerySet[Any, Any] | None, slots: Slots, *, suffix: str = "") -> Shape:
    """Trace a queryset built from `slots.stands` back to its slots. `suffix` is appended to the
    SQL; its own `%s` take the last slots, in order."""
    if queryset is None:
        return Shape(None)
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return Shape(None)
    return _traced(sql, params, slots, queryset.db, suffix)


def _traced(sql: str, params: Sequence[Any], slots: Slots, using: str, suffix: str = "") -> Shape:
    connection = connections[using]
    adapt_moment = connection.ops.adapt_datetimefield_value
    forms: dict[tuple[str, Any], tuple[int, Callable[[Any], Any] | None]] = {}
    for slot, stand in enumerate(slots.stands):
        forms[_form(stand)] = (slot, None)
        if isinstance(stand, datetime) and adapt_moment(stand) != stand:
            forms[_form(adapt_moment(stand))] = (slot, adapt_moment)
        if isinstance(stand, uuid.UUID) and not connection.features.has_native_uuid_field:
            forms[_form(stand.hex)] = (slot, _hex)  # as UUIDField.get_db_prep_value sends it
    sources: list[tuple[int, Callable[[Any], Any] | None, Any]] = []
    for param in params:
        try:
            found = forms.get(_form(param))
        except TypeError:  # unhashable (a list bound as one array): traced by nobody
            raise Uncacheable(f"parameter {param!r} is not one a shape can trace") from None
        if found is None:
            if _looks_stand_in(param):
                raise Uncacheable(f"parameter {param!r} is a stand-in Django transformed")
            sources.append((-1, None, param))
            continue
        slot, prepare = found
        wrapper = type(param)
        if wrapper not in (type(slots.stands[slot]), str) and prepare is None:
            prepare = wrapper  # the driver type Django wraps this kind of value in (Int8...)
        sources.append((slot, prepare, None))
    marks = suffix.count("%s")
    first = len(slots.values) - marks
    sources += [(first + i, None, None) for i in range(marks)]
    return Shape(sql + suffix, tuple(sources), using)


def shape_for(key: tuple[Any, ...], build: Callable[[], Shape]) -> Shape | None:
    """The shape kept for `key`, built by `build()` the first time (None: not cacheable; the
    caller builds its query the ORM way)."""
    try:
        return _shapes[key]
    except KeyError:
        pass
    try:
        shape: Shape | None = build()
    except Uncacheable:
        shape = None
    with _lock:
        if len(_shapes) < MAX_SHAPES:
            _shapes[key] = shape
    return shape


def clear() -> None:
    """Forget every shape (tests that change what a shape's constants come from)."""
    _shapes.clear()
    _loaders.clear()


# --- rows by key: a queryset's SELECT ... WHERE key IN (...) built once per shape ---------------
#
# A search's page is loaded by primary key from a few tables (a query each), and the patient's
# keys are resolved the same way: each of these querysets was built and compiled anew for every
# request (issue 13). Loaded by shape, a FHIR Observation search at 102,400 patients took 5.5 ms
# of the worker's CPU instead of 8.4-9.0 by code, 5.0 instead of 10.4-11.1 by date (PostgreSQL,
# in-process A/B, loaded machine). `rows_in` compiles each once per process and number of keys,
# and builds the model instances from the rows with Django's own machinery (the compiler's
# converters, `Model.from_db`, select_related's populators), as the queryset's iteration would.


def _bucket(count: int) -> int:
    """Key lists are padded (with their last key repeated) to a power of two: a handful of SQL
    texts per table instead of one per page size, for this cache and PostgreSQL's prepared
    statements alike. A repeated key changes nothing an IN matches."""
    size = 1
    while size < count:
        size *= 2
    return size


@dataclass(frozen=True)
class Loader:
    """A compiled SELECT and what turns its rows into what iterating the queryset yields."""

    shape: Shape
    model: type[Model]
    flat: bool  # values_list(field, flat=True): the first column of each row
    init_list: tuple[str, ...] = ()
    span: tuple[int, int] = (0, 0)
    populators: tuple[Any, ...] = ()
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...] = ()

    def rows(self, values: Sequence[Any]) -> list[Any]:
        from ketaclinic.core.rows import prepared_sql

        if self.shape.sql is None:
            return []
        using = self.shape.using
        connection = connections[using]
        found = prepared_sql(using, self.shape.sql, self.shape.params(values))
        converters, out = self.converters, []
        start, end = self.span
        for found_row in found:
            row: Any = found_row
            if converters:
                row = list(row)
                for position, functions, expression in converters:
                    value = row[position]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    row[position] = value
            if self.flat:
                out.append(row[0])
                continue
            obj = self.model.from_db(using, self.init_list, row[start:end])
            for populator in self.populators:
                populator.populate(row, obj)
            out.append(obj)
        return out


def compile_loader(queryset: QuerySet[Any, Any], slots: Slots) -> Loader:
    """The queryset (built from `slots.stands`) compiled and traced to its slots, with what its
    iteration does to each row; Uncacheable for anything but plain instances (select_related
    and only/defer included) or a flat one-column values_list."""
    query = queryset.query
    flat = queryset._iterable_class is FlatValuesListIterable
    if (
        not (flat or queryset._iterable_class is ModelIterable)
        or query.combinator
        or query.annotation_select
        or query.extra_select
        or queryset._prefetch_related_lookups  # type: ignore[attr-defined]
        or queryset._known_related_objects  # type: ignore[attr-defined]
    ):
        raise Uncacheable("only plain instances or a flat values_list are loaded by shape")
    compiler = query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return Loader(Shape(None), queryset.model, flat)
    shape = _traced(sql, params, slots, queryset.db)
    select = compiler.select
    converters = tuple(
        (position, tuple(functions), expression)
        for position, (functions, expression) in compiler.get_converters(
            [column[0] for column in select[: compiler.col_count]]
        ).items()
    )
    if flat:
        return Loader(shape, queryset.model, flat, converters=converters)
    klass_info = compiler.klass_info
    assert klass_info is not None  # a model query always has it after as_sql()
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    return Loader(
        shape,
        klass_info["model"],
        flat,
        init_list=tuple(column[0].target.attname for column in select[start:end]),
        span=(start, end),
        populators=tuple(get_related_populators(klass_info, select, queryset.db)),
        converters=converters,
    )


_loaders: dict[tuple[Any, ...], Loader | None] = {}  # None: the ORM builds it every time


def scoped_organization() -> Any | None:
    """The one organization the active scope limits queries to, or None (scopes disabled, no
    organization, or several): a compiled shape binds exactly one organization."""
    active = get_scope()
    organization = active.get("organization")
    if not active.get("_enabled", True) or isinstance(organization, list | tuple):
        return None
    return organization


def rows_in(
    name: Any, queryset: Callable[[], QuerySet[Any, Any]], field: str, keys: Collection[Any]
) -> list[Any]:
    """`list(queryset().filter(<field>__in=keys))`, compiled once per `name` (which says what
    `queryset()` is), database and number of keys, inside the active organization's scope (the
    organization is a bound value, as in every shape). Keys are integers, texts or UUIDs. Outside
    one organization's scope, or for a queryset a shape cannot hold, it is the ORM's query."""

    def built() -> list[Any]:
        return list(queryset().filter(**{f"{field}__in": keys}))

    if not keys:
        return []
    organization = scoped_organization()
    if organization is None:
        return built()
    ordered = sorted(set(keys), key=str)
    ordered += [ordered[-1]] * (_bucket(len(ordered)) - len(ordered))
    slots = Slots()
    try:
        stand_organization = slots.int(getattr(organization, "pk", organization))
        stands = [slots.any(key) for key in ordered]
    except Uncacheable:
        return built()
    key = (name, field, len(ordered), connections["default"].vendor)
    try:
        loader = _loaders[key]
    except KeyError:
        try:
            with scope(organization=stand_organization):
                loader = compile_loader(queryset().filter(**{f"{field}__in": stands}), slots)
        except Uncacheable:
            loader = None
        with _lock:
            if len(_loaders) < MAX_SHAPES:
                _loaders[key] = loader
    if loader is None:
        return built()
    found = loader.rows(slots.values)
    if settings.SQL_SHAPES_CHECKED:
        _check_rows(found, _unrecorded(loader.shape.using, built))
    return found


def _unrecorded(using: str, run: Callable[[], list[Any]]) -> list[Any]:
    """run()'s result, its queries left out of the connection's query log: the check runs a
    second query that production does not, and query pins count what production runs."""
    log = connections[using].queries_log
    before = len(log)
    try:
        return run()
    finally:
        while len(log) > before:
            log.pop()


def _state(value: Any) -> Any:
    """What a loaded instance holds (its field values and the related instances cached on it),
    for comparing two loads; other values as they are."""
    if not isinstance(value, Model):
        return value
    fields = {k: v for k, v in vars(value).items() if k != "_state"}
    cached = {k: _state(v) for k, v in value._state.fields_cache.items()}
    return (type(value), fields, cached)


def _check_rows(found: list[Any], built: list[Any]) -> None:
    def ordered(rows: list[Any]) -> list[Any]:
        return sorted((_state(r) for r in rows), key=repr)

    assert ordered(found) == ordered(built), f"shaped rows differ:\n{found}\n{built}"
