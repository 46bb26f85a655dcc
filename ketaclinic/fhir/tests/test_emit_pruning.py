"""`emit` drops what FHIR JSON may not hold (nulls, empty arrays and objects) in one pass; the
property pins it to the plain recursive definition it replaced."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.fhir.common import _pruned, emit_as_built, instant


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


# Leaves that spell what the JSON check looks for inside strings, so its false alarms are tried.
SPELLED = st.sampled_from(["null", "[]", "{}", "a[]", "{}b", "nul"])
TREES_WITH_SPELLED = st.recursive(
    LEAVES | SPELLED,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=2) | SPELLED, inner, max_size=4)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=2), TREES_WITH_SPELLED, max_size=5))
def test_emit_as_built_sends_what_emit_sends(resource: dict[str, Any]) -> None:
    """The bulk export's shortcut (the dict as built when its JSON shows nothing to drop); these
    dicts are no FHIR resources, so the outgoing check is off."""
    with override_settings(FHIR_VALIDATE_OUTGOING=False):
        assert emit_as_built(resource) == _pruned(resource)


@given(st.datetimes(timezones=st.timezones()))
def test_an_instant_is_the_utc_moment_to_the_second(moment: datetime) -> None:
    assert instant(moment) == moment.astimezone(UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )
