"""The online front door's pre-screen: which consult requests a clinician must look at before
anything is booked. Pure module (docs/sources/scheduling.md, "Front door pre-screen").

A "yes" to any question routes the request to a human: the label's absolute contraindications to
esketamine (aneurysmal vascular disease or arteriovenous malformation, intracerebral haemorrhage,
hypersensitivity; clinical-reference §3.1 [C] #1, #14) and the exclusions and relative
contraindications in practice (pregnancy, psychosis or mania, uncontrolled hypertension, active
substance use; §3.2 [C] #11, #50, #38). It never decides eligibility: screening does that, with
a clinician, after the consultation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

RULE = "frontdoor-prescreen@1"
# Conservative clinic default: the online request is for adults; a minor is always a call back.
MINIMUM_AGE = 18

QUESTIONS = {
    "pregnant": ("Are you pregnant, or could you be, or breastfeeding?", False),
    "psychosis": ("Have you ever had psychosis, schizophrenia or hallucinations?", False),
    "mania": ("Have you ever had mania or been diagnosed with bipolar disorder?", False),
    "hypertension": ("Do you have high blood pressure that is not under control?", False),
    "substance_use": ("Do you currently use drugs or alcohol in a way that worries you?", False),
    "vascular": (
        "Have you had an aneurysm, a bleed in the brain, or an arteriovenous malformation?",
        True,
    ),
    "allergy": ("Have you ever reacted badly to ketamine or esketamine?", True),
}  # key: (question, absolute contraindication)


@dataclass(frozen=True, slots=True)
class Prescreen:
    route: str  # "book" (the requested consult may be booked) or "review" (a clinician calls)
    reasons: tuple[str, ...]
    absolute: bool
    rule: str = RULE


def age_on(birth_date: date, today: date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def prescreen(answers: dict[str, bool], *, birth_date: date, today: date) -> Prescreen:
    reasons = [QUESTIONS[key][0] for key in QUESTIONS if answers.get(key)]
    absolute = any(answers.get(key) and QUESTIONS[key][1] for key in QUESTIONS)
    if age_on(birth_date, today) < MINIMUM_AGE:
        reasons.append(f"Younger than {MINIMUM_AGE}")
    return Prescreen("review" if reasons else "book", tuple(reasons), absolute)
