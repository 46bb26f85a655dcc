"""Reconciliations: does every drawn milligram have an account, and does the shelf match the books?

Two pure checks, each returning a result that names its rule:

* per administration (`administration-reconciliation@1`): drawn = administered + wasted + returned,
  exactly, in Decimal milligrams. Waste here is waste of the drawn dose; the rest of an opened
  container wasted afterwards is reported beside it but is not part of the identity.
* per location (`count-reconciliation@1`): the ledger's balance of each (product, lot) against a
  physical count. Sealed containers are counted exactly; opened Schedule III containers may be
  estimated (clinical-reference §6 [C] #132) unless the container holds more than 1,000 discrete
  units, which are counted exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ketaclinic.inventory.ledger import EntryKind, LedgerEntry, StockKey, WasteSource
from ketaclinic.inventory.products import SCHEDULE_III, Product

ADMINISTRATION_RULE = "administration-reconciliation@1"
COUNT_RULE = "count-reconciliation@1"

# clinical-reference §6 [C] #132: an opened Schedule III-V container may be counted by estimate
# unless it holds more than 1,000 tablets or capsules; then the count is exact.
EXACT_COUNT_ABOVE_UNITS = 1000
# Schedules whose opened containers may be estimated (same source). Ketamine is CIII (§5.4).
_ESTIMABLE_SCHEDULES = frozenset({SCHEDULE_III, "CIV", "CV"})


# --- Per administration -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdministrationReconciliation:
    administration_id: str
    drawn_mg: Decimal
    administered_mg: Decimal
    wasted_mg: Decimal
    returned_mg: Decimal
    container_remainder_wasted_mg: Decimal
    rule: str = ADMINISTRATION_RULE

    @property
    def accounted_mg(self) -> Decimal:
        return self.administered_mg + self.wasted_mg + self.returned_mg

    @property
    def difference_mg(self) -> Decimal:
        """Drawn minus accounted: positive means milligrams with no account, negative means
        more accounted for than was drawn."""
        return self.drawn_mg - self.accounted_mg

    @property
    def balanced(self) -> bool:
        return self.difference_mg == 0


def reconcile_administration(
    *,
    administration_id: str,
    entries: Iterable[LedgerEntry],
    administered_mg: Decimal,
) -> AdministrationReconciliation:
    """Account for the milligrams drawn for one administration.

    `entries` may hold any ledger entries; only those linked to `administration_id` count.
    `administered_mg` is what the session recorded as given.
    """
    drawn = wasted = returned = remainder = Decimal(0)
    for entry in entries:
        if entry.administration_id != administration_id:
            continue
        if entry.kind is EntryKind.DRAW:
            drawn += entry.quantity_mg
        elif entry.kind is EntryKind.RETURN:
            returned += entry.quantity_mg
        elif entry.kind is EntryKind.WASTE:
            if entry.waste_source is WasteSource.DRAWN_DOSE:
                wasted += entry.quantity_mg
            elif entry.waste_source is WasteSource.CONTAINER_REMAINDER:
                remainder += entry.quantity_mg
    return AdministrationReconciliation(
        administration_id=administration_id,
        drawn_mg=drawn,
        administered_mg=Decimal(administered_mg),
        wasted_mg=wasted,
        returned_mg=returned,
        container_remainder_wasted_mg=remainder,
    )


# --- Per location: physical count against the ledger --------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenedContainerCount:
    """What is left in one opened container, in mg, and whether it was measured or estimated."""

    remaining_mg: Decimal
    estimated: bool


@dataclass(frozen=True, slots=True)
class CountLine:
    """The physical count of one (product, lot) at the location being counted."""

    product_id: str
    lot: str
    sealed_containers: int
    opened: tuple[OpenedContainerCount, ...] = ()


@dataclass(frozen=True, slots=True)
class CountPolicy:
    # clinical-reference §6 allows estimates for opened containers but gives no tolerance for
    # them. Conservative default: 0 mg, so any estimate that differs from the books is listed
    # for review. Clinic-configurable (e.g. the mg in the smallest graduation a nurse can read).
    estimate_tolerance_mg_per_opened_container: Decimal = Decimal(0)


DEFAULT_COUNT_POLICY = CountPolicy()


class DiscrepancyCode(StrEnum):
    COUNT_DIFFERS = "count_differs"
    NOT_COUNTED = "not_counted"
    UNEXPECTED_STOCK = "unexpected_stock"
    ESTIMATE_NOT_ALLOWED = "estimate_not_allowed"
    UNKNOWN_PRODUCT = "unknown_product"
    DUPLICATE_LINE = "duplicate_line"
    INVALID_COUNT = "invalid_count"


@dataclass(frozen=True, slots=True)
class CountDiscrepancy:
    code: DiscrepancyCode
    key: StockKey
    expected_mg: Decimal
    counted_mg: Decimal
    tolerance_mg: Decimal
    message: str

    @property
    def difference_mg(self) -> Decimal:
        """Counted minus expected: negative is a shortage."""
        return self.counted_mg - self.expected_mg


@dataclass(frozen=True, slots=True)
class CountReconciliation:
    location_id: str
    discrepancies: tuple[CountDiscrepancy, ...]
    rule: str = COUNT_RULE

    @property
    def balanced(self) -> bool:
        return not self.discrepancies


def estimate_allowed(product: Product) -> bool:
    """May an opened container of `product` be counted by estimate? (§6 [C] #132)"""
    if product.dea_schedule not in _ESTIMABLE_SCHEDULES:
        return False
    too_many_units = (
        product.dose_unit.is_discrete and product.units_per_container > EXACT_COUNT_ABOVE_UNITS
    )
    return not too_many_units


def reconcile_counts(
    *,
    location_id: str,
    expected_mg: Mapping[StockKey, Decimal],
    counts: Sequence[CountLine],
    catalog: Mapping[str, Product],
    policy: CountPolicy = DEFAULT_COUNT_POLICY,
) -> CountReconciliation:
    """Compare a physical count at one location with the ledger's balances there.

    `expected_mg` is usually `BalanceState.at_location(location_id)`; keys at other locations
    are ignored. Every expected key with stock must be counted; every counted key must be
    expected. The tolerance is the policy's per-container allowance times the number of opened
    containers whose count is an estimate; sealed containers and measured contents get none.
    """
    discrepancies: list[CountDiscrepancy] = []
    seen: set[StockKey] = set()
    for line in counts:
        key = StockKey(line.product_id, line.lot, location_id)
        expected = expected_mg.get(key, Decimal(0))
        if key in seen:
            discrepancies.append(
                _discrepancy(DiscrepancyCode.DUPLICATE_LINE, key, expected, Decimal(0), "")
            )
            continue
        seen.add(key)
        discrepancies.extend(_compare_line(line, key, expected, catalog, policy))

    for key, expected in sorted(expected_mg.items()):
        if key.location_id == location_id and key not in seen and expected != 0:
            discrepancies.append(
                _discrepancy(DiscrepancyCode.NOT_COUNTED, key, expected, Decimal(0), "")
            )
    return CountReconciliation(location_id=location_id, discrepancies=tuple(discrepancies))


def _compare_line(
    line: CountLine,
    key: StockKey,
    expected: Decimal,
    catalog: Mapping[str, Product],
    policy: CountPolicy,
) -> list[CountDiscrepancy]:
    product = catalog.get(line.product_id)
    if product is None:
        return [_discrepancy(DiscrepancyCode.UNKNOWN_PRODUCT, key, expected, Decimal(0), "")]
    if line.sealed_containers < 0 or any(
        not opened.remaining_mg.is_finite() or opened.remaining_mg < 0 for opened in line.opened
    ):
        return [_discrepancy(DiscrepancyCode.INVALID_COUNT, key, expected, Decimal(0), "")]

    found: list[CountDiscrepancy] = []
    counted = product.mg_for_containers(Decimal(line.sealed_containers)) + sum(
        (opened.remaining_mg for opened in line.opened), Decimal(0)
    )
    estimates = sum(1 for opened in line.opened if opened.estimated)
    if estimates and not estimate_allowed(product):
        found.append(
            _discrepancy(
                DiscrepancyCode.ESTIMATE_NOT_ALLOWED,
                key,
                expected,
                counted,
                f"opened {product.container_description} must be counted exactly",
            )
        )
        estimates = 0
    tolerance = policy.estimate_tolerance_mg_per_opened_container * estimates

    if expected == 0 and counted > 0:
        found.append(
            _discrepancy(DiscrepancyCode.UNEXPECTED_STOCK, key, expected, counted, "", tolerance)
        )
    elif abs(counted - expected) > tolerance:
        found.append(
            _discrepancy(DiscrepancyCode.COUNT_DIFFERS, key, expected, counted, "", tolerance)
        )
    return found


def _discrepancy(
    code: DiscrepancyCode,
    key: StockKey,
    expected: Decimal,
    counted: Decimal,
    detail: str,
    tolerance: Decimal = Decimal(0),
) -> CountDiscrepancy:
    default_messages = {
        DiscrepancyCode.COUNT_DIFFERS: (
            f"counted {counted} mg, the ledger expects {expected} mg (allowed ±{tolerance} mg)"
        ),
        DiscrepancyCode.NOT_COUNTED: f"the ledger expects {expected} mg but nothing was counted",
        DiscrepancyCode.UNEXPECTED_STOCK: f"counted {counted} mg the ledger does not hold here",
        DiscrepancyCode.UNKNOWN_PRODUCT: f"no product {key.product_id!r} in the catalog",
        DiscrepancyCode.DUPLICATE_LINE: "this product and lot was counted on two lines",
        DiscrepancyCode.INVALID_COUNT: "counts cannot be negative or non-numeric",
    }
    return CountDiscrepancy(
        code=code,
        key=key,
        expected_mg=expected,
        counted_mg=counted,
        tolerance_mg=tolerance,
        message=detail or default_messages.get(code, code.value),
    )
