"""Catalog of the Schedule III products a ketamine clinic stocks.

Pure data. A product describes one commercial presentation: what one *unit* is (a millilitre of
solution, one nasal device, one troche), how many milligrams a unit holds, and how many units a
sealed commercial container holds. The ledger counts milligrams; these facts let a service turn
"0.7 mL of the 50 mg/mL vial" or "2 devices" into milligrams, and let a count reconciliation turn
"3 sealed vials" into milligrams.

An NDC appears only where clinical-reference.md gives one (SPRAVATO, §5.4). The reference names
openFDA records for generic ketamine injections but does not map them to strengths, so those
products carry `ndc=None` rather than a guessed code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

import pint

# A private registry: the catalog's arithmetic stays in Decimal and gains unit checking. The
# discrete units (device, troche) are their own dimensions so that "mg per device" can never be
# multiplied by millilitres by mistake.
_units: pint.UnitRegistry[Decimal] = pint.UnitRegistry(non_int_type=Decimal)
_units.define("device = [nasal_device]")
_units.define("troche = [troche]")

# clinical-reference §5.4 [C] #3, #118: ketamine HCl and esketamine HCl are Schedule III.
SCHEDULE_III = "CIII"


class DosageForm(StrEnum):
    INJECTION_SOLUTION = "injection_solution"
    NASAL_SPRAY = "nasal_spray"
    TROCHE = "troche"


class DoseUnit(StrEnum):
    """What one counted unit of a product is."""

    MILLILITRE = "mL"
    DEVICE = "device"
    TROCHE = "troche"

    @property
    def is_discrete(self) -> bool:
        """Discrete units are counted like tablets; solutions are measured."""
        return self is not DoseUnit.MILLILITRE


@dataclass(frozen=True, slots=True)
class PackageNdc:
    """A marketed package of a product and how many units it contains."""

    ndc: str
    units: int


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    display_name: str
    substance: str
    dea_schedule: str
    dosage_form: DosageForm
    dose_unit: DoseUnit
    mg_per_unit: Decimal
    units_per_container: Decimal
    container_description: str
    ndc: str | None = None
    package_ndcs: tuple[PackageNdc, ...] = ()
    compounded: bool = False

    def __post_init__(self) -> None:
        if self.mg_per_unit <= 0 or self.units_per_container <= 0:
            raise ValueError(f"{self.product_id}: strength and container size must be positive")

    @property
    def mg_per_container(self) -> Decimal:
        return self.mg_for_units(self.units_per_container)

    @property
    def strength_label(self) -> str:
        """The finished form as a record shows it, e.g. "50 mg/mL" or "28 mg/device"."""
        return f"{_plain(self.mg_per_unit)} mg/{self.dose_unit.value}"

    def mg_for_units(self, units: Decimal) -> Decimal:
        """Milligrams in `units` of this product (mL, devices or troches)."""
        strength = _units.Quantity(self.mg_per_unit, f"mg/{self.dose_unit.value}")
        amount = _units.Quantity(Decimal(units), self.dose_unit.value)
        return Decimal((strength * amount).to("mg").magnitude)

    def mg_for_containers(self, containers: Decimal) -> Decimal:
        return self.mg_for_units(Decimal(containers) * self.units_per_container)


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 50.0 -> "50", 0.25 -> "0.25"."""
    normal = value.normalize()
    return "0" if normal == 0 else format(normal, "f")


def _ketamine_vial(*, mg_per_ml: str, ml: str) -> Product:
    return Product(
        product_id=f"ketamine-hcl-{mg_per_ml}mg-per-ml-{ml}ml-vial",
        display_name=f"Ketamine HCl injection {mg_per_ml} mg/mL, {ml} mL vial",
        substance="ketamine hydrochloride",
        dea_schedule=SCHEDULE_III,
        dosage_form=DosageForm.INJECTION_SOLUTION,
        dose_unit=DoseUnit.MILLILITRE,
        mg_per_unit=Decimal(mg_per_ml),
        units_per_container=Decimal(ml),
        container_description=f"{ml} mL vial",
    )


# The three vial presentations the clinic stocks (50 mg/mL x 10 mL is also the worked example of
# "finished form" and "volume per commercial container" in clinical-reference §6, 1304.22(c)).
KETAMINE_50MG_PER_ML_10ML_VIAL = _ketamine_vial(mg_per_ml="50", ml="10")
KETAMINE_100MG_PER_ML_5ML_VIAL = _ketamine_vial(mg_per_ml="100", ml="5")
KETAMINE_10MG_PER_ML_20ML_VIAL = _ketamine_vial(mg_per_ml="10", ml="20")

# clinical-reference §1.3 [C] #1, #3 and §5.4 [C] #3: one device delivers 28 mg (28 mg/0.2 mL);
# product NDC 50458-028, kits of 2 devices (-02, 56 mg) and 3 devices (-03, 84 mg). Each device is
# a sealed container of its own, so the ledger counts devices; a kit is received as 2 or 3 of them.
ESKETAMINE_28MG_NASAL_DEVICE = Product(
    product_id="esketamine-28mg-nasal-device",
    display_name="Esketamine (SPRAVATO) nasal spray 28 mg device",
    substance="esketamine hydrochloride",
    dea_schedule=SCHEDULE_III,
    dosage_form=DosageForm.NASAL_SPRAY,
    dose_unit=DoseUnit.DEVICE,
    mg_per_unit=Decimal("28"),
    units_per_container=Decimal("1"),
    container_description="single-use nasal spray device (28 mg/0.2 mL)",
    ndc="50458-028",
    package_ndcs=(PackageNdc(ndc="50458-028-02", units=2), PackageNdc(ndc="50458-028-03", units=3)),
)


def compounded_troche(*, strength_mg: Decimal, troches_per_container: int) -> Product:
    """A compounded ketamine troche product of the given strength and bottle size.

    Troches are compounded (clinical-reference §1.4), so strength and count come from the
    pharmacy's label, never from this module. They carry no NDC.
    """
    if troches_per_container < 1:
        raise ValueError("a troche container holds at least one troche")
    strength = _plain(Decimal(strength_mg))
    return Product(
        product_id=f"ketamine-troche-{strength}mg-x{troches_per_container}",
        display_name=f"Ketamine HCl troche {strength} mg (compounded), {troches_per_container}",
        substance="ketamine hydrochloride",
        dea_schedule=SCHEDULE_III,
        dosage_form=DosageForm.TROCHE,
        dose_unit=DoseUnit.TROCHE,
        mg_per_unit=Decimal(strength_mg),
        units_per_container=Decimal(troches_per_container),
        container_description=f"container of {troches_per_container} troches",
        compounded=True,
    )


def catalog_of(*products: Product) -> Mapping[str, Product]:
    """A read-only catalog keyed by product id; duplicate ids are an error, not an overwrite."""
    by_id: dict[str, Product] = {}
    for product in products:
        if product.product_id in by_id:
            raise ValueError(f"duplicate product id {product.product_id!r}")
        by_id[product.product_id] = product
    return MappingProxyType(by_id)


STANDARD_CATALOG: Mapping[str, Product] = catalog_of(
    KETAMINE_50MG_PER_ML_10ML_VIAL,
    KETAMINE_100MG_PER_ML_5ML_VIAL,
    KETAMINE_10MG_PER_ML_20ML_VIAL,
    ESKETAMINE_28MG_NASAL_DEVICE,
)


def ketamine_vial(*, mg_per_ml: Decimal, ml: Decimal, ndc: str = "") -> Product:
    """A ketamine injection vial as its label reads (strength per mL, fill volume, NDC)."""
    strength, volume = _plain(Decimal(mg_per_ml)), _plain(Decimal(ml))
    suffix = f"-ndc-{ndc}" if ndc else ""
    return Product(
        product_id=f"ketamine-hcl-{strength}mg-per-ml-{volume}ml-vial{suffix}",
        display_name=f"Ketamine HCl injection {strength} mg/mL, {volume} mL vial",
        substance="ketamine hydrochloride",
        dea_schedule=SCHEDULE_III,
        dosage_form=DosageForm.INJECTION_SOLUTION,
        dose_unit=DoseUnit.MILLILITRE,
        mg_per_unit=Decimal(mg_per_ml),
        units_per_container=Decimal(ml),
        container_description=f"{volume} mL vial",
        ndc=ndc or None,
    )


# FDA's National Drug Code is 10 digits in three hyphenated segments, labeler-product-package,
# laid out 4-4-2, 5-3-2 or 5-4-1 (21 CFR 207.33); billing writes it as 11 digits, 5-4-2. A product
# NDC (labeler-product) is the first two segments.
_NDC_LAYOUTS = {(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2), (4, 4), (5, 3), (5, 4)}


def ndc_problem(ndc: str) -> str | None:
    """None when `ndc` is laid out as an NDC (with its hyphens), else what is wrong with it."""
    parts = ndc.split("-")
    if not all(part.isdigit() and part.isascii() for part in parts):
        return "An NDC has digits in hyphenated segments, e.g. 50458-028-02."
    if tuple(len(part) for part in parts) not in _NDC_LAYOUTS:
        return "An NDC is laid out 4-4-2, 5-3-2 or 5-4-1 (or 5-4-2), e.g. 50458-028-02."
    return None
