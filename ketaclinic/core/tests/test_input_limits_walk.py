"""The quick walk of a JSON document (core.input_limits._within_limits) only decides whether the
walk that names the element at fault runs: it must never pass a document that walk refuses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.core.input_limits import (
    MAX_ABS_NUMBER,
    MAX_DEPTH,
    InputProblem,
    _within_limits,
    check_document,
)

scalars = st.none() | st.booleans() | st.text(max_size=8) | st.floats(allow_nan=True)
scalars |= st.integers(min_value=-(10**16), max_value=10**16)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _refused(document: Any) -> bool:
    try:
        check_document(document)
    except InputProblem:
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(documents)
def test_the_quick_walk_passes_only_what_the_full_walk_passes(document: Any) -> None:
    if _within_limits(document):
        assert not _refused(document)


def _nested(depth: int) -> Any:
    document: Any = "leaf"
    for _ in range(depth):
        document = [document]
    return document


@pytest.mark.parametrize(
    ("document", "refused"),
    [
        ({"samples": [{"systolic": 120, "taken_at": "2026-12-06T10:00:00+00:00"}]}, False),
        ({"note": "a\x00b"}, True),
        ({"a\x01": 1}, True),
        ({"value": MAX_ABS_NUMBER}, True),
        ({"value": -MAX_ABS_NUMBER + 1}, False),
        ({"value": float("nan")}, True),
        (_nested(MAX_DEPTH), False),
        (_nested(MAX_DEPTH + 1), True),
    ],
)
def test_limits_at_their_edges(document: Any, refused: bool) -> None:
    assert _refused(document) is refused
