"""Screening reads codes, not labels: every condition that answers a screening question matches
in ICD-10-CM and in SNOMED CT (value sets in ketaclinic/screening/value_sets/conditions.json).
Regression: pregnancy coded in SNOMED CT (77386006) on an active Condition was missed, leaving
every route at "needs review" where the ICD-10-CM code made the patient ineligible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.core import clock
from ketaclinic.patients import services as chart
from ketaclinic.screening import services
from ketaclinic.screening.condition_codes import ICD10CM, SNOMED, flags_answered, value_sets
from ketaclinic.screening.rules import _YES_NO_RULES
from ketaclinic.screening.selectors import local_date, screening_snapshot
from ketaclinic.screening.tests.helpers import chart_ready_for_screening

# (screening question, ICD-10-CM example, SNOMED CT example): one row per contraindication or
# condition rule the chart can answer.
TABLE = [
    ("psychosis_history", "F20.9", "58214004"),
    ("psychosis_history", "F29", "69322001"),
    ("bipolar_disorder", "F31.81", "13746004"),
    ("active_substance_use_disorder", "F10.20", "66590003"),
    ("intracerebral_hemorrhage_history", "I61.9", "274100004"),
    ("aneurysmal_vascular_disease_or_avm", "I67.1", "128609009"),
    ("aneurysmal_vascular_disease_or_avm", "I71.4", "67362008"),
    ("cystitis_history", "N30.10", "197834003"),
    ("pregnant", "Z33.1", "77386006"),
    ("pregnant", "O09.90", "72892002"),
    ("raised_intraocular_pressure", "H40.11", "23986001"),
    ("hypertension", "I10", "38341003"),
    ("hypertension", "I11.9", "59621000"),
]
RULE_OF_FLAG = {rule.field_name: rule.rule_id for rule in _YES_NO_RULES}


@pytest.mark.parametrize(("flag", "icd", "snomed"), TABLE)
def test_each_condition_matches_in_icd10cm_and_in_snomed(flag: str, icd: str, snomed: str) -> None:
    assert flag in flags_answered(ICD10CM, icd, "active")
    assert flag in flags_answered(ICD10CM, icd.replace(".", ""), "active")
    assert flag in flags_answered(SNOMED, snomed, "active")
    # A code means what its system says: the same characters in another system match nothing.
    assert flag not in flags_answered(SNOMED, icd, "active")
    assert flag not in flags_answered(ICD10CM, snomed, "active")
    assert flags_answered("http://example.org/local", snomed, "active") == frozenset()


def test_every_value_set_is_coded_both_ways_with_its_sources() -> None:
    raw = json.loads(
        (Path(__file__).resolve().parents[1] / "value_sets/conditions.json").read_text()
    )
    for flag, entry in raw["sets"].items():
        assert entry["icd10cm"], flag
        assert entry["snomed"], flag
        assert entry["icd10cm_source"].strip(), flag
        assert entry["snomed_source"].strip(), flag
        assert all(code.isdigit() for code in entry["snomed"]), flag
    assert {row[0] for row in TABLE} == set(value_sets())


def test_resolved_pregnancy_does_not_count_but_a_resolved_haemorrhage_does() -> None:
    assert "pregnant" not in flags_answered(SNOMED, "77386006", "resolved")
    assert "intracerebral_hemorrhage_history" in flags_answered(SNOMED, "274100004", "resolved")
    assert "active_substance_use_disorder" not in flags_answered(ICD10CM, "F10.20", "remission")
    assert "active_substance_use_disorder" not in flags_answered(ICD10CM, "F17.210", "active")


@pytest.mark.django_db
@pytest.mark.parametrize("system", [ICD10CM, SNOMED])
@pytest.mark.parametrize(("flag", "icd", "snomed"), TABLE)
def test_a_coded_chart_condition_answers_the_screening_question(
    prescriber: Any, patient_a: Any, traveller: Any, flag: str, icd: str, snomed: str, system: str
) -> None:
    code = icd if system == ICD10CM else snomed
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient_a)
        chart.condition_add(
            actor=prescriber,
            patient=patient_a,
            data={
                "code_system": system,
                "code": code,
                "display": flag,
                "clinical_status": "active",
            },
        )
        inputs = screening_snapshot(
            patient_a, as_of=local_date(patient_a.organization, clock.now())
        ).inputs
        if flag == "hypertension":
            # The intake says "absent" and the chart disagrees: undocumented until resolved.
            assert inputs.hypertension is None
            return
        assert getattr(inputs, flag) is True
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient_a)
        rules = {f["rule_id"] for d in evaluation.decisions.all() for f in d.findings}
    assert RULE_OF_FLAG[flag] in rules


def _decisions(evaluation: Any) -> dict[str, str]:
    return {d.route: d.computed_decision for d in evaluation.decisions.all()}


@pytest.mark.django_db
def test_pregnancy_in_snomed_makes_every_route_ineligible_like_icd10cm(
    prescriber: Any, patient_a: Any, traveller: Any, members: Any
) -> None:
    """Through the FHIR API (an active Condition coded 77386006), as in the reported defect."""
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient_a)
    client = api_client(members["prescriber"])
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": "77386006", "display": "Pregnancy"}]},
        "subject": {"reference": f"Patient/{patient_a.public_id}"},
    }
    created = client.post(
        "/fhir/r4/Condition", json.dumps(condition), content_type="application/fhir+json"
    )
    assert created.status_code == 201, created.content
    screened = client.post(f"/api/v1/patients/{patient_a.public_id}/screening")
    assert screened.status_code == 201, screened.json()
    with scope(organization=prescriber.organization):
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient_a)
        decisions = _decisions(evaluation)
    assert decisions
    assert set(decisions.values()) == {"ineligible"}, decisions


@pytest.mark.django_db
def test_pregnancy_in_snomed_through_the_json_api(
    prescriber: Any, patient_a: Any, traveller: Any, members: Any
) -> None:
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient_a)
    client = api_client(members["prescriber"])
    created = client.post(
        f"/api/v1/patients/{patient_a.public_id}/conditions",
        {"code_system": SNOMED, "code": "77386006", "display": "Pregnancy"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    screened = client.post(f"/api/v1/patients/{patient_a.public_id}/screening")
    assert screened.status_code == 201, screened.json()
    with scope(organization=prescriber.organization):
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient_a)
        decisions = _decisions(evaluation)
    assert set(decisions.values()) == {"ineligible"}, decisions
