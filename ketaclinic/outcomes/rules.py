"""Pure outcome rules for measurement-based care: baseline, percent change, response, remission
and relapse after response.

All instruments handled here score higher for worse symptoms, so a fall in score is improvement.
Every verdict names its rule ("outcome-response@1") and the policy it was judged under, and says
"cannot tell" (`met=None`) with a reason instead of guessing: no baseline, a baseline of 0, an
instrument without a configured rule. Time is an argument; datetimes must be timezone-aware.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

BASELINE_RULE = "outcome-baseline@1"
PERCENT_CHANGE_RULE = "outcome-percent-change@1"
RESPONSE_RULE = "outcome-response@1"
REMISSION_RULE = "outcome-remission@1"
RELAPSE_RULE = "outcome-relapse@1"

Evidence = Literal["C", "S", "U"]  # clinical-reference's confidence tags


@dataclass(frozen=True, slots=True)
class Measurement:
    """One scored questionnaire: instrument id ("phq9"), its total, and when it was taken."""

    instrument_id: str
    score: Decimal
    taken_at: datetime

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not isinstance(self.score, Decimal | int):
            raise TypeError("score must be a Decimal (or int)")
        object.__setattr__(self, "score", Decimal(self.score))
        _require_aware(self.taken_at, "taken_at")
        if self.score < 0:
            raise ValueError("scores of these instruments are never negative")


@dataclass(frozen=True, slots=True)
class RemissionRule:
    """Remission when the score is below (or, if inclusive, at or below) the threshold."""

    threshold: Decimal
    inclusive: bool
    evidence: Evidence
    source: str

    def met_by(self, score: Decimal) -> bool:
        return score <= self.threshold if self.inclusive else score < self.threshold

    def describe(self) -> str:
        return f"{'<=' if self.inclusive else '<'} {self.threshold}"


@dataclass(frozen=True, slots=True)
class RelapseRule:
    """Relapse when `consecutive` assessments in a row score at or above `threshold`, each
    between `min_days_apart` and `max_days_apart` days after the one before."""

    threshold: Decimal
    consecutive: int
    min_days_apart: int
    max_days_apart: int
    evidence: Evidence
    source: str

    def __post_init__(self) -> None:
        if self.consecutive < 1 or not 0 <= self.min_days_apart <= self.max_days_apart:
            raise ValueError("a relapse rule needs >= 1 assessment and a valid day window")


# clinical-reference §4.2 Response: >= 50% reduction from baseline [C] #67 #68 #57
DEFAULT_RESPONSE_REDUCTION_PERCENT = Decimal(50)

DEFAULT_REMISSION_RULES: Mapping[str, RemissionRule] = MappingProxyType(
    {
        # clinical-reference §4.2 Remission – PHQ-9 < 5 [C] #68
        "phq9": RemissionRule(
            Decimal(5),
            inclusive=False,
            evidence="C",
            source="clinical-reference §4.2 remission PHQ-9 < 5 [C] #68",
        ),
        # clinical-reference §4.2 Remission – QIDS-SR16 <= 5 (STAR*D convention) [S] #70
        "qids-sr16": RemissionRule(
            Decimal(5),
            inclusive=True,
            evidence="S",
            source="clinical-reference §4.2 remission QIDS-SR16 <= 5 [S] #70",
        ),
        # clinical-reference §4.2 Remission – MADRS <= 12 (esketamine programme) [C] #4 #68 #69;
        # the <= 10 convention is [U] and is not the default.
        "madrs": RemissionRule(
            Decimal(12),
            inclusive=True,
            evidence="C",
            source="clinical-reference §4.2 remission MADRS <= 12 [C] #4 #68 #69",
        ),
    }
)

DEFAULT_RELAPSE_RULES: Mapping[str, RelapseRule] = MappingProxyType(
    {
        # clinical-reference §4.2 relapse wording (SUSTAIN-1): MADRS >= 22 on 2 consecutive
        # assessments 5-15 days apart, or hospitalisation / suicide attempt / other clinically
        # relevant event. Marked [U] there, so this is a clinic-configurable policy value; no
        # other instrument has a relapse threshold in the reference, so none is invented.
        "madrs": RelapseRule(
            Decimal(22),
            consecutive=2,
            min_days_apart=5,
            max_days_apart=15,
            evidence="U",
            source="clinical-reference §4.2 relapse definition wording [U]",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """A clinic's outcome definitions; `reference` names the stored policy version."""

    response_reduction_percent: Decimal = DEFAULT_RESPONSE_REDUCTION_PERCENT
    remission_rules: Mapping[str, RemissionRule] = field(
        default_factory=lambda: DEFAULT_REMISSION_RULES
    )
    relapse_rules: Mapping[str, RelapseRule] = field(default_factory=lambda: DEFAULT_RELAPSE_RULES)
    reference: str = "clinical-reference-defaults"

    def __post_init__(self) -> None:
        if not Decimal(0) < self.response_reduction_percent <= Decimal(100):
            raise ValueError("the response reduction must be a percentage in (0, 100]")


@dataclass(frozen=True, slots=True)
class Baseline:
    measurement: Measurement
    rule: str = BASELINE_RULE


@dataclass(frozen=True, slots=True)
class PercentChange:
    """(current - baseline) / baseline x 100: negative is improvement. None when undefined."""

    value: Decimal | None
    reason: str
    rule: str = PERCENT_CHANGE_RULE


@dataclass(frozen=True, slots=True)
class Verdict:
    met: bool | None  # None: cannot be decided, see reason
    reason: str
    rule: str
    policy_reference: str


ClinicalEventKind = Literal[
    "hospitalization-for-worsening-depression",
    "suicide-attempt",
    "suicide",
    "other-clinically-relevant",
]


@dataclass(frozen=True, slots=True)
class ClinicalEvent:
    """An event that counts as relapse by itself (clinical-reference §4.2 relapse wording [U])."""

    kind: ClinicalEventKind
    occurred_at: datetime
    description: str = ""

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "occurred_at")


RelapseStatus = Literal["not-applicable", "not-evaluable", "no-relapse", "suspected", "relapsed"]


@dataclass(frozen=True, slots=True)
class RelapseAssessment:
    status: RelapseStatus
    response_at: datetime | None
    relapse_at: datetime | None
    reason: str
    policy_reference: str
    rule: str = RELAPSE_RULE


@dataclass(frozen=True, slots=True)
class OutcomeAssessment:
    """Where a patient stands on one instrument: baseline, latest score and the verdicts."""

    instrument_id: str
    baseline: Baseline | None
    latest: Measurement | None
    percent_change: PercentChange | None
    response: Verdict
    remission: Verdict
    relapse: RelapseAssessment


# --- rules ------------------------------------------------------------------------------------


def find_baseline(
    measurements: Iterable[Measurement], *, first_treatment_at: datetime | None
) -> Baseline | None:
    """The last score taken at or before the first treatment; None if there is none.

    "At or before": a questionnaire stamped with the same instant as the first dose still
    describes the untreated state. Ties on time keep the later one in the given order.
    """
    series = _one_instrument(measurements)
    if first_treatment_at is None:
        return None
    _require_aware(first_treatment_at, "first_treatment_at")
    before = [m for m in series if m.taken_at <= first_treatment_at]
    if not before:
        return None
    return Baseline(max(reversed(before), key=lambda m: m.taken_at))


def percent_change(baseline: Decimal, current: Decimal) -> PercentChange:
    """Signed percent change from baseline. A baseline of 0 has no relative change."""
    if baseline < 0 or current < 0:
        raise ValueError("scores of these instruments are never negative")
    if baseline == 0:
        return PercentChange(None, "baseline score is 0: a relative change is undefined")
    value = (current - baseline) / baseline * 100
    return PercentChange(value, f"from {baseline} to {current}")


def response_verdict(
    baseline: Decimal | None, current: Decimal, *, policy: OutcomePolicy
) -> Verdict:
    """Response: a reduction from baseline of at least the policy's percentage (default 50%)."""
    if baseline is None:
        return Verdict(
            None,
            "no baseline: no score at or before the first treatment",
            RESPONSE_RULE,
            policy.reference,
        )
    change = percent_change(baseline, current)
    if change.value is None:
        return Verdict(None, change.reason, RESPONSE_RULE, policy.reference)
    reduction = -change.value
    met = reduction >= policy.response_reduction_percent
    return Verdict(
        met,
        f"reduction {_pct(reduction)}% from baseline {baseline} to {current} "
        f"(response needs >= {policy.response_reduction_percent}%)",
        RESPONSE_RULE,
        policy.reference,
    )


def remission_verdict(instrument_id: str, current: Decimal, *, policy: OutcomePolicy) -> Verdict:
    """Remission: the current score under the instrument's threshold (PHQ-9 < 5, ...)."""
    rule = policy.remission_rules.get(instrument_id)
    if rule is None:
        return Verdict(
            None,
            f"no remission threshold is defined for {instrument_id}",
            REMISSION_RULE,
            policy.reference,
        )
    met = rule.met_by(current)
    return Verdict(
        met,
        f"score {current} vs remission {rule.describe()} ({rule.source})",
        REMISSION_RULE,
        policy.reference,
    )


def assess_relapse(
    measurements: Iterable[Measurement],
    *,
    first_treatment_at: datetime | None,
    policy: OutcomePolicy,
    events: Iterable[ClinicalEvent] = (),
) -> RelapseAssessment:
    """Relapse after response: a qualifying clinical event, or a confirmed run of high scores.

    Before any response there is nothing to relapse from ("not-applicable"). After it, a single
    score at or above the relapse threshold without its confirming assessment yet is reported
    as "suspected", so the team can look before the rule is fully met.
    """
    series = _one_instrument(measurements)
    ref = policy.reference
    baseline = find_baseline(series, first_treatment_at=first_treatment_at)
    if baseline is None or first_treatment_at is None:
        return RelapseAssessment(
            "not-applicable", None, None, "no baseline, so no response to relapse from", ref
        )
    treated = [m for m in series if m.taken_at > first_treatment_at]
    base = baseline.measurement.score
    response = next(
        (m for m in treated if response_verdict(base, m.score, policy=policy).met), None
    )
    if response is None:
        return RelapseAssessment("not-applicable", None, None, "no response yet", ref)

    after = [m for m in treated if m.taken_at > response.taken_at]
    late_events = sorted(
        (e for e in events if e.occurred_at > response.taken_at), key=lambda e: e.occurred_at
    )
    instrument_id = response.instrument_id
    rule = policy.relapse_rules.get(instrument_id)
    confirmed = _confirmed_run(after, rule) if rule else None

    candidates: list[tuple[datetime, str]] = []
    if late_events:
        first = late_events[0]
        candidates.append(
            (
                first.occurred_at,
                f"clinical event after response: {first.kind}"
                + (f" ({first.description})" if first.description else ""),
            )
        )
    if confirmed is not None and rule is not None:
        candidates.append((confirmed[-1].taken_at, _run_reason(confirmed, rule)))
    if candidates:
        relapse_at, reason = min(candidates, key=lambda candidate: candidate[0])
        return RelapseAssessment("relapsed", response.taken_at, relapse_at, reason, ref)
    if rule is None:
        return RelapseAssessment(
            "not-evaluable",
            response.taken_at,
            None,
            f"no relapse score rule is configured for {instrument_id}; only clinical events "
            "count, and none occurred after response",
            ref,
        )
    if after and after[-1].score >= rule.threshold:
        return RelapseAssessment(
            "suspected",
            response.taken_at,
            None,
            f"latest score {after[-1].score} >= {rule.threshold}; relapse needs "
            f"{rule.consecutive} consecutive such assessments {rule.min_days_apart}-"
            f"{rule.max_days_apart} days apart ({rule.source})",
            ref,
        )
    return RelapseAssessment(
        "no-relapse",
        response.taken_at,
        None,
        f"no qualifying event or score run since response ({rule.source})",
        ref,
    )


def assess_outcome(
    measurements: Iterable[Measurement],
    *,
    first_treatment_at: datetime | None,
    policy: OutcomePolicy,
    events: Iterable[ClinicalEvent] = (),
) -> OutcomeAssessment:
    """Baseline, latest score, percent change, response, remission and relapse for one series."""
    series = _one_instrument(measurements)
    if not series:
        raise ValueError("no measurements to assess")
    instrument_id = series[0].instrument_id
    baseline = find_baseline(series, first_treatment_at=first_treatment_at)
    latest = max(reversed(series), key=lambda m: m.taken_at)
    base = baseline.measurement.score if baseline else None
    return OutcomeAssessment(
        instrument_id=instrument_id,
        baseline=baseline,
        latest=latest,
        percent_change=percent_change(base, latest.score) if base is not None else None,
        response=response_verdict(base, latest.score, policy=policy),
        remission=remission_verdict(instrument_id, latest.score, policy=policy),
        relapse=assess_relapse(
            series, first_treatment_at=first_treatment_at, policy=policy, events=events
        ),
    )


# --- helpers ---------------------------------------------------------------------------------


def _one_instrument(measurements: Iterable[Measurement]) -> list[Measurement]:
    series = sorted(measurements, key=lambda m: m.taken_at)
    instruments = {m.instrument_id for m in series}
    if len(instruments) > 1:
        raise ValueError(f"measurements mix instruments: {sorted(instruments)}")
    return series


def _confirmed_run(after: Sequence[Measurement], rule: RelapseRule) -> list[Measurement] | None:
    """The earliest run of `rule.consecutive` adjacent high scores with qualifying spacing."""
    low, high = timedelta(days=rule.min_days_apart), timedelta(days=rule.max_days_apart)
    for start in range(len(after) - rule.consecutive + 1):
        run = list(after[start : start + rule.consecutive])
        high_scores = all(m.score >= rule.threshold for m in run)
        spaced = all(
            low <= b.taken_at - a.taken_at <= high for a, b in zip(run, run[1:], strict=False)
        )
        if high_scores and spaced:
            return run
    return None


def _run_reason(run: Sequence[Measurement], rule: RelapseRule) -> str:
    scores = ", ".join(str(m.score) for m in run)
    return (
        f"{len(run)} consecutive scores >= {rule.threshold} ({scores}) "
        f"{rule.min_days_apart}-{rule.max_days_apart} days apart ({rule.source})"
    )


def _pct(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1")))


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
