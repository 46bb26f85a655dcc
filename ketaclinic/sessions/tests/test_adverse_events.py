"""Adverse events: the ketamine list, grade meanings and escalation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.adverse_events import (
    ADVERSE_EVENTS_BY_CODE,
    GRADE_DEFINITIONS,
    KETAMINE_ADVERSE_EVENTS,
    CtcaeGrade,
    requires_escalation,
)


def test_every_grade_from_1_to_5_has_a_definition() -> None:
    assert sorted(GRADE_DEFINITIONS) == [1, 2, 3, 4, 5]
    assert "Life-threatening" in GRADE_DEFINITIONS[CtcaeGrade.LIFE_THREATENING]


def test_the_list_holds_the_common_esketamine_events_with_sources() -> None:
    for code in ("dissociation", "dizziness", "nausea", "sedation", "blood_pressure_increased"):
        assert code in ADVERSE_EVENTS_BY_CODE
    codes = [event.code for event in KETAMINE_ADVERSE_EVENTS]
    assert len(codes) == len(set(codes))
    assert all(event.source for event in KETAMINE_ADVERSE_EVENTS)


@pytest.mark.parametrize(
    ("grade", "serious", "code", "escalate"),
    [
        (1, False, None, False),
        (2, False, "nausea", False),
        (3, False, None, True),
        (4, False, "dissociation", True),
        (5, False, None, True),
        (1, True, "headache", True),
        (1, False, "respiratory_depression", True),
        (1, False, "loss_of_consciousness", True),
        (2, False, "suicidal_thoughts", True),
    ],
)
def test_grade_3_or_worse_serious_events_and_rems_outcomes_escalate(
    grade: int, serious: bool, code: str | None, escalate: bool
) -> None:
    assert requires_escalation(grade, serious, event_code=code) is escalate


@pytest.mark.parametrize("grade", [0, 6, -1, True])
def test_a_grade_outside_1_to_5_is_rejected(grade: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - enum and bool guards word it differently
        requires_escalation(grade, False)


def test_an_unknown_event_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        requires_escalation(1, False, event_code="hiccups")


@given(
    st.integers(1, 5),
    st.integers(1, 5),
    st.booleans(),
    st.sampled_from(list(ADVERSE_EVENTS_BY_CODE)),
)
def test_a_worse_grade_never_escalates_less(a: int, b: int, serious: bool, code: str) -> None:
    low, high = sorted((a, b))
    if requires_escalation(low, serious, event_code=code):
        assert requires_escalation(high, serious, event_code=code)
    assert requires_escalation(high, True, event_code=code)
