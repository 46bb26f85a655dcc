"""Specification of the product catalog."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.inventory.products import (
    ESKETAMINE_28MG_NASAL_DEVICE,
    KETAMINE_10MG_PER_ML_20ML_VIAL,
    KETAMINE_50MG_PER_ML_10ML_VIAL,
    KETAMINE_100MG_PER_ML_5ML_VIAL,
    STANDARD_CATALOG,
    DoseUnit,
    PackageNdc,
    catalog_of,
    compounded_troche,
)


@pytest.mark.parametrize(
    ("product", "strength", "mg_per_container"),
    [
        (KETAMINE_50MG_PER_ML_10ML_VIAL, "50 mg/mL", Decimal("500")),
        (KETAMINE_100MG_PER_ML_5ML_VIAL, "100 mg/mL", Decimal("500")),
        (KETAMINE_10MG_PER_ML_20ML_VIAL, "10 mg/mL", Decimal("200")),
        (ESKETAMINE_28MG_NASAL_DEVICE, "28 mg/device", Decimal("28")),
    ],
    ids=lambda value: getattr(value, "product_id", str(value)),
)
def test_each_stocked_product_knows_its_strength_and_what_a_sealed_container_holds(
    product, strength: str, mg_per_container: Decimal
) -> None:
    assert product.strength_label == strength
    assert product.mg_per_container == mg_per_container


def test_every_catalog_product_is_schedule_iii() -> None:
    assert {product.dea_schedule for product in STANDARD_CATALOG.values()} == {"CIII"}


def test_only_spravato_carries_an_ndc_because_only_it_has_one_in_the_reference() -> None:
    with_ndc = {pid: p.ndc for pid, p in STANDARD_CATALOG.items() if p.ndc is not None}
    assert with_ndc == {ESKETAMINE_28MG_NASAL_DEVICE.product_id: "50458-028"}
    assert ESKETAMINE_28MG_NASAL_DEVICE.package_ndcs == (
        PackageNdc("50458-028-02", 2),
        PackageNdc("50458-028-03", 3),
    )


def test_spravato_kits_hold_56_and_84_mg() -> None:
    mg = [
        ESKETAMINE_28MG_NASAL_DEVICE.mg_for_units(Decimal(package.units))
        for package in ESKETAMINE_28MG_NASAL_DEVICE.package_ndcs
    ]
    assert mg == [Decimal("56"), Decimal("84")]


def test_millilitres_of_a_solution_convert_to_exact_milligrams() -> None:
    assert KETAMINE_50MG_PER_ML_10ML_VIAL.mg_for_units(Decimal("0.7")) == Decimal("35")
    assert KETAMINE_100MG_PER_ML_5ML_VIAL.mg_for_units(Decimal("0.35")) == Decimal("35")
    assert KETAMINE_10MG_PER_ML_20ML_VIAL.mg_for_containers(Decimal("3")) == Decimal("600")


def test_a_compounded_troche_takes_its_strength_from_the_label_and_has_no_ndc() -> None:
    troche = compounded_troche(strength_mg=Decimal("150"), troches_per_container=12)
    assert troche.compounded
    assert troche.ndc is None
    assert troche.dose_unit is DoseUnit.TROCHE
    assert troche.mg_per_container == Decimal("1800")
    assert troche.product_id == "ketamine-troche-150mg-x12"


@pytest.mark.parametrize(
    ("strength", "count"), [(Decimal("0"), 10), (Decimal("-25"), 10), (Decimal("100"), 0)]
)
def test_a_troche_product_needs_a_positive_strength_and_count(
    strength: Decimal, count: int
) -> None:
    with pytest.raises(ValueError, match="positive|at least one"):
        compounded_troche(strength_mg=strength, troches_per_container=count)


def test_a_catalog_refuses_two_products_with_one_id() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        catalog_of(KETAMINE_50MG_PER_ML_10ML_VIAL, KETAMINE_50MG_PER_ML_10ML_VIAL)


@given(tenths_of_ml=st.integers(min_value=0, max_value=200))
def test_milligrams_grow_in_step_with_volume(tenths_of_ml: int) -> None:
    ml = Decimal(tenths_of_ml) / 10
    for product in (KETAMINE_50MG_PER_ML_10ML_VIAL, KETAMINE_10MG_PER_ML_20ML_VIAL):
        assert product.mg_for_units(ml) == product.mg_per_unit * ml
