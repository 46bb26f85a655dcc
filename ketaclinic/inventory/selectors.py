"""Reads of the controlled-substance ledger: stock, reconciliations, report lines, verification.

Everything except `ledger_verify` runs inside the request's organization scope (django-scopes).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django_scopes import scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import NotFound
from ketaclinic.core.formatting import plain_number
from ketaclinic.inventory import ledger, reconciliation, records
from ketaclinic.inventory.ledger import EntryKind, StockKey, WasteSource
from ketaclinic.inventory.models import (
    Container,
    DeaForm,
    DiscrepancyCase,
    InventoryCount,
    LedgerChain,
    LedgerRow,
    Lot,
    Product,
    StorageLocation,
)

ROW_RELATED = ("product", "lot", "location__clinic", "actor", "witness", "approver", "patient")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def get_for_actor(actor: Actor, model: type[Any], public_id: Any, *, capability: Cap) -> Any:
    """The one lookup helper: another organization's object is a 404, like a missing one."""
    actor.require(capability)
    key = _uuid(public_id)
    found = model.objects.filter(public_id=key).first() if key else None
    if found is None:
        raise NotFound(f"No such {model._meta.verbose_name}.")
    return found


def retention_years() -> int:
    years = int(getattr(settings, "KETACLINIC_CS_RETENTION_YEARS", records.MINIMUM_RETENTION_YEARS))
    return max(years, records.MINIMUM_RETENTION_YEARS)


# --- Stock ------------------------------------------------------------------------------------


def balances_at_location(location: StorageLocation) -> dict[StockKey, Decimal]:
    """The running balance of every (product, lot) ever held at `location`, from its last row."""
    last = (
        LedgerRow.objects.filter(location=location)
        .values("product_ref", "lot_ref")
        .annotate(last=Max("sequence"))
        .values_list("last", flat=True)
    )
    rows = LedgerRow.objects.filter(location=location, sequence__in=list(last)).values_list(
        "product_ref", "lot_ref", "balance_after_mg"
    )
    where = str(location.public_id)
    return {StockKey(p, lot, where): Decimal(b) for p, lot, b in rows}


@dataclass
class StockLine:
    product: Product
    lot: Lot
    balance_mg: Decimal
    containers: list[Container] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        return self.lot.expires_at <= clock.now()


@dataclass
class LocationStock:
    location: StorageLocation
    lines: list[StockLine]

    @property
    def total_mg(self) -> Decimal:
        return sum((line.balance_mg for line in self.lines), Decimal(0))


def stock_by_location() -> list[LocationStock]:
    """Every location with each lot it holds and the containers in it (fixed query count)."""
    locations = list(StorageLocation.objects.select_related("clinic"))
    lots = {
        (lot.product.code, lot.lot_number): lot for lot in Lot.objects.select_related("product")
    }
    containers: dict[tuple[int, int], list[Container]] = defaultdict(list)
    for container in Container.objects.exclude(status=Container.Status.EMPTY):
        containers[(container.location_id, container.lot_id)].append(container)
    last = (
        LedgerRow.objects.values("location_id", "product_ref", "lot_ref")
        .annotate(last=Max("sequence"))
        .values_list("last", flat=True)
    )
    balances: dict[int, list[tuple[str, str, Decimal]]] = defaultdict(list)
    for location_id, product_ref, lot_ref, balance in LedgerRow.objects.filter(
        sequence__in=list(last)
    ).values_list("location_id", "product_ref", "lot_ref", "balance_after_mg"):
        balances[location_id].append((product_ref, lot_ref, Decimal(balance)))
    result = []
    for location in locations:
        lines = []
        for product_ref, lot_ref, balance in sorted(balances[location.pk]):
            lot = lots[(product_ref, lot_ref)]
            if balance == 0:
                continue
            lines.append(
                StockLine(
                    product=lot.product,
                    lot=lot,
                    balance_mg=balance,
                    containers=containers[(location.pk, lot.pk)],
                )
            )
        result.append(LocationStock(location=location, lines=lines))
    return result


def containers_in_stock() -> QuerySet[Container]:
    return (
        Container.objects.exclude(status=Container.Status.EMPTY)
        .select_related("lot__product", "location__clinic")
        .order_by("location__name", "lot__expires_at", "label")
    )


# --- The administration's account (the hook for sessions) -------------------------------------


def administered_mg_of(administration_id: uuid.UUID) -> Decimal | None:
    """What the sessions app recorded as given, looked up by label (no import of sessions)."""
    try:
        model = apps.get_model("treatment_sessions", "DoseAdministration")
    except LookupError:
        return None
    dose = model.objects.filter(public_id=administration_id).values_list("dose_mg", flat=True)
    value = dose.first()
    return None if value is None else Decimal(value)


def administration_known(administration_public_id: uuid.UUID | str) -> bool:
    """True when this organization has the administration: a dose the sessions app recorded, or
    ledger rows naming it. A random or another organization's id is not known (the API's 404)."""
    administration_id = _uuid(administration_public_id)
    if administration_id is None:
        return False
    if LedgerRow.objects.filter(administration_id=administration_id).exists():
        return True
    return administered_mg_of(administration_id) is not None


def administration_reconciliation(
    administration_public_id: uuid.UUID | str, *, administered_mg: Decimal | None = None
) -> reconciliation.AdministrationReconciliation:
    """drawn = administered + wasted + returned, to the milligram, for one administration.

    `administered_mg` defaults to the sessions app's DoseAdministration.dose_mg for that id.
    Sessions calls this before signing a note and refuses while `.balanced` is False.
    """
    administration_id = _uuid(administration_public_id)
    if administration_id is None:
        raise NotFound("No such administration.")
    if administered_mg is None:
        administered_mg = administered_mg_of(administration_id) or Decimal(0)
    rows = LedgerRow.objects.filter(administration_id=administration_id).order_by("sequence")
    return reconciliation.reconcile_administration(
        administration_id=str(administration_id),
        entries=[row.to_entry() for row in rows],
        administered_mg=Decimal(administered_mg),
    )


# --- Dashboard --------------------------------------------------------------------------------


def cases_open() -> QuerySet[DiscrepancyCase]:
    return DiscrepancyCase.objects.filter(status=DiscrepancyCase.Status.OPEN).select_related(
        "count__location__clinic"
    )


# The dashboard warns this many days before the biennial inventory falls due (clinic reminder,
# not a regulatory figure: the two-year interval itself is in inventory/records.py).
BIENNIAL_WARNING_DAYS = 45


@dataclass(frozen=True)
class BiennialDue:
    location: StorageLocation
    last_taken_on: Any  # date
    due_on: Any  # date
    overdue: bool


def biennial_inventories_due(within_days: int = BIENNIAL_WARNING_DAYS) -> list[BiennialDue]:
    """Locations whose next biennial inventory (two years after the last initial or biennial
    one, in the clinic's calendar) falls due within `within_days` or is overdue. One query."""
    from zoneinfo import ZoneInfo

    last_full_inventory = (
        InventoryCount.objects.filter(location=OuterRef("pk"), kind__in=["initial", "biennial"])
        .order_by("-taken_at")
        .values("taken_at")[:1]
    )
    locations = StorageLocation.objects.select_related("clinic").annotate(
        last_taken_at=Subquery(last_full_inventory)
    )
    due = []
    for location in locations:
        if location.last_taken_at is None:
            continue
        zone = location.clinic.time_zone
        last = location.last_taken_at.astimezone(ZoneInfo(zone)).date()
        due_on = records.next_biennial_inventory_due(last).due_on
        today = clock.today_in(zone)
        if (due_on - today).days <= within_days:
            due.append(BiennialDue(location, last, due_on, due_on < today))
    return due


def form_106_pending() -> QuerySet[DeaForm]:
    """Theft/loss reports not yet marked filed with the DEA, soonest deadline first."""
    return dea_forms().filter(kind=DeaForm.Kind.FORM_106, filed_at__isnull=True).order_by("due_by")


def dea_forms() -> QuerySet[DeaForm]:
    """Every DEA form record with the ledger row, product and place it is about."""
    return DeaForm.objects.select_related(
        "row__product", "row__lot", "row__location__clinic", "row__actor", "row__witness"
    ).order_by("-created_at")


# --- Reports ----------------------------------------------------------------------------------


def rows_between(kinds: Sequence[str], start: datetime, end: datetime) -> QuerySet[LedgerRow]:
    return (
        LedgerRow.objects.filter(kind__in=kinds, occurred_at__gte=start, occurred_at__lt=end)
        .select_related(*ROW_RELATED)
        .order_by("occurred_at", "sequence")
    )


@dataclass
class AdministrationLine:
    """One administration on the dispensing/administration log (1304.22(c))."""

    administration_id: str
    first_draw: LedgerRow
    drawn_mg: Decimal = Decimal(0)
    wasted_mg: Decimal = Decimal(0)
    returned_mg: Decimal = Decimal(0)

    @property
    def administered_mg(self) -> Decimal:
        return self.drawn_mg - self.wasted_mg - self.returned_mg

    @property
    def administered_units(self) -> str:
        spec = self.first_draw.product.as_catalog()
        units = self.administered_mg / spec.mg_per_unit
        return f"{units.normalize():f} {spec.dose_unit.value}"


def administration_log(start: datetime, end: datetime) -> list[AdministrationLine]:
    """Administrations whose first draw falls in [start, end), with what was given."""
    draws = rows_between([EntryKind.DRAW], start, end)
    lines: dict[str, AdministrationLine] = {}
    for row in draws:
        key = str(row.administration_id)
        if key not in lines:
            lines[key] = AdministrationLine(administration_id=key, first_draw=row)
    linked = LedgerRow.objects.filter(
        administration_id__in=[uuid.UUID(k) for k in lines]
    ).values_list("administration_id", "kind", "waste_source", "quantity_mg")
    for administration_id, kind, source, quantity in linked:
        line = lines[str(administration_id)]
        if kind == EntryKind.DRAW:
            line.drawn_mg += quantity
        elif kind == EntryKind.RETURN:
            line.returned_mg += quantity
        elif kind == EntryKind.WASTE and source == WasteSource.DRAWN_DOSE:
            line.wasted_mg += quantity
    return list(lines.values())


def receipts(start: datetime, end: datetime) -> QuerySet[LedgerRow]:
    return rows_between([EntryKind.RECEIPT], start, end).select_related("receipt")


def waste_log(start: datetime, end: datetime) -> QuerySet[LedgerRow]:
    return rows_between([EntryKind.WASTE], start, end)


def destruction_and_loss(start: datetime, end: datetime) -> QuerySet[LedgerRow]:
    kinds = [EntryKind.DESTRUCTION, EntryKind.LOSS, EntryKind.THEFT, EntryKind.BREAKAGE]
    return rows_between(kinds, start, end).select_related("dea_form")


def inventories() -> QuerySet[InventoryCount]:
    return InventoryCount.objects.filter(
        kind__in=[InventoryCount.Kind.INITIAL, InventoryCount.Kind.BIENNIAL]
    ).select_related("location__clinic", "taken_by")


def previous_inventory(count: InventoryCount) -> InventoryCount | None:
    return (
        inventories()
        .filter(location=count.location, taken_at__lt=count.taken_at)
        .order_by("-taken_at")
        .first()
    )


# --- ledger-verify ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerProblem:
    organization: str
    sequence: int
    row_id: str
    reason: str


@dataclass
class LedgerVerifyReport:
    chains: int = 0
    rows: int = 0
    problems: list[LedgerProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def ledger_verify(*, progress: Any = None) -> LedgerVerifyReport:
    """Recompute every organization's hash chain, every running balance and every container's
    contents from the stored rows. Reports the first bad row of each chain."""
    report = LedgerVerifyReport()
    with scopes_disabled():
        heads = list(LedgerChain.objects.select_related("organization").order_by("pk"))
        for head in heads:
            report.chains += 1
            problem = _verify_chain(head, report, progress)
            if problem is not None:
                report.problems.append(problem)
    return report


def _verify_chain(head: LedgerChain, report: LedgerVerifyReport, progress: Any) -> Any:
    org = head.organization
    rows = list(
        LedgerRow.objects.filter(organization=org)
        .select_related("product", "container")
        .order_by("sequence")
    )
    report.rows += len(rows)
    if progress is not None:
        progress.update(len(rows))
    pure = [row.to_pure() for row in rows]
    for index, row in enumerate(rows):
        if row.sequence != index + 1:
            return LedgerProblem(org.name, row.sequence, str(row.public_id), "sequence gap")
    broken = ledger.verify_chain(pure)
    if broken is not None:
        row = rows[broken]
        return LedgerProblem(
            org.name,
            row.sequence,
            str(row.public_id),
            "row content or link does not match its hash (altered after writing)",
        )
    catalog = {row.product.code: row.product.as_catalog() for row in rows}
    recomputed = ledger.recompute_balances(pure, catalog=catalog)
    found = [
        (
            m.index,
            f"running balance {plain_number(m.stored_mg)} mg, recomputed {plain_number(m.recomputed_mg)} mg",
        )
        for m in recomputed.balance_mismatches
    ]
    found += [(v.index, f"breaks rule {v.code}: {v.message}") for v in recomputed.violations]
    if found:
        index, reason = min(found)
        row = rows[index]
        return LedgerProblem(org.name, row.sequence, str(row.public_id), reason)
    if head.last_seq != len(rows):
        return LedgerProblem(org.name, len(rows) + 1, "", "rows missing at the end of the chain")
    return _verify_containers(org, rows)


_CONTAINER_EFFECT = {
    EntryKind.DRAW: -1,
    EntryKind.RETURN: 1,
    EntryKind.DESTRUCTION: -1,
    EntryKind.LOSS: -1,
    EntryKind.THEFT: -1,
    EntryKind.BREAKAGE: -1,
}


def _verify_containers(org: Any, rows: list[LedgerRow]) -> LedgerProblem | None:
    used: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row.container_id is None:
            continue
        sign = _CONTAINER_EFFECT.get(EntryKind(row.kind), 0)
        if row.kind == EntryKind.WASTE and row.waste_source == WasteSource.CONTAINER_REMAINDER:
            sign = -1
        used[row.container_id] += sign * Decimal(row.quantity_mg)
    for container in Container.objects.filter(organization=org).select_related("lot__product"):
        full = container.lot.product.as_catalog().mg_per_container
        if full + used[container.pk] != container.remaining_mg:
            return LedgerProblem(
                org.name,
                0,
                str(container.public_id),
                f"container {container.label} shows {plain_number(container.remaining_mg)} mg; its rows "
                f"leave {full + used[container.pk]} mg",
            )
    return None


# --- compliance's day (role homes) ---------------------------------------------------------------


@dataclass(frozen=True)
class CountDue:
    location: StorageLocation
    last_count_at: datetime | None


def counts_due_today() -> list[CountDue]:
    """Storage locations with no count (shift, daily or full inventory) since the start of the
    clinic's day: the clinic's own count routine, listed on compliance's home. One query."""
    from zoneinfo import ZoneInfo

    last_count = (
        InventoryCount.objects.filter(location=OuterRef("pk"))
        .order_by("-taken_at")
        .values("taken_at")[:1]
    )
    locations = StorageLocation.objects.select_related("clinic").annotate(
        last_count_at=Subquery(last_count)
    )
    due = []
    for location in locations:
        zone = ZoneInfo(location.clinic.time_zone)
        start = datetime.combine(
            clock.today_in(location.clinic.time_zone), datetime.min.time(), zone
        )
        last = location.last_count_at
        if last is None or last < start:
            due.append(CountDue(location, last))
    return due


@dataclass(frozen=True)
class UnreconciledDose:
    administration_id: uuid.UUID
    patient_name: str
    product: str
    drawn_mg: Decimal
    accounted_mg: Decimal  # administered + wasted (witnessed) + returned
    drawn_at: datetime

    @property
    def left_mg(self) -> Decimal:
        return self.drawn_mg - self.accounted_mg


def unreconciled_doses(*, since: datetime) -> list[UnreconciledDose]:
    """Doses drawn since `since` whose milligrams are not all accounted for yet (given, wasted
    with a witness, or returned): a waste still waits for its witness. Two queries."""
    rows = (
        LedgerRow.objects.filter(administration_id__isnull=False, occurred_at__gte=since)
        .select_related("patient")
        .order_by("sequence")
    )
    drawn: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    accounted: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    first: dict[uuid.UUID, LedgerRow] = {}
    for row in rows:
        key = row.administration_id
        assert key is not None  # filtered above
        first.setdefault(key, row)
        if row.kind == EntryKind.DRAW.value:
            drawn[key] += row.quantity_mg
        elif row.kind == EntryKind.RETURN.value or (
            row.kind == EntryKind.WASTE.value and row.waste_source == WasteSource.DRAWN_DOSE.value
        ):
            accounted[key] += row.quantity_mg
    if not drawn:
        return []
    try:
        model = apps.get_model("treatment_sessions", "DoseAdministration")
    except LookupError:
        given: dict[uuid.UUID, Decimal] = {}
    else:
        given = dict(
            model.objects.filter(public_id__in=list(drawn)).values_list("public_id", "dose_mg")
        )
    found = []
    for key, mg in drawn.items():
        total = accounted[key] + Decimal(given.get(key) or 0)
        if mg > total:
            row = first[key]
            name = row.patient.full_name if row.patient is not None else ""
            found.append(UnreconciledDose(key, name, row.product_ref, mg, total, row.occurred_at))
    return sorted(found, key=lambda dose: dose.drawn_at)
