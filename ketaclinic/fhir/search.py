"""Search parameters: parsing (token, date with prefixes, reference), paging and the Bundle."""

from __future__ import annotations

import base64
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from django.db.models import Q, QuerySet
from django.http import QueryDict

from ketaclinic.core import shapes
from ketaclinic.fhir.common import reference_id
from ketaclinic.fhir.outcome import FhirError

_QS = TypeVar("_QS", bound=QuerySet[Any])

DEFAULT_COUNT = 20
MAX_COUNT = 200
# Result parameters that do not filter. Bundle.total is counted only when asked for
# (_total=accurate, or _count=0): otherwise it is given when the page shows it (the last page) and
# left out as the spec allows, so a search never runs its query twice. fhirpy's _totalMethod is
# accepted and changes nothing.
TOTAL_MODES = ("none", "estimate", "accurate")
PAGING_PARAMS = ("_count", "_offset", "_sort", "_format", "_total", "_totalMethod")
# Result parameters handled around the handler's search (ketaclinic/fhir/include.py).
RESULT_PARAMS = ("_include", "_revinclude", "_summary", "_elements", "_cursor")
DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt", "ne")


@dataclass
class SearchRequest:
    """The parsed query: per parameter a list of AND-ed values, each a list of OR-ed parts."""

    params: dict[str, list[list[str]]] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: str = ""
    # Parameters a lenient search ignored (reported in an OperationOutcome entry).
    ignored: list[str] = field(default_factory=list)
    # Keyset paging: the sort key of the last row of the previous page (opaque to clients).
    cursor: list[Any] | None = None
    total: str = ""  # _total: "", none, estimate or accurate
    more: bool = False  # set by the search: another page follows this one
    # Set by a search paged by key (fhir/keyset.py): the `_cursor` of the next page.
    next_cursor: str | None = None
    # Keys resolved once per request and shared by every part of a union (patient_keys).
    resolved: dict[Any, list[int]] = field(default_factory=dict)

    @property
    def counts(self) -> bool:
        """Whether the client asked for the exact total (or only for the total: _count=0)."""
        return self.total == "accurate" or not self.count

    def window(self) -> slice:
        """The rows of this page and one more (to know whether another page follows); an
        unpaged search (count sys.maxsize: $everything, bulk export) has no more to look for."""
        stop = self.offset + self.count
        return slice(self.offset, stop + 1 if stop < sys.maxsize else sys.maxsize)

    def page_total(self, rows: int, count_all: Any) -> int | None:
        """Bundle.total for a page of `rows` fetched with one extra row (`more` already set):
        exact from the page itself when it is the last one, counted (count_all()) only when
        the client asked for it, None (left out) otherwise."""
        if not self.more and (rows or not self.offset):
            return self.offset + rows
        return count_all() if self.counts else None

    def items(self) -> list[tuple[str, list[str]]]:
        return [(name, ors) for name, ands in self.params.items() for ors in ands]


def parse_query(
    query: QueryDict,
    *,
    allowed: dict[str, str],
    sorts: tuple[str, ...],
    strict: bool = True,
    modifiers: dict[str, tuple[str, ...]] | None = None,
) -> SearchRequest:
    """Strict parsing refuses an unknown parameter (400); lenient parsing (FHIR's default,
    `Prefer: handling=lenient`) ignores it and lists it in `ignored`, which the Bundle reports
    in an OperationOutcome entry, so nobody reads an unfiltered list believing it filtered."""
    search = SearchRequest()
    for name in query:
        values = query.getlist(name)
        base = name.split(":", 1)[0]
        if name in PAGING_PARAMS or name in RESULT_PARAMS:
            continue
        modifier = name.partition(":")[2]
        if modifier and modifier in (modifiers or {}).get(base, ()):
            search.params[name] = [[part for part in v.split(",") if part] for v in values]
            continue
        if base not in allowed or ":" in name:
            if not strict:
                search.ignored.append(name)
                continue
            raise FhirError(
                400,
                f"Unknown or unsupported search parameter {name!r}; supported: "
                + ", ".join(sorted(allowed)),
                expressions=[(name, "unsupported search parameter")],
            )
        search.params[base] = [[part for part in v.split(",") if part] for v in values]
    search.count = _int(query.get("_count"), "_count", DEFAULT_COUNT, 0, MAX_COUNT)
    search.offset = _int(query.get("_offset"), "_offset", 0, 0, 10_000_000)
    if query.get("_format") not in (
        None,
        "json",
        "application/json",
        "application/fhir+json",
        "application/json+fhir",
    ):
        raise FhirError(406, "Only JSON is supported (_format=json).")
    if query.get("_summary") not in (None, "false", "count"):
        raise FhirError(400, "_summary supports count (and false).")
    if query.get("_summary") == "count":
        search.count = 0
    if query.get("_cursor"):
        search.cursor = decode_cursor(str(query.get("_cursor")))
    sort = query.get("_sort", "")
    if sort and sort.lstrip("-") not in sorts:
        raise FhirError(
            400,
            f"Unsupported _sort {sort!r}; use one of {', '.join(sorts) or 'none'} (prefix - for descending).",
        )
    search.sort = sort
    total = query.get("_total", "")
    if total and total not in TOTAL_MODES:
        raise FhirError(
            400,
            f"Unsupported _total {total!r}; use one of {', '.join(TOTAL_MODES)}.",
            expressions=[("_total", "unsupported value")],
        )
    search.total = total
    return search


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(raw: str) -> list[Any]:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        key = None
    if not isinstance(key, list):
        raise FhirError(
            400, "_cursor is not one this server sent.", expressions=[("_cursor", "invalid")]
        )
    return key


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(
            400, f"{name} must be an integer.", expressions=[(name, "not an integer")]
        ) from None
    if not low <= value <= high:
        raise FhirError(
            400, f"{name} must be between {low} and {high}.", expressions=[(name, "out of range")]
        )
    return value


# --- value parsers --------------------------------------------------------------------------------


def as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def token(value: str) -> tuple[str | None, str]:
    """'system|code' -> (system, code); 'code' -> (None, code); '|code' -> ('', code)."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


def patient_ids(values: list[str]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        raw = reference_id(value, "Patient") if "/" in value else value
        key = as_uuid(raw or "")
        if key:
            ids.append(key)
    return ids


def patient_keys(search: SearchRequest, values: list[str]) -> list[int]:
    """Internal keys of the patients `values` reference, in the current organization: one query
    per request, so each part of a search union starts from the patient's own rows by index
    instead of joining every row of the organization to its patient."""
    from ketaclinic.patients.models import Patient

    key = ("patient", *values)
    if key not in search.resolved:
        search.resolved[key] = shapes.rows_in(
            "patient-keys",
            lambda: Patient.objects.values_list("pk", flat=True),
            "public_id",
            patient_ids(values),
        )
    return search.resolved[key]


def session_keys(search: SearchRequest, values: list[str]) -> list[int]:
    """Internal keys of the treatment sessions of the patients `values` reference (one query)."""
    from ketaclinic.sessions.models import TreatmentSession

    key = ("session", *values)
    if key not in search.resolved:
        search.resolved[key] = shapes.rows_in(
            "session-keys",
            lambda: TreatmentSession.objects.values_list("pk", flat=True),
            "patient_id",
            patient_keys(search, values),
        )
    return search.resolved[key]


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def date_range(raw: str) -> tuple[datetime, datetime]:
    """The half-open UTC interval a FHIR date search value covers (its precision)."""
    value = raw.replace(" ", "+")  # an unencoded '+' in a URL arrives as a space
    match = _DATE.match(value)
    try:
        if match:
            year, month, day = match.groups()
            start = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
            if day:
                end = start + timedelta(days=1)
            elif month:
                end = (start + timedelta(days=32)).replace(day=1)
            else:
                end = start.replace(year=start.year + 1)
            return start, end
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment, moment + timedelta(seconds=1)
    except (ValueError, OverflowError):  # OverflowError: a moment in the last second of 9999
        raise FhirError(
            400, f"{raw!r} is not a FHIR date or dateTime.", expressions=[("date", "invalid date")]
        ) from None


def date_q(field_name: str, raw: str, *, is_date: bool = False) -> Q:
    prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
    start, end = date_range(raw[2:] if raw[:2] in DATE_PREFIXES else raw)
    low: date | datetime = start.date() if is_date else start
    high: date | datetime = end.date() if is_date else end
    if is_date and high == low:
        high = low + timedelta(days=1)
    f = field_name
    match prefix:
        case "eq":
            return Q(**{f"{f}__gte": low, f"{f}__lt": high})
        case "ne":
            return ~Q(**{f"{f}__gte": low, f"{f}__lt": high})
        case "ge":
            return Q(**{f"{f}__gte": low})
        case "gt":
            return Q(**{f"{f}__gte": high})
        case "le":
            return Q(**{f"{f}__lt": high})
        case _:
            return Q(**{f"{f}__lt": low})


def any_of(values: list[str], build: Any) -> Q:
    """OR of the clauses built for each value (no values: matches nothing)."""
    clauses = [build(value) for value in values]
    if not clauses:
        return Q(pk__in=[])
    q = clauses[0]
    for clause in clauses[1:]:
        q |= clause
    return q


def identifier_q(values: list[str], field_name: str = "external_id") -> Q:
    def one(value: str) -> Q:
        system, code = token(value)
        if system is None:
            return Q(**{f"{field_name}__endswith": f"|{code}"})
        return Q(**{field_name: f"{system}|{code}"})

    return any_of(values, one)


def order(queryset: _QS, sort: str, fields: dict[str, str], default: str) -> _QS:
    key = sort or default
    column = fields[key.lstrip("-")]
    prefix = "-" if key.startswith("-") else ""
    return queryset.order_by(f"{prefix}{column}", f"{prefix}pk")


# --- the Bundle -----------------------------------------------------------------------------------


def searchset(
    *,
    base_url: str,
    resource_type: str,
    query: QueryDict,
    search: SearchRequest,
    total: int | None,
    resources: list[dict[str, Any]],
) -> dict[str, Any]:
    def link(relation: str, offset: int) -> dict[str, str]:
        params = [(k, v) for k in query for v in query.getlist(k) if k not in ("_offset", "_count")]
        params += [("_count", str(search.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{base_url}{resource_type}?{urlencode(params)}"}

    links = [link("self", search.offset), link("first", 0)]
    more = search.more if total is None else search.offset + search.count < total
    if search.count and more:
        links.append(link("next", search.offset + search.count))
    if search.offset > 0:
        links.append(link("previous", max(0, search.offset - max(search.count, 1))))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    return bundle | {
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
