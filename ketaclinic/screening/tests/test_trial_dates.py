"""An antidepressant trial counts as adequate only if its dates allow it (§4.1: minimum trial
length 4-6 weeks; before week 4 it is not a failed trial). Regression: a 21-day trial ticked
"adequate" counted toward treatment-resistant depression; the dates were never checked."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django_scopes import scope
from hypothesis import given
from hypothesis import strategies as st

from conftest import api_client, staff_client
from ketaclinic.core import clock
from ketaclinic.patients import services as chart
from ketaclinic.screening import services
from ketaclinic.screening.policy import ScreeningPolicy
from ketaclinic.screening.selectors import local_date
from ketaclinic.screening.tests.helpers import CLEAN_INTAKE
from ketaclinic.screening.trd import AntidepressantTrial, TrdStatus, TrialOutcome, assess_trd


def trial(drug: str, days: int | None, adequate: bool | None = True) -> AntidepressantTrial:
    return AntidepressantTrial(
        drug=drug,
        adequate=adequate,
        outcome=TrialOutcome.NO_RESPONSE,
        in_current_episode=True,
        days=days,
    )


def assess(*trials: AntidepressantTrial, weeks: int = 4) -> Any:
    return assess_trd(
        trials,
        minimum_failed_adequate_trials=2,
        partial_response_counts_as_failure=True,
        minimum_trial_weeks=weeks,
    )


def test_a_21_day_trial_ticked_adequate_does_not_count_and_is_flagged() -> None:
    result = assess(trial("sertraline", 21), trial("venlafaxine", 70))
    assert result.status is TrdStatus.NOT_MET
    assert [t.drug for t in result.counted] == ["venlafaxine"]
    assert [t.drug for t in result.contradicted] == ["sertraline"]
    [uncounted] = result.not_counted
    assert "21 days" in uncounted.reasons[0]


def test_trials_without_dates_keep_the_prescribers_tick() -> None:
    result = assess(trial("sertraline", None), trial("venlafaxine", None))
    assert result.status is TrdStatus.MET
    assert result.contradicted == ()


def test_the_clinic_may_ask_for_longer_trials_never_shorter() -> None:
    assert assess(trial("a", 35), trial("b", 35)).status is TrdStatus.MET
    assert assess(trial("a", 35), trial("b", 35), weeks=6).status is TrdStatus.NOT_MET
    with pytest.raises(ValueError, match="below 4"):
        ScreeningPolicy(minimum_adequate_trial_weeks=3)


@given(days=st.integers(min_value=0, max_value=400))
def test_a_ticked_trial_counts_exactly_when_its_dates_reach_four_weeks(days: int) -> None:
    result = assess(trial("a", days), trial("b", None))
    assert (result.status is TrdStatus.MET) == (days >= 28)
    assert bool(result.contradicted) == (days < 28)


def _trial(actor: Any, patient: Any, drug: str, start: date, end: date) -> None:
    chart.medication_add(
        actor=actor,
        patient=patient,
        data={
            "drug_name": drug,
            "status": "stopped",
            "start_date": start,
            "end_date": end,
            "is_antidepressant_trial": True,
            "adequate_trial": True,
            "in_current_episode": True,
            "trial_outcome": "none",
        },
    )


@pytest.mark.django_db
def test_screening_flags_the_contradiction_for_the_prescriber(
    prescriber: Any, patient_a: Any, traveller: Any, members: Any
) -> None:
    with scope(organization=prescriber.organization):
        today = local_date(patient_a.organization, clock.now())
        _trial(
            prescriber,
            patient_a,
            "sertraline",
            today - timedelta(days=200),
            today - timedelta(days=179),
        )
        _trial(
            prescriber,
            patient_a,
            "venlafaxine",
            today - timedelta(days=150),
            today - timedelta(days=80),
        )
        chart.vital_sign_record(
            actor=prescriber,
            patient=patient_a,
            kind="bp",
            value=118,
            value_diastolic=76,
            unit="mm[Hg]",
            code="85354-9",
        )
        services.intake_record(actor=prescriber, patient=patient_a, data=CLEAN_INTAKE)
    answer = api_client(members["prescriber"]).post(
        f"/api/v1/patients/{patient_a.public_id}/screening"
    )
    assert answer.status_code == 201, answer.json()
    with scope(organization=prescriber.organization):
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient_a)
        decisions = list(evaluation.decisions.all())
    assert evaluation.trd_status == "not_met"
    for decision in decisions:
        flagged = [
            f for f in decision.findings if f["rule_id"] == "trial-adequacy-contradicts-dates"
        ]
        assert flagged, decision.route
        assert "sertraline" in flagged[0]["reason"]
        assert "21 days" in flagged[0]["reason"]
        assert decision.computed_decision != "eligible"
    # The prescriber sees it on the screening page, in words.
    page = staff_client(members["prescriber"]).get(f"/screening/patients/{patient_a.public_id}/")
    text = page.content.decode()
    assert "sertraline is marked as an adequate trial, but its dates show 21 days" in text
