"""The appointment types a clinic starts with. Durations are clinic settings whose defaults and
reasons are written in docs/sources/scheduling.md (numbers from the clinical reference)."""

from __future__ import annotations

from dataclasses import dataclass

# The esketamine REMS: observe at least 2 hours after each dose (clinical-reference §2.1 [C] #16).
ESKETAMINE_MIN_MINUTES = 120


@dataclass(frozen=True)
class TypeDefault:
    kind: str
    name: str
    duration_minutes: int
    needs_chair: bool
    chair_capability: str
    needs_clinician: bool
    monitored: bool
    route: str
    bookable_online: bool
    source: str


DEFAULT_TYPES = (
    TypeDefault(
        "iv_infusion",
        "IV ketamine infusion",
        180,
        True,
        "iv_pump",
        False,
        True,
        "intravenous",
        False,
        "20 min check-in + 40 min infusion (§1.1 #20) + 120 min observation",
    ),
    TypeDefault(
        "esketamine",
        "Esketamine nasal spray",
        140,
        True,
        "esketamine_observation",
        False,
        True,
        "intranasal",
        False,
        "20 min check-in + >= 2 h observation (§2.1 #1 #16)",
    ),
    TypeDefault(
        "im",
        "IM ketamine",
        140,
        True,
        "injection",
        False,
        True,
        "intramuscular",
        False,
        "20 min check-in + 120 min observation (mirrors §2.1 #16)",
    ),
    TypeDefault(
        "sublingual",
        "Sublingual ketamine in clinic",
        140,
        True,
        "oral",
        False,
        True,
        "sublingual",
        False,
        "effects fade over 1-2 h (§1.4 #28 #35) + check-in",
    ),
    TypeDefault(
        "kap_preparation",
        "KAP preparation",
        60,
        False,
        "",
        True,
        False,
        "",
        False,
        "standard-length session (§7 #35 #143)",
    ),
    TypeDefault(
        "kap_dosing",
        "KAP dosing session",
        180,
        True,
        "oral",
        True,
        True,
        "sublingual",
        False,
        "2.5-3 h (§7 #35 #28)",
    ),
    TypeDefault(
        "kap_integration",
        "KAP integration",
        60,
        False,
        "",
        True,
        False,
        "",
        False,
        "standard-length session (§7 #143)",
    ),
    TypeDefault(
        "consult",
        "Consultation",
        60,
        False,
        "",
        True,
        False,
        "",
        True,
        "administrative length (clinic setting)",
    ),
    TypeDefault(
        "follow_up",
        "Follow-up",
        30,
        False,
        "",
        True,
        False,
        "",
        True,
        "administrative length (clinic setting)",
    ),
    TypeDefault(
        "telehealth",
        "Telehealth visit",
        30,
        False,
        "",
        True,
        False,
        "",
        False,
        "administrative length (clinic setting)",
    ),
)
