"""The session life cycle and the pre-session checklist."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.workflow import (
    DOSE_GIVEN_STATES,
    FINAL_STATES,
    PRE_SESSION_CHECKLIST,
    SessionEvent,
    SessionState,
    TransitionNotAllowed,
    allowed_events,
    checklist_for,
    next_state,
    unmet_checklist_items,
)

S, E = SessionState, SessionEvent
HAPPY_PATH = [
    (E.CHECK_IN, S.CHECKED_IN),
    (E.COMPLETE_PRECHECKS, S.PRECHECKS_PASSED),
    (E.START_DOSING, S.DOSING),
    (E.COMPLETE_DOSING, S.MONITORING),
    (E.MEET_DISCHARGE_CRITERIA, S.READY_FOR_DISCHARGE),
    (E.DISCHARGE, S.DISCHARGED),
]
NON_FINAL = [state for state in SessionState if state not in FINAL_STATES]


def test_a_session_runs_from_scheduled_to_discharged_in_order() -> None:
    state = S.SCHEDULED
    for event, expected in HAPPY_PATH:
        state = next_state(state, event)
        assert state is expected


@pytest.mark.parametrize(
    ("current", "event"),
    [
        (S.SCHEDULED, E.START_DOSING),  # no dosing before check-in and prechecks
        (S.CHECKED_IN, E.START_DOSING),  # no dosing before prechecks pass
        (S.DOSING, E.DISCHARGE),  # no discharge straight from dosing
        (S.MONITORING, E.DISCHARGE),  # no discharge before criteria are met
        (S.PRECHECKS_PASSED, E.COMPLETE_DOSING),
        (S.SCHEDULED, E.RESUME_MONITORING),
    ],
)
def test_steps_cannot_be_skipped(current: SessionState, event: SessionEvent) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        next_state(current, event)
    assert caught.value.status == 409
    assert caught.value.current is current


def test_a_patient_who_worsens_after_clearance_goes_back_to_monitoring() -> None:
    assert next_state(S.READY_FOR_DISCHARGE, E.RESUME_MONITORING) is S.MONITORING


@pytest.mark.parametrize("current", NON_FINAL)
def test_any_open_session_can_be_aborted_with_a_reason(current: SessionState) -> None:
    assert next_state(current, E.ABORT, reason="BP 190/110 before dosing") is S.ABORTED


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_abort_without_a_reason_is_refused(reason: str | None) -> None:
    with pytest.raises(TransitionNotAllowed, match="why"):
        next_state(S.MONITORING, E.ABORT, reason=reason)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
@pytest.mark.parametrize("event", list(SessionEvent))
def test_a_finished_session_accepts_no_more_events(
    final: SessionState, event: SessionEvent
) -> None:
    with pytest.raises(TransitionNotAllowed, match="already"):
        next_state(final, event, reason="late")
    assert allowed_events(final) == ()


def test_the_allowed_events_are_what_the_buttons_offer() -> None:
    assert allowed_events(S.MONITORING) == (E.MEET_DISCHARGE_CRITERIA, E.ABORT)
    assert allowed_events(S.READY_FOR_DISCHARGE) == (E.RESUME_MONITORING, E.DISCHARGE, E.ABORT)


def test_plain_strings_from_storage_are_accepted() -> None:
    assert next_state("scheduled", "check_in") is S.CHECKED_IN  # type: ignore[arg-type]


def test_dose_given_states_are_the_ones_between_dosing_and_discharge() -> None:
    assert DOSE_GIVEN_STATES == {S.DOSING, S.MONITORING, S.READY_FOR_DISCHARGE}


@given(st.lists(st.sampled_from(list(SessionEvent)), max_size=20))
def test_no_sequence_of_events_reaches_discharge_without_passing_every_step(
    events: list[SessionEvent],
) -> None:
    state, visited = S.SCHEDULED, [S.SCHEDULED]
    for event in events:
        try:
            state = next_state(state, event, reason="r")
        except TransitionNotAllowed:
            continue
        visited.append(state)
    if state is S.DISCHARGED:
        for needed in (S.CHECKED_IN, S.PRECHECKS_PASSED, S.DOSING, S.MONITORING):
            assert needed in visited
        assert visited[-2] is S.READY_FOR_DISCHARGE
    if S.ABORTED in visited:
        assert visited[-1] is S.ABORTED


# --- the pre-session checklist -----------------------------------------------------------------


def codes(**kwargs: object) -> list[str]:
    return [item.code for item in checklist_for(**kwargs)]  # type: ignore[arg-type]


def test_checklist_codes_are_unique_and_sourced() -> None:
    all_codes = [item.code for item in PRE_SESSION_CHECKLIST]
    assert len(all_codes) == len(set(all_codes))
    assert all(item.source for item in PRE_SESSION_CHECKLIST)


def test_an_esketamine_clinic_session_checks_fasting_nasal_sprays_and_transport() -> None:
    found = codes(drug="esketamine", setting="clinic", childbearing_potential=False)
    for code in (
        "screening_current",
        "consent_valid",
        "weight_current",
        "fasting_esketamine",
        "nasal_medication_timing",
        "no_alcohol_or_sedatives",
        "transport_arranged",
        "predose_vitals_gate",
    ):
        assert code in found
    assert "sitter_present" not in found
    assert "fasting_racemic_clinic" not in found


def test_an_at_home_session_needs_a_sitter_not_transport() -> None:
    found = codes(drug="racemic-ketamine", setting="home", childbearing_potential=False)
    assert "sitter_present" in found
    assert "fasting_home" in found
    assert "transport_arranged" not in found
    assert "fasting_esketamine" not in found


def test_pregnancy_is_checked_only_where_it_applies() -> None:
    base = {"drug": "racemic-ketamine", "setting": "clinic"}
    assert "pregnancy_test" in codes(**base, childbearing_potential=True)
    assert "pregnancy_test" not in codes(**base, childbearing_potential=False)


def test_the_pre_session_questionnaire_is_checked_when_the_plan_asks_for_one() -> None:
    base = {"drug": "esketamine", "setting": "clinic", "childbearing_potential": False}
    assert "predose_measure" in codes(**base, plan_measures=("phq9", "cssrs"))
    assert "predose_measure" not in codes(**base)


def test_unticked_items_are_listed_and_only_true_counts_as_done() -> None:
    items = checklist_for(drug="esketamine", setting="clinic", childbearing_potential=False)
    done = {item.code: True for item in items}
    assert unmet_checklist_items(items, done) == []
    done["consent_valid"] = False
    done.pop("weight_current")
    done["transport_arranged"] = "yes"  # type: ignore[assignment]
    assert unmet_checklist_items(items, done) == [
        "consent_valid",
        "weight_current",
        "transport_arranged",
    ]
