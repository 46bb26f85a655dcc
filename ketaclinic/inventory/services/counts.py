"""Inventory counts and discrepancy cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import (
    Conflict,
    ValidationFailed,
)
from ketaclinic.inventory import ledger, reconciliation
from ketaclinic.inventory.models import (
    DiscrepancyCase,
    InventoryCount,
    Product,
    StorageLocation,
)
from ketaclinic.inventory.services._common import (
    _locked_head,
    _mg,
    _when,
)

# --- Counts and discrepancy cases -------------------------------------------------------------


def count_record(
    *,
    actor: Actor,
    location: StorageLocation,
    kind: str,
    lines: Sequence[Mapping[str, Any]],
    opening_or_close: str = "close",
    taken_at: datetime | None = None,
) -> InventoryCount:
    """Count one location against the ledger. Each line: product (code), lot, sealed_containers,
    opened: [{remaining_mg, estimated}]. Every discrepancy opens a case for compliance."""
    actor.require(Cap.INVENTORY_COUNT)
    if kind not in InventoryCount.Kind.values:
        raise ValidationFailed.for_field("kind", "Unknown kind of count.")
    if opening_or_close not in ("opening", "close"):
        raise ValidationFailed.for_field("opening_or_close", "Opening or close of business?")
    count_lines: list[reconciliation.CountLine] = []
    try:
        for given in lines:
            count_lines.append(
                reconciliation.CountLine(
                    product_id=str(given["product"]),
                    lot=str(given["lot"]).strip(),
                    sealed_containers=int(given.get("sealed_containers", 0)),
                    opened=tuple(
                        reconciliation.OpenedContainerCount(
                            remaining_mg=_mg(item["remaining_mg"]),
                            estimated=bool(item.get("estimated", False)),
                        )
                        for item in given.get("opened", ())
                    ),
                )
            )
    except (KeyError, TypeError, ValueError):
        raise ValidationFailed.for_field(
            "lines", "Each line names product, lot and counts."
        ) from None
    when = _when(taken_at)
    with transaction.atomic():
        head = _locked_head(actor)
        from ketaclinic.inventory.selectors import balances_at_location

        expected = balances_at_location(location)
        products = {p.code: p for p in Product.objects.all()}
        result = reconciliation.reconcile_counts(
            location_id=str(location.public_id),
            expected_mg=expected,
            counts=count_lines,
            catalog={code: p.as_catalog() for code, p in products.items()},
        )
        stored_lines = []
        for line in count_lines:
            key = ledger.StockKey(line.product_id, line.lot, str(location.public_id))
            product = products.get(line.product_id)
            counted = (
                product.as_catalog().mg_for_containers(Decimal(line.sealed_containers))
                if product
                else Decimal(0)
            ) + sum((o.remaining_mg for o in line.opened), Decimal(0))
            stored_lines.append(_line_json(product, line, expected.get(key, Decimal(0)), counted))
        for key, mg in expected.items():
            if mg and not any(
                (line.product_id, line.lot) == (key.product_id, key.lot) for line in count_lines
            ):
                line = reconciliation.CountLine(key.product_id, key.lot, 0)
                stored_lines.append(_line_json(products.get(key.product_id), line, mg, Decimal(0)))
        count = InventoryCount.objects.create(
            organization=actor.organization,
            location=location,
            kind=kind,
            taken_at=when,
            opening_or_close=opening_or_close,
            taken_by=actor.user,
            as_of_sequence=head.last_seq,
            lines=stored_lines,
            balanced=result.balanced,
            rule=result.rule,
        )
        DiscrepancyCase.objects.bulk_create(
            [
                DiscrepancyCase(
                    organization=actor.organization,
                    count=count,
                    code=d.code.value,
                    product_ref=d.key.product_id,
                    lot_ref=d.key.lot,
                    expected_mg=d.expected_mg,
                    counted_mg=d.counted_mg,
                    message=d.message,
                )
                for d in result.discrepancies
            ]
        )
        audit_record(
            actor=actor,
            action="inventory.count.recorded",
            obj=count,
            detail={"kind": kind, "balanced": result.balanced, "cases": len(result.discrepancies)},
        )
    return count


def _line_json(
    product: Product | None,
    line: reconciliation.CountLine,
    expected: Decimal,
    counted: Decimal,
) -> dict[str, Any]:
    spec = product.as_catalog() if product else None
    return {
        "product": line.product_id,
        "substance_name": product.substance if product else "",
        "display_name": product.display_name if product else line.product_id,
        "finished_form": spec.strength_label if spec else "",
        "container_size": product.container_description if product else "",
        "lot": line.lot,
        "sealed_containers": line.sealed_containers,
        "opened": [
            {"remaining_mg": str(o.remaining_mg), "estimated": o.estimated} for o in line.opened
        ],
        "opened_quantity": str(sum((o.remaining_mg for o in line.opened), Decimal(0))),
        "opened_quantity_estimated": any(o.estimated for o in line.opened),
        "expected_mg": str(expected),
        "counted_mg": str(counted),
    }


def case_resolve(*, actor: Actor, case: DiscrepancyCase, note: str) -> DiscrepancyCase:
    """A compliance user closes a discrepancy case with a note (what was found, what was done)."""
    actor.require(Cap.INVENTORY_ADJUST_APPROVE)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed.for_field("note", "Say what was found and what was done.")
    with transaction.atomic():
        case = DiscrepancyCase.objects.select_for_update().get(pk=case.pk)
        if case.status == DiscrepancyCase.Status.RESOLVED:
            raise Conflict("The case is already resolved.")
        case.status = DiscrepancyCase.Status.RESOLVED
        case.resolved_by = actor.user
        case.resolved_at = clock.now()
        case.resolution_note = note
        case.save(
            update_fields=["status", "resolved_by", "resolved_at", "resolution_note", "updated_at"]
        )
        audit_record(actor=actor, action="inventory.case.resolved", obj=case)
    return case
