"""Pure: the therapy note templates, their validation, and the billing facts of a visit.

No Django. Each visit kind has its own structured template (docs/sources/therapy.md, "Note
templates", from the clinical reference's KAP section); every kind shares the mental-status
examination, the risk assessment and a free-text narrative. `validate_note` lists what stops a
note from being signed; `billing_facts` derives the psychotherapy time band the billing issue
will turn into a code (docs/sources/therapy.md, "Billing facts").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

NOTE_RULE = "therapy-note@1"
BILLING_RULE = "psychotherapy-time@1"
RISK_RULE = "therapy-risk@1"


class VisitKind(StrEnum):
    PREPARATION = "preparation"
    DOSING_SUPPORT = "dosing_support"
    INTEGRATION = "integration"

    @property
    def label(self) -> str:
        return {
            "preparation": "Preparation",
            "dosing_support": "Dosing-session support",
            "integration": "Integration",
        }[self.value]


class VisitFormat(StrEnum):
    INDIVIDUAL = "individual"
    GROUP = "group"


class Modality(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"  # synchronous audio and video
    AUDIO = "audio"  # synchronous audio only

    @property
    def label(self) -> str:
        return {"in_person": "In person", "video": "Video", "audio": "Audio only"}[self.value]


class RiskLevel(StrEnum):
    """The therapist's suicide-risk judgement, in the C-SSRS screener's categories (low,
    moderate, high; docs/sources/therapy.md, "Risk assessment") plus 'none identified'."""

    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def label(self) -> str:
        return {
            "none": "None identified",
            "low": "Low",
            "moderate": "Moderate",
            "high": "High",
        }[self.value]


# A high risk judgement on a signed note raises a critical safety alert by itself (the C-SSRS
# "high" category is the one that needs a clinician now); any other level only when the therapist
# flags it explicitly.
ALERTING_LEVELS = frozenset({RiskLevel.HIGH})


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    label: str
    required: bool = True
    help: str = ""


TEMPLATES: dict[VisitKind, tuple[Field, ...]] = {
    VisitKind.PREPARATION: (
        Field("intentions", "Intentions"),
        Field("set_and_setting", "Set and setting"),
        Field("expectations", "Expectations and fears"),
        Field("safety_plan", "Safety plan"),
    ),
    VisitKind.DOSING_SUPPORT: (
        Field("interventions", "Interventions"),
        Field("reported_experience", "Patient's reported experience"),
        Field(
            "post_session_checklist",
            "Post-session experience (clinic checklist, not a validated instrument)",
            required=False,
            help="Tick what the patient reports after the session.",
        ),
    ),
    VisitKind.INTEGRATION: (
        Field("themes", "Themes"),
        Field("insights", "Insights"),
        Field("behaviour_changes", "Behaviour changes"),
        Field("homework", "Homework"),
    ),
}

# The clinic checklist for the post-session experience. A clinic checklist, not a validated
# instrument: no validated public post-session questionnaire for ketamine is cited in the
# clinical reference (docs/sources/therapy.md, "Measures").
POST_SESSION_CHECKLIST: tuple[tuple[str, str], ...] = (
    ("felt_safe", "Felt safe during the session"),
    ("felt_supported", "Felt supported by the team"),
    ("distressing_moments", "Had distressing moments"),
    ("meaningful_content", "Experienced personally meaningful content"),
    ("wants_integration_soon", "Wants an integration visit soon"),
)

MENTAL_STATUS: tuple[Field, ...] = (
    Field("appearance", "Appearance and behaviour"),
    Field("mood", "Mood (patient's words)"),
    Field("affect", "Affect"),
    Field("thought_process", "Thought process"),
    Field("thought_content", "Thought content"),
    Field("orientation", "Orientation and cognition"),
    Field("insight_judgement", "Insight and judgement"),
)

NARRATIVE_LIMIT = 20_000
FIELD_LIMIT = 4_000


def template_for(kind: str) -> tuple[Field, ...]:
    return TEMPLATES[VisitKind(kind)]


def validate_note(
    *,
    kind: str,
    content: Mapping[str, Any],
    mental_status: Mapping[str, Any],
    risk_level: str,
    risk_notes: str,
    narrative: str,
) -> list[tuple[str, str]]:
    """Everything that stops the note from being signed, as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    for field in template_for(kind):
        value = content.get(field.key)
        if field.key == "post_session_checklist":
            known = {key for key, _ in POST_SESSION_CHECKLIST}
            if value and not (isinstance(value, list) and set(value) <= known):
                problems.append((field.key, "Tick only items of the clinic checklist."))
            continue
        if field.required and not str(value or "").strip():
            problems.append((field.key, f"{field.label}: write this part of the note."))
    for field in MENTAL_STATUS:
        if not str(mental_status.get(field.key) or "").strip():
            problems.append((f"mental_status.{field.key}", f"{field.label}: record it."))
    if risk_level not in RiskLevel.__members__.values():
        problems.append(("risk_level", "Record the risk assessment (none, low, moderate, high)."))
    elif risk_level != RiskLevel.NONE and not risk_notes.strip():
        problems.append(("risk_notes", "Say what the risk is and what was done about it."))
    if not narrative.strip():
        problems.append(("narrative", "Write the narrative."))
    return problems


def check_lengths(content: Mapping[str, Any], narrative: str) -> list[tuple[str, str]]:
    """Field sizes a draft may never exceed (checked on every save, not only on signing)."""
    problems = [
        (key, f"At most {FIELD_LIMIT} characters.")
        for key, value in content.items()
        if isinstance(value, str) and len(value) > FIELD_LIMIT
    ]
    if len(narrative) > NARRATIVE_LIMIT:
        problems.append(("narrative", f"At most {NARRATIVE_LIMIT} characters."))
    return problems


def check_times(started_at: datetime, ended_at: datetime | None) -> list[tuple[str, str]]:
    if ended_at is not None and ended_at <= started_at:
        return [("ended_at", "The visit must end after it started.")]
    return []


# Individual psychotherapy time bands, alone / with an E/M visit the same day (docs/sources/
# therapy.md, "Billing facts"; access-and-billing reference §1.3, [C] #12). Fewer than 16 minutes
# is not reportable.
TIME_BANDS: tuple[tuple[int, int | None, str, str], ...] = (
    (16, 37, "90832", "+90833"),
    (38, 52, "90834", "+90836"),
    (53, None, "90837", "+90838"),
)


@dataclass(frozen=True, slots=True)
class BillingFacts:
    minutes: int
    modality: str
    format: str
    with_em: bool
    band: str  # "16-37 min", "53+ min", "under 16 min", or "" when no band applies
    code: str  # the code the band suggests, "" when none (group, dosing support, < 16 min)
    reason: str
    rule: str = BILLING_RULE

    def to_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "modality": self.modality,
            "format": self.format,
            "with_em": self.with_em,
            "band": self.band,
            "code": self.code,
            "reason": self.reason,
            "rule": self.rule,
        }


def billing_facts(
    *,
    kind: str,
    visit_format: str,
    modality: str,
    with_em: bool,
    started_at: datetime,
    ended_at: datetime,
) -> BillingFacts:
    minutes = int((ended_at - started_at).total_seconds() // 60)

    def facts(*, band: str, code: str, reason: str) -> BillingFacts:
        return BillingFacts(
            minutes=minutes,
            modality=modality,
            format=visit_format,
            with_em=with_em,
            band=band,
            code=code,
            reason=reason,
        )

    if visit_format == VisitFormat.GROUP:
        return facts(band="", code="", reason="Group psychotherapy has no time band to derive.")
    if kind == VisitKind.DOSING_SUPPORT:
        return facts(
            band="",
            code="",
            reason="Presence during dosing: the monitoring codes' payer acceptance is unconfirmed.",
        )
    for low, high, alone, add_on in TIME_BANDS:
        if minutes >= low and (high is None or minutes <= high):
            band = f"{low}-{high} min" if high is not None else f"{low}+ min"
            return facts(
                band=band,
                code=add_on if with_em else alone,
                reason="Add-on to the same day's E/M visit." if with_em else "Psychotherapy alone.",
            )
    return facts(band="under 16 min", code="", reason="Under 16 minutes is not reportable.")
