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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet

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


def _looks_stand_in(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value <= STAND_INT + 10**9
    if isinstance(value, datetime):
        return value.year == STAND_MOMENT.year
    if isinstance(value, str):
        return value.startswith((STAND_TEXT, "1001-01-01 "))  # SQLite's text of a stand-in time
    return False


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
    adapt_moment = connections[queryset.db].ops.adapt_datetimefield_value
    forms: dict[tuple[str, Any], tuple[int, Callable[[Any], Any] | None]] = {}
    for slot, stand in enumerate(slots.stands):
        forms[_form(stand)] = (slot, None)
        if isinstance(stand, datetime) and adapt_moment(stand) != stand:
            forms[_form(adapt_moment(stand))] = (slot, adapt_moment)
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
    return Shape(sql + suffix, tuple(sources), queryset.db)


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
