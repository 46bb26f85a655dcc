"""Interacting medication classes and the name -> class matcher."""

from __future__ import annotations

import pytest

from ketaclinic.screening.interactions import (
    INTERACTIONS,
    InteractingClass,
    classify_medication,
    classify_medications,
    names_for_class,
)

B = InteractingClass


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("lorazepam", {B.BENZODIAZEPINE}),
        ("Ativan 1 mg tablet", {B.BENZODIAZEPINE}),
        ("CLONAZEPAM 0.5MG", {B.BENZODIAZEPINE}),
        ("zolpidem 10 mg at night", {B.NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC}),
        ("oxycodone/acetaminophen", {B.OPIOID}),
        ("buprenorphine-naloxone film", {B.OPIOID}),
        ("Lamotrigine ER 200 mg", {B.LAMOTRIGINE}),
        ("phenelzine", {B.MAOI}),
        ("Emsam patch", {B.MAOI}),
        ("Adderall XR 20 mg", {B.PSYCHOSTIMULANT}),
        ("modafinil", {B.PSYCHOSTIMULANT}),
        ("naltrexone 50 mg", {B.NALTREXONE}),
        ("bupropion/naltrexone (Contrave)", {B.NALTREXONE}),
        ("quetiapine 25 mg", {B.ANTIPSYCHOTIC}),
        ("clozapine", {B.ANTIPSYCHOTIC}),
        ("lorazepam + oxycodone", {B.BENZODIAZEPINE, B.OPIOID}),
    ],
)
def test_common_medications_are_recognised(entry: str, expected: set[InteractingClass]) -> None:
    assert classify_medication(entry) == expected


@pytest.mark.parametrize(
    "entry", ["naloxone", "sertraline 100 mg", "", "lorazepamine", "ritalinic"]
)
def test_a_name_is_matched_as_a_whole_word_or_not_at_all(entry: str) -> None:
    assert classify_medication(entry) == frozenset()


def test_unrecognised_entries_are_handed_back_for_a_clinician() -> None:
    result = classify_medications(["Xanax 0.5 mg", "escitalopram 10 mg", "vitamin D"])
    assert result.classes == {B.BENZODIAZEPINE}
    assert result.matched == (("Xanax 0.5 mg", frozenset({B.BENZODIAZEPINE})),)
    assert result.unmatched == ("escitalopram 10 mg", "vitamin D")


def test_every_interacting_class_explains_its_effect_with_a_citation() -> None:
    assert set(INTERACTIONS) == set(InteractingClass)
    for drug_class, interaction in INTERACTIONS.items():
        assert interaction.drug_class is drug_class
        assert interaction.label
        assert interaction.effect.endswith(".")
        assert interaction.citation.startswith("clinical-reference §3.3")


def test_every_known_name_classifies_back_to_its_own_class() -> None:
    for drug_class in InteractingClass:
        for name in names_for_class(drug_class):
            assert drug_class in classify_medication(name), name


def test_no_drug_name_sits_in_two_classes() -> None:
    seen: dict[str, InteractingClass] = {}
    for drug_class in InteractingClass:
        for name in names_for_class(drug_class):
            assert name not in seen, f"{name} in {seen.get(name)} and {drug_class}"
            seen[name] = drug_class


def test_rule_ids_are_derived_from_the_class() -> None:
    assert B.NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC.rule_id == (
        "interaction-non-benzodiazepine-sedative-hypnotic"
    )
