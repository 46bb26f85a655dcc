"""The pure timing rule of therapy measures around dosing sessions and therapy visits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.therapy.measure_timing import Course, measure_status

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def course(**kw: object) -> Course:
    base = {
        "plan_start": T0,
        "preparations": [],
        "doses": [],
        "upcoming_sessions": [],
        "integrations": [],
    }
    base.update(kw)
    return Course(**base)  # type: ignore[arg-type]


def state(timing: str, c: Course, answers: list[datetime]) -> str:
    return measure_status(instrument_id="phq9", timing=timing, course=c, answers=answers).status


def test_phq9_before_preparation_is_due_then_done_or_missed() -> None:
    assert state("before_preparation", course(), []) == "due"
    assert state("before_preparation", course(preparations=[T0 + 2 * DAY]), [T0 + DAY]) == "done"
    assert state("before_preparation", course(preparations=[T0 + 2 * DAY]), [T0 + 3 * DAY]) == (
        "missed"
    )


def test_before_each_dosing_resets_after_every_dose() -> None:
    c = course(doses=[T0 + 3 * DAY], upcoming_sessions=[T0 + 10 * DAY])
    assert state("before_each_dosing", c, [T0 + 2 * DAY]) == "due"  # answered before the last dose
    assert state("before_each_dosing", c, [T0 + 5 * DAY]) == "done"
    assert state("before_each_dosing", course(), []) == "waiting"


def test_after_dosing_and_after_integration() -> None:
    dosed = course(doses=[T0 + DAY, T0 + 4 * DAY])
    assert state("after_each_dosing", dosed, [T0 + 2 * DAY]) == "due"
    assert state("after_each_dosing", dosed, [T0 + 5 * DAY]) == "done"
    integrated = course(integrations=[T0 + 6 * DAY])
    assert state("after_integration", integrated, []) == "due"
    assert state("after_integration", integrated, [T0 + 6 * DAY]) == "done"


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_an_answer_now_always_satisfies_the_after_rules(days: list[int]) -> None:
    events = [T0 + d * DAY for d in days]
    now = T0 + 61 * DAY
    c = course(doses=events, integrations=events)
    for timing in ("after_each_dosing", "after_integration"):
        assert state(timing, c, [now]) in ("done", "waiting")
