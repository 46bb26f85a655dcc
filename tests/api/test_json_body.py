"""The JSON API reads request bodies with orjson where orjson can (core.api.json_loads): every body
gives the value, or the error, the standard library's json.loads gave, and the API answers the
bodies only json accepts (NaN, Infinity, huge numbers, lone surrogates...) as it did."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import api_client
from ketaclinic.core.api import json_loads


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b  # NaN
    return bool(a == b)


def _outcome(loads: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "value", loads(body)
    except Exception as error:  # noqa: BLE001 - the error itself is what is compared
        return type(error).__name__, str(error)


BODIES = [
    b'{"value": "72.5", "unit": "kg"}',
    b' {"a": [1, 2.5, -0.0, 1e5, 1E-7, true, false, null, "\\u00e9\\ud83d\\ude00"]} \n',
    b'{"a": 1, "b": 2, "a": 3}',  # duplicate keys: the last value, at the first place
    b"NaN",
    b'{"value": Infinity}',
    b'{"value": -Infinity}',
    b'{"value": 1e400}',
    b'{"value": 9223372036854775807}',
    b'{"value": 18446744073709551615}',
    b'{"value": -9223372036854775808}',
    b'"\\ud800"',  # a lone surrogate, escaped
    b'"\xed\xa0\x80"',  # ... and encoded
    b'"\xff"',  # invalid UTF-8
    b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
    '{"a": 1}'.encode("utf-16"),
    '{"a": 1}'.encode("utf-32-le"),
    b"",
    b"   ",
    b"[1,]",
    b'{"a": 1} x',
    b'"\x01"',
    b"1" * 5000,  # beyond Python's 4,300 digits
    b"[" * 5000 + b"]" * 5000,  # beyond both parsers' depth
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: repr(b[:30]))
def test_a_body_reads_as_json_loads_reads_it(body: bytes) -> None:
    ours, theirs = _outcome(json_loads, body), _outcome(json.loads, body)
    assert ours[0] == theirs[0]
    assert _same(ours[1], theirs[1]) if ours[0] == "value" else ours[1] == theirs[1]


@pytest.mark.parametrize(
    "number", [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 30]
)
def test_integers_beyond_64_bits_are_refused_alike(number: bytes) -> None:
    """orjson reads them as floats, json as ints: both are outside the limits, with one message."""
    from ketaclinic.core.input_limits import InputProblem, check_document

    problems = []
    for loads in (json_loads, json.loads):
        with pytest.raises(InputProblem) as refused:
            check_document(loads(b'{"value": ' + number + b"}"))
        problems.append((refused.value.path, refused.value.message, refused.value.status))
    assert problems[0] == problems[1]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON, st.booleans())
def test_any_document_reads_as_json_loads_reads_it(document: Any, ascii_only: bool) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _same(*[_outcome(loads, body) for loads in (json_loads, json.loads)])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b'{"value": NaN, "unit": "kg"}', 422, "value", "must be a finite number."),
        (b'{"value": 1e400, "unit": "kg"}', 422, "value", "must be a finite number."),
        (
            b'{"value": 18446744073709551616, "unit": "kg"}',
            422,
            "value",
            "is out of range: numbers must lie strictly between -10^15 and 10^15.",
        ),
        (b'{"value": "70", "unit": "\xff"}', 400, None, None),
        (b'{"value": "70", "unit": "kg"', 400, None, None),
    ],
    ids=["nan", "overflow", "beyond-64-bits", "invalid-utf-8", "truncated"],
)
def test_the_api_answers_what_only_json_reads_as_before(
    members: Any, patient_a: Any, body: bytes, status: int, field: str | None, message: str | None
) -> None:
    api = api_client(members["prescriber"])
    response = api.post(
        f"/api/v1/patients/{patient_a.public_id}/weights", body, content_type="application/json"
    )
    assert response.status_code == status, response.content
    answer = response.json()
    if field is None:
        assert answer == {"detail": "Cannot parse request body", "errors": []}
    else:
        assert answer["errors"] == [{"field": field, "message": message}]
