"""Treatment-resistant depression: >= 2 failed adequate trials in the current episode."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.screening.tests.builders import failed_trial, trials
from ketaclinic.screening.trd import (
    TRD_RULE,
    AntidepressantTrial,
    TrdAssessment,
    TrdStatus,
    TrialOutcome,
    assess_trd,
)


def assess(
    *history: AntidepressantTrial, required: int = 2, partial_counts: bool = True
) -> TrdAssessment:
    return assess_trd(
        history,
        minimum_failed_adequate_trials=required,
        partial_response_counts_as_failure=partial_counts,
    )


def test_two_failed_adequate_trials_in_this_episode_make_depression_treatment_resistant() -> None:
    result = assess(failed_trial("sertraline"), failed_trial("bupropion"))
    assert result.status is TrdStatus.MET
    assert result.met
    assert [trial.drug for trial in result.counted] == ["sertraline", "bupropion"]
    assert result.rule == TRD_RULE == "trd-failed-adequate-trials@1"


def test_one_failed_trial_is_not_enough() -> None:
    result = assess(failed_trial("sertraline"))
    assert result.status is TrdStatus.NOT_MET
    assert result.required_failed_trials == 2


def test_no_trials_is_not_treatment_resistant() -> None:
    assert assess().status is TrdStatus.NOT_MET


@pytest.mark.parametrize(
    ("change", "reason_fragment"),
    [
        ({"in_current_episode": False}, "earlier episode"),
        ({"adequate": False}, "not of adequate dose and duration"),
        ({"outcome": TrialOutcome.RESPONSE}, "not a failed trial"),
        ({"outcome": TrialOutcome.REMISSION}, "not a failed trial"),
        ({"outcome": TrialOutcome.STOPPED_FOR_INTOLERANCE}, "intolerance"),
        ({"outcome": TrialOutcome.ONGOING}, "still under way"),
    ],
)
def test_a_trial_that_cannot_count_says_why(
    change: dict[str, object], reason_fragment: str
) -> None:
    excluded = replace(failed_trial("bupropion"), **change)  # type: ignore[arg-type]
    result = assess(failed_trial("sertraline"), excluded)
    assert result.status is TrdStatus.NOT_MET
    (uncounted,) = result.not_counted
    assert uncounted.trial == excluded
    assert any(reason_fragment in reason for reason in uncounted.reasons)
    assert not uncounted.could_count_if_documented


def test_a_partial_response_counts_as_a_failure_by_default() -> None:
    partial = replace(failed_trial("bupropion"), outcome=TrialOutcome.PARTIAL_RESPONSE)
    assert assess(failed_trial("sertraline"), partial).status is TrdStatus.MET


def test_a_stricter_policy_does_not_count_a_partial_response() -> None:
    partial = replace(failed_trial("bupropion"), outcome=TrialOutcome.PARTIAL_RESPONSE)
    result = assess(failed_trial("sertraline"), partial, partial_counts=False)
    assert result.status is TrdStatus.NOT_MET
    assert "partial response" in result.not_counted[0].reasons[0]


def test_the_same_drug_twice_counts_once() -> None:
    result = assess(failed_trial("Sertraline"), failed_trial(" sertraline "))
    assert result.status is TrdStatus.NOT_MET
    assert result.not_counted[0].reasons == ("the same drug already counts once",)


@pytest.mark.parametrize(
    "change",
    [{"adequate": None}, {"in_current_episode": None}, {"outcome": TrialOutcome.UNKNOWN}],
)
def test_an_undocumented_trial_leaves_the_status_undetermined(change: dict[str, object]) -> None:
    unclear = replace(failed_trial("bupropion"), **change)  # type: ignore[arg-type]
    result = assess(failed_trial("sertraline"), unclear)
    assert result.status is TrdStatus.UNDETERMINED
    assert result.not_counted[0].could_count_if_documented


def test_an_undocumented_trial_that_failed_another_test_cannot_rescue_the_status() -> None:
    unclear_but_responded = AntidepressantTrial(
        drug="bupropion", adequate=None, outcome=TrialOutcome.RESPONSE, in_current_episode=True
    )
    assert assess(failed_trial("sertraline"), unclear_but_responded).status is TrdStatus.NOT_MET


def test_a_clinic_requiring_three_trials_needs_three() -> None:
    two = (failed_trial("sertraline"), failed_trial("bupropion"))
    assert assess(*two, required=3).status is TrdStatus.NOT_MET
    assert assess(*two, failed_trial("mirtazapine"), required=3).status is TrdStatus.MET


_STATUS_ORDER = {TrdStatus.NOT_MET: 0, TrdStatus.UNDETERMINED: 1, TrdStatus.MET: 2}


@given(history=st.lists(trials, max_size=6))
def test_every_trial_is_either_counted_or_explained(history: list[AntidepressantTrial]) -> None:
    result = assess(*history)
    assert len(result.counted) + len(result.not_counted) == len(history)
    assert all(item.reasons for item in result.not_counted)
    for trial in result.counted:
        assert trial.adequate is True
        assert trial.in_current_episode is True
        assert trial.outcome in (TrialOutcome.NO_RESPONSE, TrialOutcome.PARTIAL_RESPONSE)
    distinct = {" ".join(trial.drug.casefold().split()) for trial in result.counted}
    assert len(distinct) == len(result.counted)
    assert result.met == (len(distinct) >= 2)


@given(history=st.lists(trials, max_size=5), drug=st.sampled_from(["a", "b", "c", "d"]))
def test_another_failed_trial_never_weakens_the_status(
    history: list[AntidepressantTrial], drug: str
) -> None:
    before = assess(*history).status
    after = assess(*history, failed_trial(drug)).status
    assert _STATUS_ORDER[after] >= _STATUS_ORDER[before]
