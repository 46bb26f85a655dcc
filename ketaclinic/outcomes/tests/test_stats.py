"""Outcome statistics as R's survival package computes them, on cohorts small enough to check
by hand and on R's published `aml` output (tests/data/outcomes/README.md cites it)."""

from __future__ import annotations

import csv
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.outcomes.rules import OutcomePolicy, remission_verdict, response_verdict
from ketaclinic.outcomes.stats import kaplan_meier, logrank, proportion, wilson_interval

AML = Path(__file__).resolve().parents[3] / "tests" / "data" / "outcomes" / "aml.csv"


def aml_groups() -> dict[str, tuple[list[float], list[bool]]]:
    groups: dict[str, tuple[list[float], list[bool]]] = {}
    with AML.open() as handle:
        for row in csv.DictReader(handle):
            times, events = groups.setdefault(row["x"], ([], []))
            times.append(float(row["time"]))
            events.append(row["status"] == "1")
    return groups


def at(fit, time):
    return next(point for point in fit.curve if point.time == time)


# --- hand-computed cohorts ------------------------------------------------------------------------


def test_tied_events_that_leave_the_curve_exactly_at_half_take_the_midpoint_median() -> None:
    # 4 at risk, 2 relapse at week 1: S = 0.5 exactly until week 2, so R's median is 1.5.
    fit = kaplan_meier([1, 1, 2, 3], [True, True, True, True])
    assert at(fit, 1).survival == 0.5
    assert at(fit, 1).at_risk == 4
    assert fit.median.time == 1.5
    assert fit.quantiles["25"].time == 1
    # Week 2 leaves S = 0.25 exactly until week 3: the third quartile is their midpoint too.
    assert fit.quantiles["75"].time == 2.5


def test_a_censoring_at_an_event_time_still_counts_in_that_risk_set() -> None:
    fit = kaplan_meier([2, 2, 4, 5], [True, False, True, True])
    first = at(fit, 2)
    assert (first.at_risk, first.events, first.censored) == (4, 1, 1)
    assert first.survival == 0.75
    # Greenwood: 1 / (4 * 3); log interval S * exp(+-1.96 * se), the upper capped at 1.
    se = math.sqrt(1 / 12)
    assert first.std_err == pytest.approx(se)
    assert first.ci_lower == pytest.approx(0.75 * math.exp(-1.959963984540054 * se))
    assert first.ci_upper == 1.0
    assert at(fit, 4).survival == pytest.approx(0.375)
    assert at(fit, 4).at_risk == 2
    # S sits exactly on 0.75 from week 2 to week 4: the first quartile is their midpoint.
    assert fit.quantiles["25"].time == 3
    assert fit.median.time == 4


def test_an_all_censored_cohort_has_no_median_and_a_flat_certain_curve() -> None:
    fit = kaplan_meier([3, 5, 7], [False, False, False])
    assert (fit.n, fit.events) == (3, 0)
    assert {p.survival for p in fit.curve} == {1.0}
    assert {(p.ci_lower, p.ci_upper) for p in fit.curve} == {(1.0, 1.0)}
    assert all(q.time is None and q.ci_lower is None for q in fit.quantiles.values())


def test_a_single_patient_who_relapses_gives_the_time_but_no_interval() -> None:
    fit = kaplan_meier([4], [True])
    assert fit.curve[0].survival == 0.0
    assert fit.curve[0].ci_lower is None
    assert fit.curve[0].ci_upper is None
    assert fit.median.time == 4
    assert fit.median.ci_lower is None
    assert fit.median.ci_upper is None


def test_a_single_censored_patient_reaches_no_quantile() -> None:
    fit = kaplan_meier([4], [False])
    assert fit.median.time is None


def test_a_median_never_reached_is_none_and_a_flat_to_the_end_uses_last_follow_up() -> None:
    fit = kaplan_meier([1, 2, 3, 4], [True, False, False, False])
    assert fit.median.time is None
    assert fit.median.ci_upper is None
    # S = 0.75 from week 1 to the end of follow-up (week 4): R takes (1 + 4) / 2.
    assert fit.quantiles["25"].time == 2.5


def test_half_relapsing_with_the_rest_censored_later_takes_the_midpoint_to_last_follow_up() -> None:
    assert kaplan_meier([1, 3], [True, False]).median.time == 2


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        kaplan_meier([], [])
    with pytest.raises(ValueError, match="not negative"):
        kaplan_meier([-1], [True])
    with pytest.raises(ValueError, match="same length"):
        kaplan_meier([1, 2], [True])
    with pytest.raises(ValueError, match="two or more"):
        logrank({"a": ([1], [True])})


def test_logrank_by_hand_two_groups_of_two() -> None:
    # Event times 1 (group a, 4 at risk, 2 each) and 2 (group b, 3 at risk: a 1, b 2).
    result = logrank({"a": ([1, 3], [True, False]), "b": ([2, 4], [True, False])})
    expected_a = 2 / 4 + 1 / 3
    assert result.expected["a"] == pytest.approx(expected_a)
    variance = (1 * 3 / 3) * (2 / 4) * (2 / 4) + (1 * 2 / 2) * (1 / 3) * (2 / 3)
    assert result.chisq == pytest.approx((1 - expected_a) ** 2 / variance)
    assert result.df == 1


def test_logrank_leaves_out_a_group_with_no_expected_events_as_survdiff_does() -> None:
    result = logrank({"a": ([5, 6], [True, True]), "b": ([1], [False])})
    assert (result.chisq, result.df, result.p) == (0.0, 0, None)


# --- R's published aml output -----------------------------------------------------------------


def test_aml_curves_medians_and_intervals_match_r_survfit() -> None:
    groups = aml_groups()
    maintained = kaplan_meier(*groups["Maintained"])
    rest = kaplan_meier(*groups["Nonmaintained"])
    assert (maintained.n, maintained.events) == (11, 7)
    assert (rest.n, rest.events) == (12, 11)
    assert (maintained.median.time, maintained.median.ci_lower, maintained.median.ci_upper) == (
        31,
        18,
        None,
    )
    assert (rest.median.time, rest.median.ci_lower, rest.median.ci_upper) == (23, 8, None)
    published = {  # time: (n.risk, survival, std.err of S, lower, upper)
        9: (11, 0.909, 0.0867, 0.7541, 1.000),
        13: (10, 0.818, 0.1163, 0.6192, 1.000),
        18: (8, 0.716, 0.1397, 0.4884, 1.000),
        23: (7, 0.614, 0.1526, 0.3769, 0.999),
        31: (5, 0.491, 0.1642, 0.2549, 0.946),
        34: (4, 0.368, 0.1627, 0.1549, 0.875),
        48: (2, 0.184, 0.1535, 0.0359, 0.944),
    }
    for time, (n_risk, survival, std_err, lower, upper) in published.items():
        point = at(maintained, time)
        assert point.at_risk == n_risk
        assert round(point.survival, 3) == survival
        assert round(point.survival * point.std_err, 4) == std_err
        assert round(point.ci_lower, 4) == lower
        assert round(point.ci_upper, 3) == upper


def test_aml_logrank_matches_r_survdiff() -> None:
    result = logrank(aml_groups())
    assert round(result.expected["Maintained"], 2) == 10.69
    assert round(result.expected["Nonmaintained"], 2) == 7.31
    assert round(result.chisq, 1) == 3.4
    assert result.df == 1
    assert result.p is not None
    assert round(result.p, 2) == 0.07


def test_lifelines_agrees_on_the_curve_and_the_test_but_not_on_the_median_rule() -> None:
    """Why the service computes R's way (docs/sources/outcomes.md): lifelines' survival values
    and log-rank statistic match, its median ignores R's midpoint rule."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    groups = aml_groups()
    times, events = groups["Nonmaintained"]
    ours = kaplan_meier(times, events)
    theirs = KaplanMeierFitter().fit(times, events)
    for point in ours.curve:
        assert theirs.survival_function_at_times(point.time).iloc[0] == pytest.approx(
            point.survival
        )
    all_times = groups["Maintained"][0] + times
    labels = ["Maintained"] * 11 + ["Nonmaintained"] * 12
    lifelines_test = multivariate_logrank_test(all_times, labels, groups["Maintained"][1] + events)
    assert lifelines_test.test_statistic == pytest.approx(logrank(groups).chisq)

    tied = KaplanMeierFitter().fit([1, 1, 2, 3], [True] * 4)
    assert tied.median_survival_time_ == 1  # R (and we) say 1.5
    assert kaplan_meier([1, 1, 2, 3], [True] * 4).median.time == 1.5


# --- rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "lower", "upper"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
        (0, 1, 0.0, 0.7935),
    ],
)
def test_wilson_interval_table(successes: int, n: int, lower: float, upper: float) -> None:
    interval = wilson_interval(successes, n)
    assert interval is not None
    assert (round(interval[0], 4), round(interval[1], 4)) == (lower, upper)


def test_no_evaluable_patient_has_no_rate() -> None:
    assert wilson_interval(0, 0) is None
    rate = proportion([None, None])
    assert (rate.rate, rate.ci_lower, rate.not_evaluable) == (None, None, 2)


def _cohort_verdicts(pairs, instrument="phq9"):
    policy = OutcomePolicy()
    response = [
        response_verdict(None if b is None else Decimal(b), Decimal(c), policy=policy).met
        for b, c in pairs
    ]
    remission = [remission_verdict(instrument, Decimal(c), policy=policy).met for _, c in pairs]
    return proportion(response), proportion(remission)


def test_response_and_remission_counts_on_a_hand_computed_phq9_cohort() -> None:
    # (baseline, score after induction)
    cohort = [
        (20, 10),  # exactly 50% drop: responder; 10 is not < 5
        (20, 11),  # 45%: not a responder
        (18, 4),  # responder, remission (4 < 5)
        (15, 5),  # responder (66.7%); 5 is not < 5: no remission
        (None, 3),  # no baseline: response cannot be told; remission still can
        (0, 0),  # baseline 0: relative change undefined; remission yes
    ]
    response, remission = _cohort_verdicts(cohort)
    assert (response.successes, response.n, response.not_evaluable) == (3, 4, 2)
    assert response.rate == 0.75
    assert (remission.successes, remission.n) == (3, 6)


def test_madrs_remission_uses_the_inclusive_threshold_of_12() -> None:
    _, remission = _cohort_verdicts([(30, 12), (30, 13)], instrument="madrs")
    assert (remission.successes, remission.n) == (1, 2)


@given(st.lists(st.one_of(st.booleans(), st.none()), min_size=0, max_size=60))
def test_adding_a_non_responder_never_raises_the_response_rate(verdicts) -> None:
    before = proportion(verdicts)
    after = proportion([*verdicts, False])
    assert after.rate is not None
    assert before.rate is None or after.rate <= before.rate
    assert after.ci_upper is not None
    assert before.ci_upper is None or after.ci_upper <= before.ci_upper + 1e-12
