"""Keyset (cursor) paging for any search ordered by model fields ending in the primary key.

A page's `next` link carries the sort key of its last row (`_cursor`), and the next page is the
rows strictly after that key: rows inserted or removed meanwhile never shift a page, so a client
paging while another inserts sees no row twice and skips none (offset paging does both).

Nulls sort first ascending and last descending on every database (SQLite's order; PostgreSQL is
told so), so a key with a null in it has one meaning everywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import F, Field, Model, Q, QuerySet

from ketaclinic.fhir.outcome import FhirError

Key = list[tuple[str, bool, Field | None]]  # (lookup path, descending, field)


def sort_key(queryset: QuerySet) -> Key | None:
    """The queryset's ordering as a key ending in the primary key (appended when missing);
    None when it cannot be paged by key (a union, an expression, a relation's own ordering)."""
    query = queryset.query
    if query.combinator or query.distinct or not query.order_by:
        return None
    key: Key = []
    for item in query.order_by:
        if not isinstance(item, str) or item.startswith("?"):
            return None
        descending = item.startswith("-")
        path = item.lstrip("-")
        if path in ("pk", queryset.model._meta.pk.attname, queryset.model._meta.pk.name):
            key.append(("pk", descending, None))
            return key
        annotation = query.annotations.get(path)
        field = annotation.output_field if annotation is not None else _field(queryset.model, path)
        if not isinstance(field, Field):
            return None
        key.append((path, descending, field))
    return [*key, ("pk", key[-1][1], None)]


def _field(model: type[Model], path: str) -> Field | None:
    """The concrete, non-relation field a `a__b` path ends in."""
    parts = path.split("__")
    field: Any = None
    for i, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not isinstance(field, Field):
            return None
        if i < len(parts) - 1:
            if not field.is_relation or not isinstance(field.related_model, type):
                return None
            model = field.related_model
        elif not field.concrete or (field.is_relation and part != field.attname):
            return None  # a relation orders by its model's ordering; its `_id` column is fine
    return field if isinstance(field, Field) else None


def ordered(queryset: QuerySet, key: Key) -> QuerySet:
    """The queryset ordered by `key`, nulls placed the same way on every database."""
    terms: list[Any] = []
    for path, descending, field in key:
        if field is not None and field.null:
            expr = F(path)
            terms.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_first=True))
        else:
            terms.append(f"-{path}" if descending else path)
    return queryset.order_by(*terms)


def after(key: Key, values: list[Any]) -> Q:
    """Rows strictly after `values` (a previous page's last key) in `key` order."""
    if len(values) != len(key):
        raise FhirError(
            400, "_cursor is not one this server sent.", expressions=[("_cursor", "invalid")]
        )
    values = [_parse(field, value) for (_, _, field), value in zip(key, values, strict=True)]
    clauses = Q(pk__in=[])
    equal = Q()
    for (path, descending, field), value in zip(key, values, strict=True):
        nullable = field is not None and field.null
        if value is None:
            # Nulls come first ascending (so every non-null row is after), last descending.
            beyond = Q(pk__in=[]) if descending else Q(**{f"{path}__isnull": False})
            same = Q(**{f"{path}__isnull": True})
        else:
            beyond = Q(**{f"{path}__{'lt' if descending else 'gt'}": value})
            if nullable and descending:
                beyond |= Q(**{f"{path}__isnull": True})
            same = Q(**{path: value})
        clauses |= equal & beyond
        equal &= same
    return clauses


def cursor_of(row: Any, key: Key) -> list[Any]:
    out = []
    for path, _, _ in key:
        value: Any = row
        for part in path.split("__"):
            value = getattr(value, part) if value is not None else None
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        elif value is not None and not isinstance(value, int | str | bool | float):
            value = str(value)
        out.append(value)
    return out


def _parse(field: Field | None, value: Any) -> Any:
    if value is None:
        return None
    try:
        return int(value) if field is None else field.to_python(value)
    except (ValidationError, ValueError, TypeError):
        raise FhirError(
            400, "_cursor is not one this server sent.", expressions=[("_cursor", "invalid")]
        ) from None


def page_list(items: list[Any], key_of: Any, search: Any) -> tuple[int, list[Any]]:
    """Keyset paging of a list computed in memory (the instrument library, a chair's free
    slots): sorted by `key_of(item)` (a tuple of strings, unique per item), the page is the
    items strictly after the `_cursor`'s key, and a page with more after it sets
    `search.next_cursor`. (total, the page's items); the total counts the whole list."""
    from ketaclinic.fhir.search import encode_cursor

    ordered_items = sorted(items, key=key_of)
    if not search.count:
        return len(ordered_items), []
    if search.cursor is not None:
        if not all(isinstance(part, str) for part in search.cursor):
            raise FhirError(
                400, "_cursor is not one this server sent.", expressions=[("_cursor", "invalid")]
            )
        last = tuple(search.cursor)
        if ordered_items and len(last) != len(key_of(ordered_items[0])):
            raise FhirError(
                400, "_cursor is not one this server sent.", expressions=[("_cursor", "invalid")]
            )
        rest = [item for item in ordered_items if key_of(item) > last]
    else:
        rest = ordered_items[search.offset :]
    page = rest[: search.count]
    search.more = len(rest) > search.count
    if search.more and page:
        search.next_cursor = encode_cursor(list(key_of(page[-1])))
    return len(ordered_items), page
