"""Adverse events seen with ketamine and esketamine, CTCAE-style grades, and when to escalate.

Pure: standard library only. Sources: §9 of the clinical reference,
written up in docs/sources/adverse-events.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

RULE_ESCALATION = "ae-escalation@1"


class CtcaeGrade(IntEnum):
    MILD = 1
    MODERATE = 2
    SEVERE = 3
    LIFE_THREATENING = 4
    DEATH = 5


# Generic CTCAE v4/v5 grade meanings, paraphrased (§9.1 [C] #155, #156). A semicolon reads "or".
GRADE_DEFINITIONS: dict[CtcaeGrade, str] = {
    CtcaeGrade.MILD: "Mild; no or mild symptoms; observation only; no intervention needed.",
    CtcaeGrade.MODERATE: (
        "Moderate; minimal, local or non-invasive intervention; limits instrumental daily "
        "activities (meals, shopping, phone, money)."
    ),
    CtcaeGrade.SEVERE: (
        "Severe or medically significant but not immediately life-threatening; hospitalization "
        "or longer hospitalization; disabling; limits self-care (bathing, dressing, feeding, "
        "toileting, medicines)."
    ),
    CtcaeGrade.LIFE_THREATENING: "Life-threatening; urgent intervention needed.",
    CtcaeGrade.DEATH: "Death related to the adverse event.",
}

# Grade 3 and above is severe or worse (§9.1): a prescriber is told at once.
ESCALATION_GRADE = CtcaeGrade.SEVERE


@dataclass(frozen=True, slots=True)
class AdverseEventType:
    code: str
    label: str
    source: str
    # The serious outcomes the Spravato REMS exists to prevent (§2.1 [C] #16). Escalating them at
    # any grade is our cautious choice [U], not a rule found in a source.
    escalate_at_any_grade: bool = False


KETAMINE_ADVERSE_EVENTS: tuple[AdverseEventType, ...] = (
    # Most common with esketamine (ASPIRE pooled, label list): §9.2 [C] #157, #38
    AdverseEventType("dissociation", "Dissociation / perceptual changes", "§9.2 [C] #157, #14"),
    AdverseEventType("dizziness", "Dizziness", "§9.2 [C] #157"),
    AdverseEventType("nausea", "Nausea", "§9.2 [C] #157"),
    AdverseEventType("vomiting", "Vomiting", "§9.2 [C] #157"),
    AdverseEventType("somnolence", "Somnolence", "§9.2 [C] #157"),
    AdverseEventType("sedation", "Sedation", "§9.2 [C] #157, #14"),
    AdverseEventType("headache", "Headache", "§9.2 [C] #157"),
    AdverseEventType("dysgeusia", "Altered taste (dysgeusia)", "§9.2 [C] #157"),
    AdverseEventType("blurred_vision", "Blurred vision", "§9.2 [C] #157"),
    AdverseEventType("blood_pressure_increased", "Blood pressure increased", "§9.2 [C] #157"),
    AdverseEventType("paresthesia", "Paresthesia", "§9.2 [C] #157"),
    AdverseEventType("hypoesthesia", "Hypoesthesia", "§9.2 [C] #38"),
    AdverseEventType("anxiety", "Anxiety", "§9.2 [C] #157"),
    AdverseEventType("vertigo", "Vertigo", "§9.2 [C] #38"),
    AdverseEventType("lethargy", "Lethargy", "§9.2 [C] #38"),
    AdverseEventType("feeling_drunk", "Feeling drunk", "§9.2 [C] #38"),
    AdverseEventType(
        "loss_of_consciousness",
        "Loss of consciousness (MOAA/s = 0)",
        "§2.1 [C] #14, #15",
        escalate_at_any_grade=True,
    ),
    AdverseEventType(
        "respiratory_depression",
        "Respiratory depression",
        "§2.1 [C] #16",
        escalate_at_any_grade=True,
    ),
    AdverseEventType(
        "suicidal_thoughts",
        "Suicidal thoughts or behavior",
        "§3.1 [C] (boxed warning)",
        escalate_at_any_grade=True,
    ),
    AdverseEventType(
        "urinary_symptoms",
        "Urinary symptoms (frequency, urgency, dysuria, hematuria, bladder pain)",
        "§9.3 [C] #159, #160; §3.1",
    ),
    AdverseEventType("other", "Other (describe)", "-"),
)

ADVERSE_EVENTS_BY_CODE = {event.code: event for event in KETAMINE_ADVERSE_EVENTS}


def requires_escalation(grade: int, serious: bool, *, event_code: str | None = None) -> bool:
    """True when a prescriber must be told now: grade >= 3, a serious event, or an event type
    escalated at any grade."""
    if isinstance(grade, bool):
        raise ValueError("grade is a number from 1 to 5, not a yes/no")
    checked = CtcaeGrade(grade)  # ValueError outside 1-5
    if serious or checked >= ESCALATION_GRADE:
        return True
    if event_code is None:
        return False
    try:
        return ADVERSE_EVENTS_BY_CODE[event_code].escalate_at_any_grade
    except KeyError:
        raise ValueError(f"unknown adverse event code {event_code!r}") from None
