"""The pure note rules: what a note needs before signing, and the psychotherapy time bands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.therapy import notes
from ketaclinic.therapy.tests.builders import CONTENT, MENTAL_STATUS_OK

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def facts(
    minutes: int, *, with_em: bool = False, kind: str = "integration", fmt: str = "individual"
):
    return notes.billing_facts(
        kind=kind,
        visit_format=fmt,
        modality="in_person",
        with_em=with_em,
        started_at=T0,
        ended_at=T0 + timedelta(minutes=minutes),
    )


def test_a_complete_note_of_every_kind_has_no_problems() -> None:
    for kind in notes.VisitKind:
        assert (
            notes.validate_note(
                kind=kind,
                content=CONTENT[kind.value],
                mental_status=MENTAL_STATUS_OK,
                risk_level="none",
                risk_notes="",
                narrative="x",
            )
            == []
        )


def test_an_empty_preparation_note_names_every_missing_part() -> None:
    problems = dict(
        notes.validate_note(
            kind="preparation",
            content={},
            mental_status={},
            risk_level="",
            risk_notes="",
            narrative="",
        )
    )
    assert {"intentions", "set_and_setting", "expectations", "safety_plan"} <= set(problems)
    assert "mental_status.mood" in problems
    assert "risk_level" in problems
    assert "narrative" in problems


def test_a_risk_above_none_needs_a_reason() -> None:
    problems = dict(
        notes.validate_note(
            kind="integration",
            content=CONTENT["integration"],
            mental_status=MENTAL_STATUS_OK,
            risk_level="moderate",
            risk_notes=" ",
            narrative="x",
        )
    )
    assert list(problems) == ["risk_notes"]


def test_the_post_session_checklist_accepts_only_its_own_items() -> None:
    problems = notes.validate_note(
        kind="dosing_support",
        content={**CONTENT["dosing_support"], "post_session_checklist": ["made_up"]},
        mental_status=MENTAL_STATUS_OK,
        risk_level="none",
        risk_notes="",
        narrative="x",
    )
    assert problems == [("post_session_checklist", "Tick only items of the clinic checklist.")]


def test_time_bands_follow_the_billing_reference() -> None:
    assert facts(15).code == ""
    assert facts(15).band == "under 16 min"
    assert facts(16).code == "90832"
    assert facts(37).code == "90832"
    assert facts(38).code == "90834"
    assert facts(52).code == "90834"
    assert facts(53).code == "90837"
    assert facts(180).code == "90837"
    assert facts(45, with_em=True).code == "+90836"
    assert facts(60, fmt="group").code == ""
    assert facts(150, kind="dosing_support").code == ""


@given(st.integers(min_value=16, max_value=600), st.booleans())
def test_every_reportable_duration_gets_exactly_one_code(minutes: int, with_em: bool) -> None:
    result = facts(minutes, with_em=with_em)
    assert result.code
    assert result.code.startswith("+") == with_em
    assert result.minutes == minutes
    assert result.rule == notes.BILLING_RULE


@given(st.integers(min_value=1, max_value=599))
def test_longer_visits_never_get_a_shorter_band(minutes: int) -> None:
    order = ["", "90832", "90834", "90837"]
    assert order.index(facts(minutes).code) <= order.index(facts(minutes + 1).code)


def test_a_visit_cannot_end_before_it_starts() -> None:
    assert notes.check_times(T0, T0 - timedelta(minutes=1)) == [
        ("ended_at", "The visit must end after it started.")
    ]
    assert notes.check_times(T0, None) == []
