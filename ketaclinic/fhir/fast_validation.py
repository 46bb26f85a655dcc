"""The vital-sign Observation shapes clients send, checked without fhir.resources (issue 13).

Validating a blood-pressure panel through its R4B model was about a sixth of a FHIR create's CPU.
`observation(data)` checks the shapes a chart vital sign arrives in, created, updated or sent in
a Bundle entry (id, status, category, code, subject, encounter, effectiveDateTime,
valueQuantity, components, identifiers, meta.profile; each data type with the elements it
usually carries), each element against the same lexical rules as the R4B
model (fhir_core's patterns for string, code, uri, decimal and dateTime) and the required
bindings `bindings.check_bindings` applies, and the input limits (core.input_limits: printable
text, lengths, number range) by those shapes. It answers with elements the create path reads as
it reads the model (`resource.code.coding[0].system`, `quantity.value` as a Decimal, the
effective time as a datetime, date or partial-date string, every other element of the type None).

It only ever vouches for input: anything else (another element, an extension, a null, an empty
array, a leap second...) answers None and the caller validates with fhir.resources, whose
OperationOutcome names the element and the reason. Accepting means the model accepts too, with
equal values: fast_validation's tests hold it to that over generated valid and invalid samples,
and with settings.FHIR_CHECK_FAST_INPUT (on in the test suite) every accepted resource is also
validated by the model and compared element by element (`validation.parse_received`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from ketaclinic.core.input_limits import MAX_ABS_NUMBER, MAX_STRING_CHARS
from ketaclinic.fhir.bindings import _DATATYPE_CODES, CODES

Parser = Callable[[Any], Any]


class _Unsure(Exception):
    """Not a shape this module vouches for: fhir.resources decides."""


_UNSURE = _Unsure()


class Element:
    """One parsed element. Subclasses per R4B type: every element the type defines reads None
    unless given, and an element it does not define is an AttributeError, as on the model."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


@cache
def kind(type_name: str) -> type[Element]:
    model = get_fhir_model_class(type_name)
    return type(type_name, (Element,), dict.fromkeys(model.model_fields))


# fhir_core's patterns (fhir_core/types.py), matched whole: a value they accept only in part is
# left to the model. Codes must be ASCII (every code system the clinic reads is).
_STRING = re.compile(r"[ \r\n\t\S]+").fullmatch
_CODE = re.compile(r"[^\s]+(\s[^\s]+)*").fullmatch
_URI = re.compile(r"\S*").fullmatch
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?").fullmatch
_LONGEST = MAX_STRING_CHARS
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}").fullmatch  # validation.ID_PATTERN, R4's id
_DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|([+\-])((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00)))?)?)?"
).fullmatch  # as fhir_core's DateTime, less leap seconds and fractions beyond microseconds


# Every string also keeps core.input_limits' rules (printable, at most MAX_STRING_CHARS), so a
# document this module accepts needs no check_document walk of its own.


def _string(value: Any) -> str:
    if type(value) is str and value.isprintable() and len(value) <= _LONGEST and _STRING(value):
        return value
    raise _UNSURE


def _code(value: Any) -> str:
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and len(value) <= _LONGEST
        and _CODE(value)
    ):
        return value
    raise _UNSURE


def _uri(value: Any) -> str:
    if type(value) is str and value.isprintable() and len(value) <= _LONGEST and _URI(value):
        return value
    raise _UNSURE


def _id(value: Any) -> str:
    if type(value) is str and _ID(value):
        return value
    raise _UNSURE


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _UNSURE


def _decimal(value: Any) -> Decimal:
    # The model's own conversion: an int as it is, a float through its shortest text (1.0 stays
    # Decimal("1.0")); bool, text and null are the model's to judge.
    kind_ = type(value)
    if kind_ is int and -MAX_ABS_NUMBER < value < MAX_ABS_NUMBER and _DECIMAL(str(value)):
        return Decimal(value)
    if kind_ is float and -MAX_ABS_NUMBER < value < MAX_ABS_NUMBER and _DECIMAL(text := str(value)):
        return Decimal(text)
    raise _UNSURE


def _date_time(value: Any) -> datetime | date | str:
    """As the model gives it: a datetime with its offset, a date, or a year (and month) as
    sent."""
    if type(value) is not str or not _DATE_TIME(value):
        raise _UNSURE
    try:
        if "T" in value:
            return datetime.fromisoformat(value)
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:  # 2023-02-30
        raise _UNSURE from None
    return value


def _one_of(allowed: frozenset[str]) -> Parser:
    def parse(value: Any) -> str:
        if type(value) is str and value in allowed:
            return value
        raise _UNSURE

    return parse


def _list(item: Parser) -> Parser:
    def parse(value: Any) -> list[Any]:
        if type(value) is not list or not value:
            raise _UNSURE
        return [item(v) for v in value]

    return parse


def _complex(type_name: str, parsers: dict[str, Parser], required: tuple[str, ...] = ()) -> Parser:
    """An object of these elements only (at least one, and every `required` one)."""

    made = kind(type_name)
    new = object.__new__

    def parse(value: Any) -> Element:
        if type(value) is not dict or not value:
            raise _UNSURE
        try:
            fields = {key: parsers[key](item) for key, item in value.items()}
        except KeyError:  # an element this module leaves to the model
            raise _UNSURE from None
        for key in required:
            if key not in fields:
                raise _UNSURE
        element = new(made)
        element.__dict__ = fields
        return element

    return parse


_CODING = _complex(
    "Coding",
    {
        "system": _uri,
        "version": _string,
        "code": _code,
        "display": _string,
        "userSelected": _boolean,
    },
)
_CONCEPT = _complex("CodeableConcept", {"coding": _list(_CODING), "text": _string})
_QUANTITY = _complex(
    "Quantity", {"value": _decimal, "unit": _string, "system": _uri, "code": _code}
)  # no comparator: a "<" reading is no chart value
_REFERENCE = _complex("Reference", {"reference": _string, "type": _uri, "display": _string})
_IDENTIFIER = _complex(
    "Identifier",
    {
        "use": _one_of(frozenset(_DATATYPE_CODES["identifier"]["use"])),
        "system": _uri,
        "value": _string,
    },
)
_META = _complex("Meta", {"profile": _list(_uri)})  # canonical: uri's pattern
_COMPONENT = _complex(
    "ObservationComponent", {"code": _CONCEPT, "valueQuantity": _QUANTITY}, required=("code",)
)
_OBSERVATION = _complex(
    "Observation",
    {
        "resourceType": _one_of(frozenset({"Observation"})),
        "id": _id,  # an update's (PUT) or a Bundle entry's
        "meta": _META,
        "identifier": _list(_IDENTIFIER),
        "status": _one_of(frozenset(CODES["Observation"]["status"])),
        "category": _list(_CONCEPT),
        "code": _CONCEPT,
        "subject": _REFERENCE,
        "encounter": _REFERENCE,  # a session's flowsheet reading (fhir.session_vitals)
        "effectiveDateTime": _date_time,
        "valueQuantity": _QUANTITY,
        "component": _list(_COMPONENT),
    },
    required=("status", "code"),
)


def observation(data: Any) -> Any:
    """The Observation `data` holds when it is one of the shapes above (an Element read as the
    model is, hence Any); None: validate it with the model (it may be valid all the same, or
    wrong in a way the model explains)."""
    if type(data) is not dict or data.get("resourceType") != "Observation":
        return None
    try:
        element = _OBSERVATION(data)
    except _Unsure:
        return None
    del element.__dict__["resourceType"]  # the type, not an element (as on the model)
    return element


def difference(fast: Any, model: Any, path: str = "Observation") -> str | None:
    """Where an accepted resource reads otherwise than the R4B model of the same JSON (every
    element the model defines, at every depth); None when they agree."""
    if isinstance(fast, Element):
        if type(fast).__name__ != type(model).__name__:
            return path
        for name in type(model).model_fields:
            found = difference(getattr(fast, name), getattr(model, name), f"{path}.{name}")
            if found is not None:
                return found
        return None
    if isinstance(fast, list):
        if not isinstance(model, list) or len(fast) != len(model):
            return path
        for index, (a, b) in enumerate(zip(fast, model, strict=True)):
            found = difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if type(fast) is not type(model) or fast != model:
        return path
    if isinstance(fast, datetime) and fast.utcoffset() != model.utcoffset():
        return path
    if isinstance(fast, Decimal) and fast.as_tuple() != model.as_tuple():
        return path
    return None
