"""Reading published FHIR QuestionnaireResponses: the US Core, HL7 SDC and HL7 PHR examples and
the NLM/LOINC PHQ-9 form score as published, and a total stated inside a response is checked,
never trusted."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ketaclinic.measures.definitions import get_instrument
from ketaclinic.measures.fhir_answers import (
    AnswerExtractionError,
    answers_from_questionnaire_response,
    check_stated_total,
)
from ketaclinic.measures.scoring import ScoringError, score_response
from tests.testdata import TEST_DATA

US_CORE = TEST_DATA / "fhir-r4-examples" / "us-core"
QUESTIONNAIRES = TEST_DATA / "questionnaires"
LOINC = "http://loinc.org"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def response_from_fsh(path: Path) -> dict[str, Any]:
    """The few FSH lines the HL7 PHR IG's flat QuestionnaireResponse examples use, as JSON."""
    response: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "item": []}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if status := re.fullmatch(r"\* status = #(\S+)", text):
            response["status"] = status.group(1)
        elif re.fullmatch(r"\* item\[\d+\]", text):
            response["item"].append({"answer": []})
        elif link := re.fullmatch(r'\* linkId = "(.+)"', text):
            response["item"][-1]["linkId"] = link.group(1)
        elif coding := re.fullmatch(r'\* valueCoding = \$CodeSystemLoinc#(\S+) "(.*)"', text):
            response["item"][-1]["answer"].append(
                {
                    "valueCoding": {
                        "system": LOINC,
                        "code": coding.group(1),
                        "display": coding.group(2),
                    }
                }
            )
    return response


def published_score(path: Path) -> Decimal:
    """The score component an HL7 PHR IG scored-assessment Observation reports."""
    (value,) = re.findall(r"\* valueInteger = (\d+)", path.read_text(encoding="utf-8"))
    return Decimal(value)


def score(instrument_id: str, qr: dict[str, Any]) -> tuple[Any, Any]:
    instrument = get_instrument(instrument_id)
    extracted = answers_from_questionnaire_response(instrument, qr)
    return extracted, score_response(instrument, extracted.answers)


# --- the published examples ----------------------------------------------------------------------


def test_us_core_phq9_example_scores_12_moderate_and_its_stated_total_agrees() -> None:
    extracted, result = score("phq9", load(US_CORE / "QuestionnaireResponse-phq-9-example.json"))
    assert result.total == 12
    assert result.severity.code == "moderate"
    assert not result.critical_findings
    assert extracted.answers["10"] == 1  # "Somewhat difficult", unscored
    assert check_stated_total(extracted, result).status == "consistent"
    assert extracted.stated_total_link_id == "/44261-6"
    assert extracted.warnings == ()
    assert extracted.unrecognized_link_ids == ()


def test_sdc_phq9_example_states_13_but_its_answers_total_10() -> None:
    path = QUESTIONNAIRES / "hl7-sdc" / "questionnaireresponse-sdc-profile-example-PHQ9.json"
    extracted, result = score("phq9", load(path))
    assert [extracted.answers[str(n)] for n in range(1, 10)] == [0, 0, 0, 1, 2, 1, 3, 2, 1]
    assert result.total == 10
    check = check_stated_total(extracted, result)
    assert (check.status, check.stated, check.computed) == ("inconsistent", 13, 10)
    assert "H1/TS" in check.message
    assert [c.link_id for c in result.critical_findings] == ["9"]


def test_phr_ig_phq9_example_scores_the_3_its_observation_publishes() -> None:
    fsh = QUESTIONNAIRES / "hl7-phr-ig-fsh"
    extracted, result = score(
        "phq9", response_from_fsh(fsh / "QuestionnaireResponse-ScoredAssessment-PHQ9.fsh")
    )
    assert result.total == published_score(fsh / "Observation-PHR-ScoredAssessment-PHQ9.fsh") == 3
    assert result.severity.code == "minimal"
    assert check_stated_total(extracted, result).status == "absent"


def test_phr_ig_gad7_example_scores_the_3_its_observation_publishes() -> None:
    fsh = QUESTIONNAIRES / "hl7-phr-ig-fsh"
    _, result = score(
        "gad7", response_from_fsh(fsh / "QuestionnaireResponse-ScoredAssessment-GAD7.fsh")
    )
    assert result.total == published_score(fsh / "Observation-PHR-ScoredAssessment-GAD7.fsh") == 3
    assert result.screen_positive is False


def lforms_response(option_indexes: list[int], *, as_ordinal: bool) -> tuple[dict, Decimal]:
    """A response to the NLM/LOINC PHQ-9 form choosing the given options, answered the way that
    form's codes come (no system) or as bare ordinal numbers, with the total the form's own
    ordinalValue weights give for those choices."""
    form = load(QUESTIONNAIRES / "lforms-fhir-app" / "phq9.json")
    questions = [q for q in form["item"] if q["linkId"] != "/69722-7" and "answerOption" in q]
    items, expected = [], Decimal(0)
    for question, index in zip(questions, option_indexes, strict=True):
        option = question["answerOption"][index]
        weight = next(
            Decimal(str(e["valueDecimal"])) for e in option["extension"] if e["url"] == ORDINAL
        )
        expected += weight
        answer = (
            {"valueInteger": int(weight)}
            if as_ordinal
            else {"valueCoding": copy.deepcopy(option["valueCoding"])}
        )
        items.append({"linkId": question["linkId"], "answer": [answer]})
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "http://loinc.org/q/44249-1",
        "item": items,
    }
    return response, expected


@pytest.mark.parametrize("as_ordinal", [False, True], ids=["LOINC answer codes", "ordinals"])
@pytest.mark.parametrize("choices", [[0] * 9, [3] * 9, [1, 2, 3, 0, 1, 2, 3, 0, 1]])
def test_the_nlm_loinc_phq9_form_scores_as_its_own_answer_weights_say(
    choices: list[int], as_ordinal: bool
) -> None:
    response, expected = lforms_response(choices, as_ordinal=as_ordinal)
    extracted, result = score("phq9", response)
    assert result.total == expected
    assert extracted.warnings == ()


def test_the_nlm_form_leaves_item_9_optional_but_we_do_not_score_without_it() -> None:
    response, _ = lforms_response([1] * 9, as_ordinal=False)
    response["item"] = [i for i in response["item"] if i["linkId"] != "/44260-8"]
    with pytest.raises(ScoringError) as caught:
        score("phq9", response)
    assert caught.value.field == "9"


def test_us_core_audit_c_example_lacks_the_standard_first_question() -> None:
    instrument = get_instrument("audit-c")
    extracted = answers_from_questionnaire_response(
        instrument, load(US_CORE / "QuestionnaireResponse-AUDIT-C.json")
    )
    assert dict(extracted.answers) == {"2": 0, "3": 0}
    assert extracted.unrecognized_link_ids == ("/68517-2",)
    with pytest.raises(ScoringError) as caught:
        score_response(instrument, extracted.answers)
    assert caught.value.field == "1"


# --- shapes and refusals -------------------------------------------------------------------------


def our_phq9_response(values: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://ketaclinic.org/fhir/Questionnaire/phq9|1",
        "item": [
            {"linkId": str(n), "answer": [{"valueInteger": v}]}
            for n, v in enumerate(values, start=1)
        ],
        **extra,
    }


def test_our_own_link_ids_and_integer_answers_are_read_directly() -> None:
    extracted, result = score("phq9", our_phq9_response([1, 1, 1, 1, 1, 1, 1, 1, 1]))
    assert result.total == 9
    assert extracted.warnings == ()


def test_a_senders_weight_never_overrides_the_definition() -> None:
    # The SDC adaptive example's value set weights "Nearly every day" as 4.0; the PHQ-9 says 3.
    qr = load(US_CORE / "QuestionnaireResponse-phq-9-example.json")
    qr["item"][0]["answer"][0]["valueCoding"] = {
        "system": LOINC,
        "code": "LA6571-9",
        "display": "Nearly every day",
        "extension": [{"url": ORDINAL, "valueDecimal": 4.0}],
    }
    extracted, result = score("phq9", qr)
    assert extracted.answers["1"] == 3
    assert result.total == 13
    assert any("weight 4" in w and "scored from the definition" in w for w in extracted.warnings)


def test_an_unknown_code_is_scored_from_its_weight_only_if_the_weight_is_an_option() -> None:
    qr = our_phq9_response([0] * 9)
    qr["item"][0]["answer"] = [
        {
            "valueCoding": {
                "system": "urn:example",
                "code": "often",
                "extension": [{"url": ORDINAL, "valueDecimal": 2}],
            }
        }
    ]
    extracted, _ = score("phq9", qr)
    assert extracted.answers["1"] == 2
    assert any("unknown code" in w for w in extracted.warnings)
    qr["item"][0]["answer"][0]["valueCoding"]["extension"][0]["valueDecimal"] = 2.5
    with pytest.raises(AnswerExtractionError) as caught:
        answers_from_questionnaire_response(get_instrument("phq9"), qr)
    assert caught.value.field == "1"


def test_an_unknown_code_without_a_weight_is_refused_naming_the_link_id() -> None:
    qr = load(US_CORE / "QuestionnaireResponse-phq-9-example.json")
    qr["item"][8]["answer"][0]["valueCoding"]["code"] = "LA9999-9"
    with pytest.raises(AnswerExtractionError) as caught:
        answers_from_questionnaire_response(get_instrument("phq9"), qr)
    assert caught.value.field == "/44260-8"
    assert "not an option of item 9" in caught.value.message


def test_a_code_from_the_wrong_system_does_not_match() -> None:
    qr = load(US_CORE / "QuestionnaireResponse-phq-9-example.json")
    qr["item"][0]["answer"][0]["valueCoding"]["system"] = "http://snomed.info/sct"
    with pytest.raises(AnswerExtractionError):
        answers_from_questionnaire_response(get_instrument("phq9"), qr)


def test_a_declined_answer_is_recorded_and_leaves_the_item_unanswered() -> None:
    qr = our_phq9_response([0] * 9)
    qr["item"][8]["answer"] = [
        {
            "valueCoding": {
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "asked-declined",
            }
        }
    ]
    extracted = answers_from_questionnaire_response(get_instrument("phq9"), qr)
    assert extracted.declined == ("9",)
    assert extracted.answers["9"] is None
    with pytest.raises(ScoringError) as caught:
        score_response(get_instrument("phq9"), extracted.answers)
    assert caught.value.field == "9"


def test_two_answers_to_one_choice_item_are_refused() -> None:
    qr = our_phq9_response([0] * 9)
    qr["item"][2]["answer"].append({"valueInteger": 1})
    with pytest.raises(AnswerExtractionError) as caught:
        answers_from_questionnaire_response(get_instrument("phq9"), qr)
    assert caught.value.field == "3"


def test_the_same_item_answered_twice_differently_is_refused() -> None:
    qr = our_phq9_response([0] * 9)
    qr["item"].append({"linkId": "/44250-9", "answer": [{"valueInteger": 2}]})
    with pytest.raises(AnswerExtractionError, match="answered twice"):
        answers_from_questionnaire_response(get_instrument("phq9"), qr)


def test_a_fractional_ordinal_is_refused() -> None:
    qr = our_phq9_response([0] * 9)
    qr["item"][0]["answer"] = [{"valueDecimal": 1.5}]
    with pytest.raises(AnswerExtractionError, match="not an option"):
        answers_from_questionnaire_response(get_instrument("phq9"), qr)


def test_yes_no_items_accept_booleans() -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {"linkId": "1", "answer": [{"valueBoolean": True}]},
            {"linkId": "2", "answer": [{"valueBoolean": False}]},
            {"linkId": "6", "answer": [{"valueBoolean": False}]},
        ],
    }
    extracted, result = score("cssrs-screener", qr)
    assert dict(extracted.answers) == {"1": 1, "2": 0, "6": 0}
    assert result.risk_level == "low"


def test_answers_nested_under_groups_and_answers_are_found() -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {
                "linkId": "group",
                "item": [
                    {
                        "linkId": "2",
                        "answer": [
                            {
                                "valueInteger": 1,
                                "item": [{"linkId": "1", "answer": [{"valueInteger": 2}]}],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    extracted, result = score("phq2", qr)
    assert dict(extracted.answers) == {"2": 1, "1": 2}
    assert result.total == 3


def test_a_response_for_another_form_is_read_but_flagged() -> None:
    extracted, _ = score(
        "phq9",
        our_phq9_response(
            [0] * 9, questionnaire="http://example.org/Questionnaire/other", status="in-progress"
        ),
    )
    assert any("not a known form" in w for w in extracted.warnings)
    assert any("in-progress" in w for w in extracted.warnings)


def test_a_response_without_any_item_of_the_instrument_is_refused() -> None:
    with pytest.raises(AnswerExtractionError, match="no answer to any item of gad7@1"):
        answers_from_questionnaire_response(
            get_instrument("gad7"), load(US_CORE / "QuestionnaireResponse-AUDIT-C.json")
        )


def test_only_questionnaire_responses_are_read() -> None:
    with pytest.raises(AnswerExtractionError) as caught:
        answers_from_questionnaire_response(
            get_instrument("phq9"), load(US_CORE / "Questionnaire-phq-9-example.json")
        )
    assert caught.value.field == "resourceType"
