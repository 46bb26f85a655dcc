"""The SPRAVATO REMS Patient Monitoring Form: completeness, sanity and the 7-day deadline."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.rems import (
    PMF_FIELD_KEYS,
    PMF_FIELDS,
    pmf_is_overdue,
    pmf_missing_fields,
    pmf_problems,
    pmf_required,
    pmf_submission_deadline,
)

COMPLETE = {
    "patient_first_name": "Ana",
    "patient_last_name": "Silva",
    "patient_date_of_birth": "1980-04-02",
    "patient_sex": "female",
    "first_treatment": False,
    "patient_enrolled_in_rems": True,
    "concomitant_benzodiazepines": False,
    "concomitant_non_benzodiazepine_sedative_hypnotics": False,
    "concomitant_psychostimulants": False,
    "concomitant_maois": False,
    "monitoring_hcp_name": "R. Nurse",
    "monitoring_hcp_phone": "555-0100",
    "monitoring_hcp_email": "nurse@example.org",
    "setting_name": "Example Clinic",
    "setting_address": "1 Main St",
    "treatment_date": "2026-03-02",
    "dose": "84",
    "lot_number": "LOT123",
    "monitoring_duration_minutes": 125,
    "minutes_until_ready_without_two_hour_rule": 90,
    "vitals_acceptable_before_administration": True,
    "vitals_acceptable_before_completion": True,
    "bp_predose_systolic": 128,
    "bp_predose_diastolic": 80,
    "bp_40min_systolic": 142,
    "bp_40min_diastolic": 88,
    "bp_completion_systolic": 126,
    "bp_completion_diastolic": 78,
    "experienced_sedation": False,
    "experienced_dissociation": True,
    "experienced_respiratory_depression": False,
}
REQUIRED = [field.key for field in PMF_FIELDS if field.required]


def test_a_complete_form_misses_nothing_and_has_no_problems() -> None:
    assert pmf_missing_fields(COMPLETE) == []
    assert pmf_problems(COMPLETE) == []


def test_field_keys_are_unique_and_cover_every_form_section() -> None:
    assert len(PMF_FIELD_KEYS) == len(set(PMF_FIELD_KEYS))
    sections = {field.section for field in PMF_FIELDS}
    assert {"patient", "session", "duration", "blood_pressure", "adverse_outcomes"} <= sections


@pytest.mark.parametrize("key", REQUIRED)
def test_each_required_field_left_out_is_reported(key: str) -> None:
    data = dict(COMPLETE)
    del data[key]
    assert pmf_missing_fields(data) == [key]


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_answer_counts_as_missing(blank: object) -> None:
    assert pmf_missing_fields(COMPLETE | {"lot_number": blank}) == ["lot_number"]


def test_no_and_zero_are_answers_not_gaps() -> None:
    assert pmf_missing_fields(COMPLETE | {"experienced_sedation": False}) == []
    assert "first_treatment" not in pmf_missing_fields(COMPLETE | {"first_treatment": False})


def test_the_opioid_question_is_optional() -> None:
    assert "concomitant_opioids" not in COMPLETE
    assert pmf_missing_fields(COMPLETE) == []


def test_an_other_dose_needs_its_amount() -> None:
    assert pmf_missing_fields(COMPLETE | {"dose": "other"}) == ["dose_other_mg"]
    assert pmf_missing_fields(COMPLETE | {"dose": "other", "dose_other_mg": 28}) == []


def test_missing_fields_come_in_form_order() -> None:
    assert pmf_missing_fields({}) == REQUIRED


def test_monitoring_shorter_than_two_hours_is_a_problem() -> None:
    problems = pmf_problems(COMPLETE | {"monitoring_duration_minutes": 119})
    assert problems == ["monitoring_duration_minutes is 119; the REMS requires at least 120"]


def test_a_dose_outside_the_form_choices_is_a_problem() -> None:
    assert pmf_problems(COMPLETE | {"dose": "70"}) == ["dose must be one of 56, 84, other"]


def test_the_pmf_is_due_seven_days_after_the_session() -> None:
    assert pmf_submission_deadline(date(2026, 3, 2)) == date(2026, 3, 9)
    assert pmf_submission_deadline(date(2026, 12, 28)) == date(2027, 1, 4)


@pytest.mark.parametrize(
    ("today", "submitted_on", "overdue"),
    [
        (date(2026, 3, 9), None, False),
        (date(2026, 3, 10), None, True),
        (date(2026, 3, 20), date(2026, 3, 9), False),
        (date(2026, 3, 20), date(2026, 3, 10), True),
    ],
)
def test_a_pmf_is_overdue_only_after_its_deadline(
    today: date, submitted_on: date | None, overdue: bool
) -> None:
    assert pmf_is_overdue(date(2026, 3, 2), today=today, submitted_on=submitted_on) is overdue


def test_only_outpatient_settings_submit_pmfs() -> None:
    assert pmf_required("outpatient")
    assert not pmf_required("inpatient")
    with pytest.raises(ValueError, match="outpatient"):
        pmf_required("home")


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2099, 1, 1)), st.integers(0, 30))
def test_a_pmf_sent_within_seven_days_is_never_late(session: date, days_later: int) -> None:
    submitted = session + timedelta(days=days_later)
    late = pmf_is_overdue(session, today=submitted, submitted_on=submitted)
    assert late is (days_later > 7)
