"""Outcome rules as a specification: baseline, percent change, response, remission and relapse
after response, including the cases with no baseline and a baseline of 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.outcomes.rules import (
    DEFAULT_REMISSION_RULES,
    ClinicalEvent,
    Measurement,
    OutcomePolicy,
    RelapseRule,
    RemissionRule,
    assess_outcome,
    assess_relapse,
    find_baseline,
    percent_change,
    remission_verdict,
    response_verdict,
)

FIRST_DOSE = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
POLICY = OutcomePolicy()


def on_day(day: int, score: int, instrument_id: str = "phq9") -> Measurement:
    """A score taken `day` days after the first dose (negative: before it)."""
    return Measurement(instrument_id, Decimal(score), FIRST_DOSE + timedelta(days=day))


# --- baseline ------------------------------------------------------------------------------------


def test_baseline_is_the_last_score_before_the_first_treatment() -> None:
    series = [on_day(-14, 22), on_day(-1, 19), on_day(7, 9)]
    baseline = find_baseline(series, first_treatment_at=FIRST_DOSE)
    assert baseline is not None
    assert baseline.measurement.score == 19
    assert baseline.rule == "outcome-baseline@1"


def test_a_score_taken_at_the_instant_of_the_first_dose_is_still_baseline() -> None:
    baseline = find_baseline([on_day(0, 18)], first_treatment_at=FIRST_DOSE)
    assert baseline is not None
    assert baseline.measurement.score == 18


def test_order_of_the_input_does_not_change_the_baseline() -> None:
    series = [on_day(7, 9), on_day(-1, 19), on_day(-14, 22)]
    baseline = find_baseline(series, first_treatment_at=FIRST_DOSE)
    assert baseline is not None
    assert baseline.measurement.score == 19


def test_there_is_no_baseline_without_a_score_before_treatment_or_without_treatment() -> None:
    assert find_baseline([on_day(1, 20)], first_treatment_at=FIRST_DOSE) is None
    assert find_baseline([on_day(-1, 20)], first_treatment_at=None) is None


def test_scores_of_different_instruments_are_never_mixed() -> None:
    with pytest.raises(ValueError, match="mix instruments"):
        find_baseline([on_day(-1, 20), on_day(-2, 30, "madrs")], first_treatment_at=FIRST_DOSE)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Measurement("phq9", Decimal(10), datetime(2025, 3, 3, 9, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        find_baseline([on_day(-1, 20)], first_treatment_at=datetime(2025, 3, 3))  # noqa: DTZ001


# --- percent change and response ---------------------------------------------------------------


def test_percent_change_is_signed_and_negative_for_improvement() -> None:
    assert percent_change(Decimal(20), Decimal(10)).value == Decimal(-50)
    assert percent_change(Decimal(20), Decimal(25)).value == Decimal(25)


def test_percent_change_from_a_baseline_of_0_is_undefined_not_zero() -> None:
    change = percent_change(Decimal(0), Decimal(4))
    assert change.value is None
    assert "baseline score is 0" in change.reason


def test_exactly_half_the_baseline_is_a_response() -> None:
    assert response_verdict(Decimal(20), Decimal(10), policy=POLICY).met is True
    assert response_verdict(Decimal(20), Decimal(11), policy=POLICY).met is False


def test_response_cannot_be_judged_without_a_baseline_or_from_a_baseline_of_0() -> None:
    no_baseline = response_verdict(None, Decimal(3), policy=POLICY)
    zero = response_verdict(Decimal(0), Decimal(0), policy=POLICY)
    assert no_baseline.met is None
    assert "no baseline" in no_baseline.reason
    assert zero.met is None
    assert "baseline score is 0" in zero.reason
    assert no_baseline.rule == zero.rule == "outcome-response@1"


def test_a_clinic_may_define_response_more_strictly() -> None:
    strict = OutcomePolicy(response_reduction_percent=Decimal(60), reference="clinic:1@2")
    verdict = response_verdict(Decimal(20), Decimal(10), policy=strict)
    assert verdict.met is False
    assert verdict.policy_reference == "clinic:1@2"


@given(st.integers(1, 60), st.integers(0, 60))
def test_response_is_exactly_a_halving_under_the_default_policy(
    baseline: int, current: int
) -> None:
    met = response_verdict(Decimal(baseline), Decimal(current), policy=POLICY).met
    assert met is (2 * current <= baseline)


@given(st.integers(1, 60), st.integers(0, 59))
def test_a_lower_current_score_never_loses_a_response(baseline: int, current: int) -> None:
    better = response_verdict(Decimal(baseline), Decimal(current), policy=POLICY).met
    worse = response_verdict(Decimal(baseline), Decimal(current + 1), policy=POLICY).met
    assert better or not worse


# --- remission ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument_id", "in_remission", "not_in_remission"),
    [("phq9", 4, 5), ("qids-sr16", 5, 6), ("madrs", 12, 13)],
)
def test_remission_thresholds_are_the_references_defaults(
    instrument_id: str, in_remission: int, not_in_remission: int
) -> None:
    assert remission_verdict(instrument_id, Decimal(in_remission), policy=POLICY).met is True
    assert remission_verdict(instrument_id, Decimal(not_in_remission), policy=POLICY).met is False


def test_remission_is_undecided_for_an_instrument_without_a_threshold() -> None:
    verdict = remission_verdict("gad7", Decimal(2), policy=POLICY)
    assert verdict.met is None
    assert "no remission threshold" in verdict.reason


def test_a_clinic_may_use_the_stricter_madrs_convention() -> None:
    strict = OutcomePolicy(
        remission_rules={
            **DEFAULT_REMISSION_RULES,
            "madrs": RemissionRule(Decimal(10), inclusive=True, evidence="U", source="clinic"),
        }
    )
    assert remission_verdict("madrs", Decimal(11), policy=strict).met is False


# --- relapse after response ---------------------------------------------------------------------


def madrs_on(day: int, score: int) -> Measurement:
    return on_day(day, score, "madrs")


def test_no_relapse_can_be_judged_before_a_response() -> None:
    series = [madrs_on(-1, 34), madrs_on(14, 30), madrs_on(28, 33)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "not-applicable"
    assert relapse.reason == "no response yet"


def test_no_baseline_means_nothing_to_relapse_from() -> None:
    relapse = assess_relapse([madrs_on(7, 30)], first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "not-applicable"


def test_two_high_madrs_scores_5_to_15_days_apart_after_response_are_a_relapse() -> None:
    series = [madrs_on(-1, 34), madrs_on(21, 12), madrs_on(60, 24), madrs_on(70, 26)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "relapsed"
    assert relapse.response_at == FIRST_DOSE + timedelta(days=21)
    assert relapse.relapse_at == FIRST_DOSE + timedelta(days=70)
    assert relapse.rule == "outcome-relapse@1"


def test_one_high_score_is_only_a_suspected_relapse() -> None:
    series = [madrs_on(-1, 34), madrs_on(21, 12), madrs_on(60, 24)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "suspected"


def test_high_scores_too_close_or_too_far_apart_do_not_confirm_relapse() -> None:
    too_close = [madrs_on(-1, 34), madrs_on(21, 12), madrs_on(60, 24), madrs_on(63, 25)]
    too_far = [madrs_on(-1, 34), madrs_on(21, 12), madrs_on(60, 24), madrs_on(80, 25)]
    for series in (too_close, too_far):
        relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
        assert relapse.status == "suspected"


def test_an_intervening_lower_score_breaks_the_run() -> None:
    series = [
        madrs_on(-1, 34),
        madrs_on(21, 12),
        madrs_on(60, 24),
        madrs_on(65, 15),
        madrs_on(70, 13),
    ]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "no-relapse"


def test_a_suicide_attempt_after_response_is_a_relapse_whatever_the_scores() -> None:
    attempt = ClinicalEvent("suicide-attempt", FIRST_DOSE + timedelta(days=40))
    series = [madrs_on(-1, 34), madrs_on(21, 12), madrs_on(45, 10)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY, events=[attempt])
    assert relapse.status == "relapsed"
    assert relapse.relapse_at == attempt.occurred_at
    assert "suicide-attempt" in relapse.reason


def test_an_event_before_the_response_is_not_a_relapse() -> None:
    admission = ClinicalEvent(
        "hospitalization-for-worsening-depression", FIRST_DOSE + timedelta(days=3)
    )
    series = [madrs_on(-1, 34), madrs_on(21, 12)]
    relapse = assess_relapse(
        series, first_treatment_at=FIRST_DOSE, policy=POLICY, events=[admission]
    )
    assert relapse.status == "no-relapse"


def test_instruments_without_a_relapse_rule_are_not_evaluable_from_scores() -> None:
    series = [on_day(-1, 20), on_day(14, 6), on_day(40, 22), on_day(47, 23)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert relapse.status == "not-evaluable"
    assert "no relapse score rule is configured for phq9" in relapse.reason


def test_a_clinic_may_configure_a_phq9_relapse_rule() -> None:
    policy = OutcomePolicy(
        relapse_rules={
            "phq9": RelapseRule(
                Decimal(15),
                consecutive=2,
                min_days_apart=5,
                max_days_apart=15,
                evidence="U",
                source="clinic policy",
            )
        }
    )
    series = [on_day(-1, 20), on_day(14, 6), on_day(40, 16), on_day(47, 17)]
    relapse = assess_relapse(series, first_treatment_at=FIRST_DOSE, policy=policy)
    assert relapse.status == "relapsed"
    assert relapse.relapse_at == FIRST_DOSE + timedelta(days=47)


# --- the whole picture ----------------------------------------------------------------------------


def test_assess_outcome_reports_baseline_change_response_and_remission() -> None:
    series = [on_day(-3, 18), on_day(14, 10), on_day(28, 4)]
    outcome = assess_outcome(series, first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert outcome.baseline is not None
    assert outcome.latest is not None
    assert outcome.percent_change is not None
    assert outcome.percent_change.value is not None
    assert outcome.baseline.measurement.score == 18
    assert outcome.latest.score == 4
    assert outcome.percent_change.value.quantize(Decimal("0.1")) == Decimal("-77.8")
    assert outcome.response.met is True
    assert outcome.remission.met is True
    assert outcome.relapse.status == "not-evaluable"


def test_assess_outcome_with_a_baseline_of_0_still_judges_remission() -> None:
    outcome = assess_outcome(
        [on_day(-1, 0), on_day(14, 2)], first_treatment_at=FIRST_DOSE, policy=POLICY
    )
    assert outcome.percent_change is not None
    assert outcome.percent_change.value is None
    assert outcome.response.met is None
    assert outcome.remission.met is True


def test_assess_outcome_without_a_baseline_leaves_response_open() -> None:
    outcome = assess_outcome([on_day(14, 2)], first_treatment_at=FIRST_DOSE, policy=POLICY)
    assert outcome.baseline is None
    assert outcome.percent_change is None
    assert outcome.response.met is None
    assert outcome.remission.met is True


def test_policy_rejects_an_impossible_response_percentage() -> None:
    with pytest.raises(ValueError, match="percentage"):
        OutcomePolicy(response_reduction_percent=Decimal(0))
