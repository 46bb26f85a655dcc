"""Pure scoring of one questionnaire response against its instrument definition.

`score_response` turns item answers (option values, keyed by the definition's link ids) into a
total, subscales, a severity band, screening and risk outcomes, and critical findings, and stamps
the result with the definition's rule id ("phq9@1"). It refuses rather than guesses: an unknown
item, an answer that is not one of the item's options, or a missing required answer raises
`ScoringError` naming the item. Proration happens only where a definition carries a published
proration rule. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, Literal

from ketaclinic.measures.definitions import (
    Instrument,
    Item,
    SeverityBand,
    policy_value_range,
)

Answers = Mapping[str, int | None]
RespondentSex = Literal["male", "female"]
RiskLevel = Literal["none", "low", "moderate", "high"]


@dataclass(frozen=True, slots=True)
class CriticalFinding:
    """An answer that needs a clinician now, e.g. PHQ-9 item 9 above 'Not at all'."""

    link_id: str
    value: int
    threshold: int
    finding: str
    label: str
    rule: str
    source: str


class ScoringError(ValueError):
    """The answers cannot be scored. `field` names the item (or policy key) at fault.

    A response refused for missing answers may still hold an alarming answer; those critical
    findings travel with the error so a caller that only catches it still sees them.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        missing: tuple[str, ...] = (),
        critical_findings: tuple[CriticalFinding, ...] = (),
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.missing = missing
        self.critical_findings = critical_findings


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    """A clinic's configured thresholds, keyed like "madrs.item10_alert_level".

    Keys for other instruments are ignored, so one clinic policy can serve every instrument.
    `reference` names the stored policy version ("clinic-policy:12@3") for the audit trail.
    """

    values: Mapping[str, Decimal] = field(default_factory=dict)
    reference: str = "definition-defaults"

    def __post_init__(self) -> None:
        normalised = {key: Decimal(str(value)) for key, value in self.values.items()}
        object.__setattr__(self, "values", MappingProxyType(normalised))


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of a named rule beyond the total, e.g. the PCL-5 DSM-5 provisional rule."""

    code: str
    met: bool
    detail: str
    source: str


@dataclass(frozen=True, slots=True)
class ScoreResult:
    instrument_id: str
    instrument_version: int
    rule: str
    total: Decimal | None
    total_range: tuple[Decimal, Decimal] | None
    subscales: Mapping[str, Decimal]
    item_scores: Mapping[str, int]
    severity: SeverityBand | None
    screen_positive: bool | None
    risk_level: RiskLevel | None
    findings: tuple[Finding, ...]
    critical_findings: tuple[CriticalFinding, ...]
    prorated: bool
    policy_values: Mapping[str, Decimal]
    policy_reference: str
    note: str

    @property
    def has_critical_findings(self) -> bool:
        return bool(self.critical_findings)


# --- public entry points -----------------------------------------------------------------------


def score_response(
    instrument: Instrument,
    answers: Answers,
    *,
    policy: ScoringPolicy | None = None,
    respondent_sex: RespondentSex | None = None,
) -> ScoreResult:
    """Score one response. Raises ScoringError naming the item for any answer it cannot use."""
    policy = policy or ScoringPolicy()
    thresholds = resolve_policy_values(instrument, policy)
    asked = _asked_answers(instrument, answers)
    critical = _critical_findings(instrument, asked, thresholds)
    missing = tuple(
        link_id
        for link_id, value in asked.items()
        if value is None and instrument.item(link_id).required
    )
    prorated = False
    if missing:
        if not _may_prorate(instrument, missing):
            raise ScoringError(
                missing[0],
                _missing_message(instrument, missing),
                missing=missing,
                critical_findings=critical,
            )
        prorated = True

    computed = _RULES[instrument.scoring.rule](instrument, asked, prorated)
    screen_positive, screen_finding = _screen(
        instrument, computed, thresholds, respondent_sex, critical
    )
    findings = computed.findings + ((screen_finding,) if screen_finding else ())
    findings += _extra_findings(instrument, asked)
    severity = _severity(instrument, computed.total)
    return ScoreResult(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        rule=instrument.rule_id,
        total=computed.total,
        total_range=instrument.scoring.total_range,
        subscales=MappingProxyType(computed.subscales),
        item_scores=MappingProxyType(computed.item_scores),
        severity=severity,
        screen_positive=screen_positive,
        risk_level=computed.risk_level,
        findings=findings,
        critical_findings=critical,
        prorated=prorated,
        policy_values=MappingProxyType(thresholds),
        policy_reference=policy.reference,
        note=_note(instrument, computed, severity, findings, critical, prorated, missing),
    )


def find_critical_items(
    instrument: Instrument, answers: Answers, *, policy: ScoringPolicy | None = None
) -> tuple[CriticalFinding, ...]:
    """Critical findings in a possibly incomplete response (e.g. a half-finished form).

    Every answer given is still validated; missing answers are simply not findings.
    """
    thresholds = resolve_policy_values(instrument, policy or ScoringPolicy())
    return _critical_findings(instrument, _asked_answers(instrument, answers), thresholds)


def resolve_policy_values(instrument: Instrument, policy: ScoringPolicy) -> dict[str, Decimal]:
    """The definition's defaults overridden by the clinic's values for this instrument."""
    resolved = {value.key: value.default for value in instrument.policy_values}
    prefix = instrument.id + "."
    for key, value in policy.values.items():
        if not key.startswith(prefix):
            continue
        if key not in resolved:
            raise ScoringError(key, f"{instrument.rule_id} has no policy value named {key}")
        low, high = policy_value_range(instrument, instrument.policy_value(key))
        if not low <= value <= high or value != value.to_integral_value():
            raise ScoringError(key, f"{value} is not a whole number within {low}..{high}")
        resolved[key] = value
    return resolved


# --- answer validation -------------------------------------------------------------------------


def _asked_answers(instrument: Instrument, answers: Answers) -> dict[str, int | None]:
    """Validate every answer, then keep the items the skip logic actually asks, in item order.

    An answer to a skipped item is dropped when it is the item's lowest option (a form that sends
    "No" for every box), and refused otherwise: a "Yes" to a question that should not have been
    asked means the form and the definition disagree, and that needs a person to look.
    """
    for link_id, value in answers.items():
        if not instrument.has_item(link_id):
            raise ScoringError(link_id, f"{instrument.rule_id} has no item {link_id!r}")
        if value is None:
            continue
        item = instrument.item(link_id)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScoringError(link_id, f"answer {value!r} is not a whole-number option value")
        if value not in item.values:
            allowed = ", ".join(str(v) for v in sorted(item.values))
            raise ScoringError(
                link_id, f"answer {value} is not an option of item {link_id} (allowed: {allowed})"
            )

    asked: dict[str, int | None] = {}
    for item in instrument.items:
        value = answers.get(item.link_id)
        if _is_asked(item, asked):
            asked[item.link_id] = value
        elif value is not None and value != item.min_value:
            condition = item.enable_when
            assert condition is not None
            raise ScoringError(
                item.link_id,
                f"item {item.link_id} is asked only when item {condition.link_id} is "
                f"{condition.equals}, yet it was answered {value}",
            )
    return asked


def _is_asked(item: Item, asked: Mapping[str, int | None]) -> bool:
    """Asked unless the skip logic rules it out. When the controlling question is itself
    unanswered the item counts as asked: the gap is reported, and no answer is thrown away."""
    condition = item.enable_when
    if condition is None or condition.link_id not in asked:
        return condition is None
    controlling = asked[condition.link_id]
    return controlling is None or controlling == condition.equals


def _may_prorate(instrument: Instrument, missing: tuple[str, ...]) -> bool:
    rule = instrument.missing_answers
    return rule.rule == "prorate" and len(missing) <= rule.max_missing


def _missing_message(instrument: Instrument, missing: tuple[str, ...]) -> str:
    names = ", ".join(f"{link_id} ({instrument.item(link_id).label()})" for link_id in missing)
    rule = instrument.missing_answers
    if rule.rule == "prorate":
        why = f"at most {rule.max_missing} may be missing under its proration rule"
    else:
        why = "it has no published proration rule"
    return f"{instrument.rule_id} cannot be scored: required item(s) {names} unanswered; {why}"


def _critical_findings(
    instrument: Instrument, asked: Mapping[str, int | None], thresholds: Mapping[str, Decimal]
) -> tuple[CriticalFinding, ...]:
    found = []
    for rule in instrument.critical_items:
        value = asked.get(rule.link_id)
        threshold = int(thresholds[rule.policy_key]) if rule.policy_key else rule.threshold
        if value is not None and value >= threshold:
            found.append(
                CriticalFinding(
                    link_id=rule.link_id,
                    value=value,
                    threshold=threshold,
                    finding=rule.finding,
                    label=rule.label,
                    rule=instrument.rule_id,
                    source=rule.source,
                )
            )
    return tuple(found)


# --- scoring rules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Computed:
    total: Decimal | None
    item_scores: dict[str, int]
    subscales: dict[str, Decimal] = field(default_factory=dict)
    risk_level: RiskLevel | None = None
    findings: tuple[Finding, ...] = ()
    screen_positive: bool | None = None
    notes: tuple[str, ...] = ()


def _item_scores(instrument: Instrument, asked: Mapping[str, int | None]) -> dict[str, int]:
    return {
        item.link_id: item.score(value)
        for item in instrument.items
        if item.scored and (value := asked.get(item.link_id)) is not None
    }


def _subscale_sums(instrument: Instrument, scores: Mapping[str, int]) -> dict[str, Decimal]:
    return {
        subscale.id: Decimal(sum(scores[link_id] for link_id in subscale.link_ids))
        for subscale in instrument.subscales
    }


def _sum_rule(instrument: Instrument, asked: Mapping[str, int | None], prorated: bool) -> _Computed:
    scores = _item_scores(instrument, asked)
    total = Decimal(sum(scores.values()))
    if prorated:
        # Published proration: scale the answered items' sum up to the full item count and round
        # half up to a whole score. The loader allows this only for sums without subscales.
        scored_count = sum(1 for item in instrument.items if item.scored)
        total = (total * scored_count / len(scores)).quantize(Decimal(1), ROUND_HALF_UP)
    return _Computed(total=total, item_scores=scores, subscales=_subscale_sums(instrument, scores))


def _mean_rule(
    instrument: Instrument, asked: Mapping[str, int | None], prorated: bool
) -> _Computed:
    scores = _item_scores(instrument, asked)
    places = int(instrument.scoring.parameters.get("decimal_places", 2))
    mean = Decimal(sum(scores.values())) / len(scores)
    total = mean.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return _Computed(total=total, item_scores=scores, subscales=_subscale_sums(instrument, scores))


def _domain_max_sum_rule(
    instrument: Instrument, asked: Mapping[str, int | None], prorated: bool
) -> _Computed:
    scores = _item_scores(instrument, asked)
    domains = {
        domain.id: Decimal(max(scores[link_id] for link_id in domain.link_ids))
        for domain in instrument.domains
    }
    return _Computed(
        total=sum(domains.values(), Decimal(0)),
        item_scores=scores,
        subscales={**domains, **_subscale_sums(instrument, scores)},
    )


def _cssrs_screener_rule(
    instrument: Instrument, asked: Mapping[str, int | None], prorated: bool
) -> _Computed:
    roles = instrument.scoring.parameters

    def yes(role: str) -> bool:
        return asked.get(roles[role]) == 1

    if yes("intent") or yes("plan") or (yes("behaviour") and yes("behaviour_recent")):
        level: RiskLevel = "high"
    elif yes("method") or yes("behaviour"):
        level = "moderate"
    elif yes("wish_to_be_dead") or yes("active_thoughts"):
        level = "low"
    else:
        level = "none"
    detail = "; ".join(
        f"{role}={'yes' if yes(role) else 'no'}"
        for role in roles
        if asked.get(roles[role]) is not None
    )
    finding = Finding(
        code=f"cssrs-risk-{level}",
        met=level != "none",
        detail=f"risk level {level} ({detail}); triage steps are set by the clinic's policy",
        source=instrument.scoring.source,
    )
    return _Computed(
        total=None,
        item_scores=_item_scores(instrument, asked),
        risk_level=level,
        findings=(finding,),
    )


def _mdq_rule(instrument: Instrument, asked: Mapping[str, int | None], prorated: bool) -> _Computed:
    params = instrument.scoring.parameters
    symptoms = sum(asked[link_id] or 0 for link_id in params["symptom_items"])
    same_period = asked.get(params["same_period_item"])
    problem = asked.get(params["problem_item"])
    enough_symptoms = symptoms >= params["min_symptoms"]
    if enough_symptoms:
        for link_id, value in (
            (params["same_period_item"], same_period),
            (params["problem_item"], problem),
        ):
            if value is None:
                raise ScoringError(
                    link_id,
                    f"{instrument.rule_id}: item {link_id} is required because "
                    f"{symptoms} part-1 answers are 'yes' (>= {params['min_symptoms']})",
                    missing=(link_id,),
                )
    positive = (
        enough_symptoms and same_period == 1 and (problem or 0) >= params["min_problem_value"]
    )
    finding = Finding(
        code="mdq-three-part",
        met=positive,
        detail=(
            f"part 1: {symptoms} yes (needs {params['min_symptoms']}); part 2: "
            f"{_yes_no(same_period)}; part 3: problem level {_or_dash(problem)} "
            f"(needs {params['min_problem_value']})"
        ),
        source=instrument.screen.source if instrument.screen else instrument.scoring.source,
    )
    return _Computed(
        total=Decimal(symptoms),
        item_scores=_item_scores(instrument, asked),
        findings=(finding,),
        screen_positive=positive,
    )


def _yes_no(value: int | None) -> str:
    return "-" if value is None else ("yes" if value == 1 else "no")


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


_RULES: Mapping[str, Callable[[Instrument, Mapping[str, int | None], bool], _Computed]] = {
    "sum": _sum_rule,
    "mean": _mean_rule,
    "domain_max_sum": _domain_max_sum_rule,
    "cssrs_screener": _cssrs_screener_rule,
    "mdq": _mdq_rule,
}


# --- interpretation ----------------------------------------------------------------------------


def _screen(
    instrument: Instrument,
    computed: _Computed,
    thresholds: Mapping[str, Decimal],
    respondent_sex: RespondentSex | None,
    critical: tuple[CriticalFinding, ...],
) -> tuple[bool | None, Finding | None]:
    screen = instrument.screen
    if screen is None:
        return None, None
    if screen.rule == "mdq_three_part":
        return computed.screen_positive, None  # the MDQ rule already reported its finding
    assert computed.total is not None
    if screen.rule == "total_at_least":
        cutoff = thresholds[screen.parameters["policy_key"]]
        basis = f"total {computed.total} vs cut-off {cutoff}"
    elif screen.rule == "total_at_least_by_sex":
        keys = screen.parameters["policy_keys"]
        if respondent_sex in keys:
            cutoff = thresholds[keys[respondent_sex]]
            basis = f"total {computed.total} vs cut-off {cutoff} for {respondent_sex}"
        else:
            # Unknown sex: the lower cut-off, so that no positive screen is missed.
            cutoff = min(thresholds[key] for key in keys.values())
            basis = f"total {computed.total} vs the lower cut-off {cutoff} (sex not given)"
    else:  # pragma: no cover - the loader refuses unknown screen rules
        raise ScoringError("screen", f"unknown screen rule {screen.rule}")
    positive = computed.total >= cutoff
    return positive, Finding(code="screen", met=positive, detail=basis, source=screen.source)


def _extra_findings(instrument: Instrument, asked: Mapping[str, int | None]) -> tuple[Finding, ...]:
    findings = []
    for extra in instrument.extra_rules:
        if extra.rule == "pcl5_dsm5_provisional":
            findings.append(_pcl5_dsm5(instrument, asked, extra.parameters, extra.source))
    return tuple(findings)


def _pcl5_dsm5(
    instrument: Instrument,
    asked: Mapping[str, int | None],
    params: Mapping[str, Any],
    source: str,
) -> Finding:
    endorsed_at = int(params["endorsed_at"])
    needed: Mapping[str, int] = params["clusters"]
    counts = {}
    for subscale in instrument.subscales:
        if subscale.id in needed:
            counts[subscale.id] = sum(
                1 for link_id in subscale.link_ids if (asked[link_id] or 0) >= endorsed_at
            )
    met = all(counts[cluster] >= minimum for cluster, minimum in needed.items())
    detail = ", ".join(f"{c} {counts[c]}/{needed[c]}" for c in needed)
    return Finding(
        code="pcl5-dsm5-provisional-ptsd",
        met=met,
        detail=f"items rated >= {endorsed_at} per cluster (found/needed): {detail}",
        source=source,
    )


def _severity(instrument: Instrument, total: Decimal | None) -> SeverityBand | None:
    if total is None:
        return None
    return next((band for band in instrument.severity_bands if band.contains(total)), None)


def _note(
    instrument: Instrument,
    computed: _Computed,
    severity: SeverityBand | None,
    findings: tuple[Finding, ...],
    critical: tuple[CriticalFinding, ...],
    prorated: bool,
    missing: tuple[str, ...],
) -> str:
    parts = []
    if computed.total is not None and instrument.scoring.total_range is not None:
        low, high = instrument.scoring.total_range
        band = f", {severity.label.lower()}" if severity else ""
        parts.append(f"{instrument.short_title} total {computed.total} (range {low}-{high}){band}.")
    for finding in findings:
        parts.append(f"{finding.code}: {'met' if finding.met else 'not met'} ({finding.detail}).")
    for item in critical:
        parts.append(
            f"CRITICAL item {item.link_id} = {item.value} (>= {item.threshold}): {item.label}."
        )
    if prorated:
        parts.append(
            f"Prorated for unanswered item(s) {', '.join(missing)} under "
            f"{instrument.rule_id}'s rule ({instrument.missing_answers.source})."
        )
    parts.append(f"Scored by {instrument.rule_id}.")
    return " ".join(parts)
