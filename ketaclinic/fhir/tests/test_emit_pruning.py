"""`emit` drops what FHIR JSON may not hold (nulls, empty arrays and objects) in one pass; the
property pins it to the plain recursive definition it replaced."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.fhir.common import _pruned


def _by_definition(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _by_definition(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in pruned.items() if v != [] and v != {}}
    if isinstance(value, list):
        return [item for item in (_by_definition(v) for v in value) if item != {}]
    return value


LEAVES = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.floats(allow_nan=False)
)
TREES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(TREES)
def test_pruning_keeps_exactly_what_the_definition_keeps(tree: Any) -> None:
    assert _pruned(tree) == _by_definition(tree)


def test_nested_empties_vanish_and_falsy_values_stay() -> None:
    resource: dict[str, Any] = {
        "a": None,
        "b": [],
        "c": {"d": [None, {}], "e": ""},
        "f": 0,
        "g": False,
        "h": [[]],
    }
    assert _pruned(resource) == {"c": {"d": [None], "e": ""}, "f": 0, "g": False, "h": [[]]}
