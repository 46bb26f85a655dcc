"""Treatment-resistant depression (TRD) status from a patient's antidepressant trials.

Pure module. Definition (clinical-reference §4.1 [C] #4, #59, #60): major depression with an
inadequate response to at least two antidepressants of adequate dose and duration in the
current episode. "Inadequate response" follows the operational definition of
clinical-reference §4.1 [C] #61 (non-response = less than 50% improvement), so a partial
response counts as a failure unless the clinic's policy says otherwise. A trial stopped
early for intolerance is not a failure of efficacy (EU-PEARL, §4.1 [C] #62).

Two trials of the same drug count once: the definition counts antidepressants, not attempts.

"Adequate" is the prescriber's tick, checked against the trial's dates: the operational definition
sets a minimum trial length of 4-6 weeks (§4.1 [C] #61) and stopping before week 4 is not a failed
trial (§4.1 [C] #62). A trial ticked adequate whose dates show it ran shorter than the clinic's
minimum does not count, and the contradiction is reported so a prescriber looks at it; the tick is
never silently trusted. The reference gives no per-drug dose threshold, so adequacy of dose stays
the prescriber's documented judgement. (docs/sources/screening.md)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

TRD_RULE = "trd-failed-adequate-trials@1"


class TrialOutcome(StrEnum):
    NO_RESPONSE = "no_response"
    PARTIAL_RESPONSE = "partial_response"
    RESPONSE = "response"
    REMISSION = "remission"
    STOPPED_FOR_INTOLERANCE = "stopped_for_intolerance"
    ONGOING = "ongoing"
    UNKNOWN = "unknown"


class TrdStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    # Not met on what is documented, but would be if unknown adequacy/episode/outcome
    # answers turned out favourably: the chart needs completing.
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True, kw_only=True)
class AntidepressantTrial:
    drug: str
    adequate: bool | None  # adequate dose and duration; None = not documented
    outcome: TrialOutcome
    in_current_episode: bool | None  # None = not documented
    # How long it ran, from its dates (end or, while taken, the screening date, minus start);
    # None when the dates do not say.
    days: int | None = None


@dataclass(frozen=True, slots=True)
class UncountedTrial:
    trial: AntidepressantTrial
    reasons: tuple[str, ...]
    could_count_if_documented: bool


@dataclass(frozen=True, slots=True)
class TrdAssessment:
    status: TrdStatus
    rule: str
    required_failed_trials: int
    counted: tuple[AntidepressantTrial, ...]
    not_counted: tuple[UncountedTrial, ...]
    # Trials ticked adequate whose dates say they were too short: for the prescriber to resolve.
    contradicted: tuple[AntidepressantTrial, ...] = ()

    @property
    def met(self) -> bool:
        return self.status is TrdStatus.MET


def _drug_key(drug: str) -> str:
    return " ".join(drug.casefold().split())


def contradicts_dates(trial: AntidepressantTrial, minimum_trial_weeks: int) -> bool:
    """Ticked adequate, yet its dates show it ran shorter than the minimum trial length."""
    return (
        trial.adequate is True and trial.days is not None and trial.days < 7 * minimum_trial_weeks
    )


def _reasons_against(
    trial: AntidepressantTrial,
    *,
    partial_response_counts_as_failure: bool,
    minimum_trial_weeks: int,
) -> tuple[list[str], list[str]]:
    """Reasons the trial cannot count (definite) and reasons it cannot count yet (unknown)."""
    definite: list[str] = []
    unknown: list[str] = []

    if trial.in_current_episode is False:
        definite.append("was in an earlier episode, not the current one")
    elif trial.in_current_episode is None:
        unknown.append("not documented whether it was in the current episode")

    if contradicts_dates(trial, minimum_trial_weeks):
        definite.append(
            f"is ticked adequate but its dates show {trial.days} days, shorter than the "
            f"{minimum_trial_weeks} weeks an adequate trial needs"
        )
    elif trial.adequate is False:
        definite.append("was not of adequate dose and duration")
    elif trial.adequate is None:
        unknown.append("adequacy of dose and duration is not documented")

    outcome = trial.outcome
    if outcome in (TrialOutcome.RESPONSE, TrialOutcome.REMISSION):
        definite.append(f"the patient had a {outcome.value}, so it is not a failed trial")
    elif outcome is TrialOutcome.PARTIAL_RESPONSE and not partial_response_counts_as_failure:
        definite.append("a partial response does not count as a failure under this policy")
    elif outcome is TrialOutcome.STOPPED_FOR_INTOLERANCE:
        definite.append("stopped for intolerance, which is not a failure of efficacy")
    elif outcome is TrialOutcome.ONGOING:
        definite.append("is still under way")
    elif outcome is TrialOutcome.UNKNOWN:
        unknown.append("the outcome is not documented")
    return definite, unknown


def assess_trd(
    trials: Iterable[AntidepressantTrial],
    *,
    minimum_failed_adequate_trials: int,
    partial_response_counts_as_failure: bool,
    minimum_trial_weeks: int = 4,
) -> TrdAssessment:
    """TRD status, the trials that count towards it and why each other trial does not."""
    counted: list[AntidepressantTrial] = []
    not_counted: list[UncountedTrial] = []
    counted_drugs: set[str] = set()
    possible_drugs: set[str] = set()

    for trial in trials:
        definite, unknown = _reasons_against(
            trial,
            partial_response_counts_as_failure=partial_response_counts_as_failure,
            minimum_trial_weeks=minimum_trial_weeks,
        )
        drug = _drug_key(trial.drug)
        if not definite and not unknown and drug in counted_drugs:
            definite.append("the same drug already counts once")
        if definite or unknown:
            could_count = not definite
            if could_count:
                possible_drugs.add(drug)
            not_counted.append(UncountedTrial(trial, tuple(definite + unknown), could_count))
        else:
            counted.append(trial)
            counted_drugs.add(drug)

    if len(counted_drugs) >= minimum_failed_adequate_trials:
        status = TrdStatus.MET
    elif len(counted_drugs | possible_drugs) >= minimum_failed_adequate_trials:
        status = TrdStatus.UNDETERMINED
    else:
        status = TrdStatus.NOT_MET
    return TrdAssessment(
        status=status,
        rule=TRD_RULE,
        required_failed_trials=minimum_failed_adequate_trials,
        counted=tuple(counted),
        not_counted=tuple(not_counted),
        contradicted=tuple(
            u.trial for u in not_counted if contradicts_dates(u.trial, minimum_trial_weeks)
        ),
    )
