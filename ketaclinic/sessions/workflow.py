"""The treatment session's life cycle and its pre-session checklist, as data.

Pure: standard library and pure project modules only. `next_state` knows only which moves the
graph allows; the service that applies an event first checks the gate behind it (the checklist
before `complete_prechecks`, the dose calculator before `start_dosing`, `evaluate_discharge` before
`meet_discharge_criteria`).

    scheduled -> checked_in -> prechecks_passed -> dosing -> monitoring -> ready_for_discharge
        -> discharged;   any state but the two final ones -> aborted (with a reason)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ketaclinic.core.errors import Conflict, FieldError

RULE_WORKFLOW = "session-workflow@1"
RULE_CHECKLIST = "session-checklist@1"


class SessionState(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    PRECHECKS_PASSED = "prechecks_passed"
    DOSING = "dosing"
    MONITORING = "monitoring"
    READY_FOR_DISCHARGE = "ready_for_discharge"
    DISCHARGED = "discharged"
    ABORTED = "aborted"


class SessionEvent(StrEnum):
    CHECK_IN = "check_in"
    COMPLETE_PRECHECKS = "complete_prechecks"
    START_DOSING = "start_dosing"
    COMPLETE_DOSING = "complete_dosing"
    MEET_DISCHARGE_CRITERIA = "meet_discharge_criteria"
    RESUME_MONITORING = "resume_monitoring"  # the patient worsened after being cleared
    DISCHARGE = "discharge"
    ABORT = "abort"


FINAL_STATES = frozenset({SessionState.DISCHARGED, SessionState.ABORTED})

# Once drug has gone in, an abort (say, transfer to an emergency department) still needs a
# recorded disposition: the patient cannot simply be marked gone.
DOSE_GIVEN_STATES = frozenset(
    {SessionState.DOSING, SessionState.MONITORING, SessionState.READY_FOR_DISCHARGE}
)

TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = {
    (SessionState.SCHEDULED, SessionEvent.CHECK_IN): SessionState.CHECKED_IN,
    (SessionState.CHECKED_IN, SessionEvent.COMPLETE_PRECHECKS): SessionState.PRECHECKS_PASSED,
    (SessionState.PRECHECKS_PASSED, SessionEvent.START_DOSING): SessionState.DOSING,
    (SessionState.DOSING, SessionEvent.COMPLETE_DOSING): SessionState.MONITORING,
    (SessionState.MONITORING, SessionEvent.MEET_DISCHARGE_CRITERIA): (
        SessionState.READY_FOR_DISCHARGE
    ),
    (SessionState.READY_FOR_DISCHARGE, SessionEvent.RESUME_MONITORING): SessionState.MONITORING,
    (SessionState.READY_FOR_DISCHARGE, SessionEvent.DISCHARGE): SessionState.DISCHARGED,
}


class TransitionNotAllowed(Conflict):
    code = "transition-not-allowed"

    def __init__(self, current: SessionState, event: SessionEvent, reason: str) -> None:
        super().__init__(reason, [FieldError("event", reason)])
        self.current = current
        self.event = event


def next_state(
    current: SessionState, event: SessionEvent, *, reason: str | None = None
) -> SessionState:
    """The state after `event`, or TransitionNotAllowed. An abort needs a non-blank reason."""
    current, event = SessionState(current), SessionEvent(event)
    if current in FINAL_STATES:
        raise TransitionNotAllowed(current, event, f"The session is already {current.value}.")
    if event is SessionEvent.ABORT:
        if not (reason and reason.strip()):
            raise TransitionNotAllowed(current, event, "Say why the session is aborted.")
        return SessionState.ABORTED
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise TransitionNotAllowed(
            current, event, f"Cannot {event.value} a session that is {current.value}."
        ) from None


def allowed_events(current: SessionState) -> tuple[SessionEvent, ...]:
    """What may happen next, for buttons and API hints."""
    if current in FINAL_STATES:
        return ()
    moves = tuple(event for (state, event) in TRANSITIONS if state is current)
    return (*moves, SessionEvent.ABORT)


# --- the pre-session checklist ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    code: str
    label: str
    source: str
    settings: frozenset[str] | None = None  # None: clinic and home
    drugs: frozenset[str] | None = None  # None: every drug
    needs_childbearing_potential: bool = False
    needs_plan_measure: bool = False


_IN_CLINIC = frozenset({"clinic"})
_AT_HOME = frozenset({"home"})
_ESKETAMINE = frozenset({"esketamine"})

PRE_SESSION_CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        "screening_current",
        "A current eligibility decision allows this treatment.",
        "ARCHITECTURE §6",
    ),
    ChecklistItem(
        "consent_valid",
        "Signed, unrevoked consent covers this route and setting.",
        "ARCHITECTURE §6",
    ),
    ChecklistItem(
        "weight_current",
        "Body weight recorded within the policy window.",
        "ARCHITECTURE §6; policy weight_max_age_days",
    ),
    ChecklistItem(
        "fasting_esketamine",
        "No food for 2 h and no liquids for 30 min before dosing.",
        "§1.3 [S] #7",
        drugs=_ESKETAMINE,
    ),
    ChecklistItem(
        "nasal_medication_timing",
        "Any nasal corticosteroid or decongestant taken at least 1 h before dosing.",
        "§1.3 [S] #7",
        drugs=_ESKETAMINE,
    ),
    ChecklistItem(
        "fasting_home",
        "Fasted about 6 h before the at-home session.",
        "§8 [S] #152",
        settings=_AT_HOME,
    ),
    ChecklistItem(
        "fasting_racemic_clinic",
        "Fasting instructions followed as the clinic set them.",
        "[U] no source for racemic ketamine in clinic; clinic instruction",
        drugs=frozenset({"racemic-ketamine"}),
        settings=_IN_CLINIC,
    ),
    ChecklistItem(
        "no_alcohol_or_sedatives",
        "No alcohol or unplanned sedatives (benzodiazepines, opioids, sleep medicines) today.",
        "§3.3 [C] #14, #54",
    ),
    ChecklistItem(
        "transport_arranged",
        "A responsible adult takes the patient home; no driving until the next day.",
        "§2.1 [C] #13, #14; §2.4 [S] #45",
        settings=_IN_CLINIC,
    ),
    ChecklistItem(
        "sitter_present",
        "A trusted adult sitter is present for the whole session.",
        "§8 [S] #151, #152",
        settings=_AT_HOME,
    ),
    ChecklistItem(
        "pregnancy_test",
        "Pregnancy excluded (test per clinic policy).",
        "§3.1, §3.2 [C] #38, #50; test timing [U]",
        needs_childbearing_potential=True,
    ),
    ChecklistItem(
        "predose_vitals_gate",
        "Pre-dose vitals recorded and the blood-pressure gate passed (or overridden).",
        "§2.1 [C] #13; policy predose gate",
    ),
    ChecklistItem(
        "predose_measure",
        "Pre-session questionnaire done (PHQ-9 and/or C-SSRS, as the plan says).",
        "treatment plan",
        needs_plan_measure=True,
    ),
)


def checklist_for(
    *,
    drug: str,
    setting: str,
    childbearing_potential: bool,
    plan_measures: Collection[str] = (),
) -> tuple[ChecklistItem, ...]:
    """The items that apply to one session, in display order."""
    return tuple(
        item
        for item in PRE_SESSION_CHECKLIST
        if (item.drugs is None or drug in item.drugs)
        and (item.settings is None or setting in item.settings)
        and (childbearing_potential or not item.needs_childbearing_potential)
        and (bool(plan_measures) or not item.needs_plan_measure)
    )


def unmet_checklist_items(
    items: Collection[ChecklistItem], completed: Mapping[str, bool]
) -> list[str]:
    """Codes of the items not ticked; an empty list means the prechecks may pass."""
    return [item.code for item in items if completed.get(item.code) is not True]
