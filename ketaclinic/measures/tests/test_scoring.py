"""Scoring reads as a specification: golden answer->score fixtures worked out by hand for every
instrument, the refusals, and the invariants that must hold for any answers at all."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.measures.definitions import (
    Instrument,
    current_instruments,
    get_instrument,
    instrument_from_dict,
)
from ketaclinic.measures.scoring import (
    ScoringError,
    ScoringPolicy,
    find_critical_items,
    score_response,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
WITH_TOTAL = [i for i in current_instruments() if i.scoring.total_range is not None]
MONOTONIC_RULES = {"sum", "mean", "domain_max_sum", "mdq"}


def golden_cases() -> list[Any]:
    params = []
    for path in sorted(GOLDEN_DIR.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            params.append(
                pytest.param(
                    doc["instrument"],
                    doc["version"],
                    case,
                    id=f"{doc['instrument']}: {case['name']}",
                )
            )
    return params


def answers_for(values: list[int]) -> dict[str, int]:
    return {str(n): value for n, value in enumerate(values, start=1)}


# --- golden fixtures -----------------------------------------------------------------------------


def test_every_instrument_has_golden_cases_that_score_and_that_refuse() -> None:
    for instrument in current_instruments():
        doc = json.loads((GOLDEN_DIR / f"{instrument.id}.json").read_text(encoding="utf-8"))
        assert any("expect" in case for case in doc["cases"]), instrument.id
        assert any("expect_error" in case for case in doc["cases"]), instrument.id


@pytest.mark.parametrize(("instrument_id", "version", "case"), golden_cases())
def test_golden_answers_score_as_worked_out_by_hand(
    instrument_id: str, version: int, case: dict[str, Any]
) -> None:
    instrument = get_instrument(instrument_id, version)
    policy = ScoringPolicy(case.get("policy", {}), reference="golden")
    sex = case.get("respondent_sex")

    if "expect_error" in case:
        with pytest.raises(ScoringError) as caught:
            score_response(instrument, case["answers"], policy=policy, respondent_sex=sex)
        assert caught.value.field == case["expect_error"]["field"]
        assert case["expect_error"]["message_contains"] in caught.value.message
        return

    result = score_response(instrument, case["answers"], policy=policy, respondent_sex=sex)
    expect = case["expect"]
    assert result.rule == f"{instrument_id}@{version}"
    assert (None if result.total is None else str(result.total)) == expect["total"]
    assert [finding.link_id for finding in result.critical_findings] == expect["critical"]
    if "severity" in expect:
        assert (result.severity.code if result.severity else None) == expect["severity"]
    for subscale, value in expect.get("subscales", {}).items():
        assert result.subscales[subscale] == Decimal(value), subscale
    if "screen_positive" in expect:
        assert result.screen_positive is expect["screen_positive"]
    if "risk_level" in expect:
        assert result.risk_level == expect["risk_level"]
    for code, met in expect.get("findings", {}).items():
        assert next(f for f in result.findings if f.code == code).met is met, code
    for link_id, score in expect.get("item_scores", {}).items():
        assert result.item_scores[link_id] == score
    if "prorated" in expect:
        assert result.prorated is expect["prorated"]


# --- specifications ------------------------------------------------------------------------------


def test_a_result_names_its_rule_policy_and_the_thresholds_it_used() -> None:
    policy = ScoringPolicy({"madrs.item10_alert_level": Decimal(2)}, reference="clinic-policy:7@3")
    result = score_response(get_instrument("madrs"), answers_for([0] * 10), policy=policy)
    assert result.rule == "madrs@1"
    assert result.policy_reference == "clinic-policy:7@3"
    assert result.policy_values == {"madrs.item10_alert_level": Decimal(2)}


def test_a_refused_response_still_reports_its_critical_answers() -> None:
    answers = answers_for([0, 0, 0, 0, 0, 0, 0, 0, 2])
    del answers["3"]
    with pytest.raises(ScoringError) as caught:
        score_response(get_instrument("phq9"), answers)
    assert caught.value.missing == ("3",)
    assert [c.link_id for c in caught.value.critical_findings] == ["9"]


def test_an_unanswered_gate_question_is_reported_and_a_yes_behind_it_is_kept() -> None:
    # Item 2 decides whether 3-5 are asked; with item 2 blank, a "Yes" to item 4 is not
    # discarded as a skipped answer: item 2 is reported missing and item 4 is still critical.
    with pytest.raises(ScoringError) as caught:
        score_response(get_instrument("cssrs-screener"), {"1": 1, "4": 1, "6": 0})
    assert caught.value.field == "2"
    assert [c.link_id for c in caught.value.critical_findings] == ["4"]


def test_loaded_definitions_cannot_be_changed_by_a_caller() -> None:
    mdq = get_instrument("mdq")
    with pytest.raises(TypeError):
        mdq.scoring.parameters["min_symptoms"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        mdq.scoring.parameters["symptom_items"].append("1z")


def test_critical_items_are_found_in_a_half_finished_form() -> None:
    findings = find_critical_items(get_instrument("phq9"), {"9": 1})
    assert [(f.link_id, f.value, f.finding) for f in findings] == [("9", 1, "suicidal-ideation")]
    assert findings[0].rule == "phq9@1"


def test_critical_item_search_still_rejects_impossible_answers() -> None:
    with pytest.raises(ScoringError) as caught:
        find_critical_items(get_instrument("phq9"), {"9": 5})
    assert caught.value.field == "9"


@pytest.mark.parametrize("bad", [True, 1.0, "2", Decimal(2)])
def test_answers_must_be_whole_number_option_values(bad: Any) -> None:
    answers: dict[str, Any] = answers_for([0] * 9)
    answers["1"] = bad
    with pytest.raises(ScoringError) as caught:
        score_response(get_instrument("phq9"), answers)
    assert caught.value.field == "1"


def test_policy_values_of_other_instruments_are_ignored() -> None:
    policy = ScoringPolicy(
        {"madrs.item10_alert_level": Decimal(4), "gad7.screen_cutoff": Decimal(12)}
    )
    result = score_response(get_instrument("phq9"), answers_for([1] * 9), policy=policy)
    assert result.total == 9
    assert result.policy_values == {}


def test_a_policy_cut_off_must_lie_within_the_total_range() -> None:
    with pytest.raises(ScoringError, match="within 0..6") as caught:
        score_response(
            get_instrument("phq2"),
            {"1": 0, "2": 0},
            policy=ScoringPolicy({"phq2.screen_cutoff": Decimal(7)}),
        )
    assert caught.value.field == "phq2.screen_cutoff"


def test_the_note_tells_a_clinician_the_total_band_and_any_critical_item() -> None:
    result = score_response(get_instrument("phq9"), answers_for([2, 2, 2, 2, 1, 1, 2, 0, 1]))
    assert "PHQ-9 total 13 (range 0-27), moderate" in result.note
    assert "CRITICAL item 9 = 1" in result.note
    assert "phq9@1" in result.note


def test_the_cssrs_result_has_a_risk_level_but_no_total_or_band() -> None:
    result = score_response(
        get_instrument("cssrs-screener"), {"1": 1, "2": 1, "3": 0, "4": 1, "5": 0, "6": 0}
    )
    assert (result.total, result.severity, result.risk_level) == (None, None, "high")


PRORATING_DEFINITION: dict[str, Any] = {
    "format": 1,
    "id": "test-prorating",
    "version": 1,
    "title": "Test",
    "short_title": "TEST",
    "respondent": "self",
    "recall_period": "n/a",
    "canonical_url": "https://ketaclinic.org/fhir/Questionnaire/test-prorating",
    "licence": {"licensed_text_required": False, "note": "test"},
    "languages": {"en": {"available": True}},
    "answer_sets": {"four": [{"value": v, "label": {"en": str(v)}} for v in range(4)]},
    "items": [
        {"link_id": str(n), "label": {"en": f"Item {n}"}, "answer_set": "four"} for n in range(1, 5)
    ],
    "scoring": {"rule": "sum", "total_range": [0, 12], "source": "test"},
    "missing_answers": {"rule": "prorate", "max_missing": 1, "source": "a published rule"},
    "sources": ["test"],
}


def test_a_published_proration_rule_scales_the_sum_and_says_so() -> None:
    instrument = instrument_from_dict(PRORATING_DEFINITION)
    result = score_response(instrument, {"1": 1, "2": 2, "3": 3})
    assert result.prorated is True
    assert result.total == 8  # 6 x 4/3
    assert "Prorated for unanswered item(s) 4" in result.note
    assert score_response(instrument, answers_for([1, 2, 3, 0])).prorated is False


def test_proration_never_goes_beyond_the_published_limit() -> None:
    instrument = instrument_from_dict(PRORATING_DEFINITION)
    with pytest.raises(ScoringError, match="at most 1 may be missing") as caught:
        score_response(instrument, {"1": 1, "2": 2})
    assert caught.value.missing == ("3", "4")


def test_no_shipped_instrument_prorates_because_the_reference_publishes_no_such_rule() -> None:
    assert {i.missing_answers.rule for i in current_instruments()} == {"refuse"}


# --- invariants ----------------------------------------------------------------------------------


@st.composite
def complete_answers(draw: st.DrawFn, instrument: Instrument) -> dict[str, int]:
    """Answers to every item the skip logic asks, drawn from each item's options."""
    answers: dict[str, int] = {}
    for item in instrument.items:
        condition = item.enable_when
        if condition and answers.get(condition.link_id) != condition.equals:
            continue
        answers[item.link_id] = draw(st.sampled_from(sorted(item.values)))
    return answers


@st.composite
def instrument_and_answers(
    draw: st.DrawFn, instruments: list[Instrument]
) -> tuple[Instrument, dict[str, int]]:
    instrument = draw(st.sampled_from(instruments))
    return instrument, draw(complete_answers(instrument))


@given(instrument_and_answers(WITH_TOTAL))
def test_the_total_always_lies_within_the_declared_range(case: Any) -> None:
    instrument, answers = case
    result = score_response(instrument, answers)
    low, high = instrument.scoring.total_range
    assert low <= result.total <= high
    if instrument.severity_bands:
        assert result.severity is not None


@given(
    instrument_and_answers([i for i in WITH_TOTAL if i.scoring.rule in MONOTONIC_RULES]), st.data()
)
def test_raising_one_answer_never_moves_the_total_against_the_items_direction(
    case: Any, data: st.DataObject
) -> None:
    instrument, answers = case
    scored = [instrument.item(link_id) for link_id in answers if instrument.item(link_id).scored]
    item = data.draw(st.sampled_from(scored))
    higher = [v for v in item.values if v > answers[item.link_id]]
    if not higher:
        return
    raised = {**answers, item.link_id: data.draw(st.sampled_from(sorted(higher)))}
    before = score_response(instrument, answers).total
    after = score_response(instrument, raised).total
    assert before is not None
    assert after is not None
    if item.reverse_scored:
        assert after <= before
    else:
        assert after >= before


@given(instrument_and_answers(list(current_instruments())), st.data())
def test_leaving_out_any_required_answer_is_refused_naming_that_item(
    case: Any, data: st.DataObject
) -> None:
    instrument, answers = case
    required = [link_id for link_id in answers if instrument.item(link_id).required]
    left_out = data.draw(st.sampled_from(required))
    partial = {k: v for k, v in answers.items() if k != left_out}
    with pytest.raises(ScoringError) as caught:
        score_response(instrument, partial)
    assert left_out in caught.value.missing or caught.value.field == left_out


@given(instrument_and_answers(list(current_instruments())), st.data())
def test_any_answer_outside_an_items_options_is_refused_naming_that_item(
    case: Any, data: st.DataObject
) -> None:
    instrument, answers = case
    link_id = data.draw(st.sampled_from(sorted(answers)))
    item = instrument.item(link_id)
    bad = data.draw(st.integers(-100, 100).filter(lambda v: v not in item.values))
    with pytest.raises(ScoringError) as caught:
        score_response(instrument, {**answers, link_id: bad})
    assert caught.value.field == link_id


@given(complete_answers(get_instrument("phq9")))
def test_phq9_item_9_above_not_at_all_is_always_critical(answers: dict[str, int]) -> None:
    result = score_response(get_instrument("phq9"), answers)
    assert result.has_critical_findings is (answers["9"] >= 1)


@given(complete_answers(get_instrument("phq9")))
def test_the_phq2_inside_a_phq9_equals_a_phq2_on_the_same_answers(answers: dict[str, int]) -> None:
    phq9 = score_response(get_instrument("phq9"), answers)
    phq2 = score_response(get_instrument("phq2"), {"1": answers["1"], "2": answers["2"]})
    assert phq9.subscales["phq2"] == phq2.total


@given(complete_answers(get_instrument("qids-sr16")))
def test_qids_total_is_the_sum_of_domain_maxima_never_the_item_sum(answers: dict[str, int]) -> None:
    result = score_response(get_instrument("qids-sr16"), answers)
    domain_total = (
        max(answers[k] for k in ("1", "2", "3", "4"))
        + answers["5"]
        + max(answers[k] for k in ("6", "7", "8", "9"))
        + sum(answers[k] for k in ("10", "11", "12", "13", "14"))
        + max(answers["15"], answers["16"])
    )
    assert result.total == domain_total <= sum(answers.values())


@given(complete_answers(get_instrument("cssrs-screener")))
def test_cssrs_risk_is_high_exactly_for_intent_plan_or_recent_behaviour(
    answers: dict[str, int],
) -> None:
    result = score_response(get_instrument("cssrs-screener"), answers)
    high = answers.get("4") == 1 or answers.get("5") == 1 or answers.get("6-recent") == 1
    assert (result.risk_level == "high") is high
    assert result.has_critical_findings is any(answers.get(k) == 1 for k in ("4", "5", "6"))
