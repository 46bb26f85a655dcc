"""The citation table the protocol screen prints: every number of every standard template has a
source, unconfirmed ones are marked as the clinic's setting, and a clinic's change is shown as
its own value next to the standard one. Pure: no database."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from ketaclinic.protocols.catalog import STANDARD_TEMPLATES, ProtocolTemplate
from ketaclinic.protocols.citations import protocol_facts

NOT_NUMBERS = {"drug", "setting", "dose.kind"}


@pytest.mark.parametrize("template", STANDARD_TEMPLATES, ids=lambda t: t.key)
def test_every_number_of_a_standard_template_has_a_source(template: ProtocolTemplate) -> None:
    for fact in protocol_facts(template):
        if fact.path in NOT_NUMBERS or fact.value in ("none", "no"):
            continue
        assert fact.source, f"{template.key} {fact.path} = {fact.value} has no source"
        assert fact.standard_value is None
        assert "§" in fact.source or "CFR" in fact.source or fact.source.startswith("[U]")


@pytest.mark.parametrize("template", STANDARD_TEMPLATES, ids=lambda t: t.key)
def test_unconfirmed_values_and_listed_clinic_settings_are_marked(
    template: ProtocolTemplate,
) -> None:
    for fact in protocol_facts(template):
        if fact.unconfirmed or fact.path in template.clinic_settings:
            assert fact.clinic_setting, f"{template.key} {fact.path}"


def test_a_clinic_change_shows_the_standard_value_and_its_source() -> None:
    standard = STANDARD_TEMPLATES[0]
    caps = dataclasses.replace(standard.caps, max_mg_per_kg=Decimal("0.65"))
    clinic = dataclasses.replace(standard, version=2, caps=caps)
    (fact,) = [f for f in protocol_facts(clinic) if f.path == "caps.max_mg_per_kg"]
    assert fact.value == "0.65 mg/kg"
    assert fact.source == "clinic value"
    assert fact.clinic_setting
    assert fact.standard_value == "0.75 mg/kg"
    assert fact.standard_source == "Highest dose some patients needed, §1.1 [C] #20"
    unchanged = [f for f in protocol_facts(clinic) if f.path == "dose.starting_amount"]
    assert unchanged[0].standard_value is None
