"""The demo's controlled-substance stock, through the inventory services: a safe, ketamine vials
and esketamine devices received, the initial inventory taken almost two years ago (so the
biennial inventory falls due within weeks), draws for every dose and a few witnessed wastes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Clinic
from ketaclinic.core import clock
from ketaclinic.inventory import selectors as inventory_selectors
from ketaclinic.inventory import services as inventory
from ketaclinic.inventory.models import Container, Lot, StorageLocation
from ketaclinic.inventory.products import (
    ESKETAMINE_28MG_NASAL_DEVICE,
    KETAMINE_50MG_PER_ML_10ML_VIAL,
)

WASTE_METHOD = "Expelled into a drug-disposal container"
# The initial inventory is dated this long ago: the biennial one is due two years after it.
INITIAL_INVENTORY_DAYS_AGO = 715


class _Supplier(TypedDict):
    supplier_name: str
    supplier_address: str
    supplier_dea_number: str


SUPPLIER: _Supplier = {
    "supplier_name": "Henry Schein",
    "supplier_address": "135 Duryea Rd, Melville NY",
    "supplier_dea_number": "RH0123456",
}


@dataclass
class Stock:
    location: StorageLocation
    lots: dict[str, list[Lot]] = field(default_factory=dict)  # drug -> lots, oldest first


def stock_open(
    *, nurse: Actor, admin: Actor, clinic: Clinic, now: datetime, expected_sessions: int
) -> Stock:
    """Register the products, open the safe, receive the first lots and take the initial
    inventory, all INITIAL_INVENTORY_DAYS_AGO days back."""
    opened = now - timedelta(days=INITIAL_INVENTORY_DAYS_AGO)
    with clock.replaying(opened):
        vial = inventory.product_register(
            actor=admin, code=KETAMINE_50MG_PER_ML_10ML_VIAL.product_id
        )
        device = inventory.product_register(
            actor=admin, code=ESKETAMINE_28MG_NASAL_DEVICE.product_id
        )
        location = inventory.location_create(
            actor=admin, clinic=clinic, name="Main safe", dea_registration_number="FK1234563"
        )
    stock = Stock(location)
    # Enough for every demo dose: a 500 mg vial covers several IV doses; one device is 28 mg.
    vials = max(2, expected_sessions // 8 + 1)
    devices = max(6, expected_sessions * 2)
    _receive(stock, nurse, "ketamine", vial, vials, "KET-2401", opened + timedelta(hours=1), now)
    _receive(
        stock, nurse, "esketamine", device, devices, "SPR-2401", opened + timedelta(hours=1), now
    )
    with clock.replaying(opened + timedelta(hours=2)):
        lines = [
            {"product": lot.product.code, "lot": lot.lot_number, "sealed_containers": count}
            for lot, count in (
                (stock.lots["ketamine"][0], vials),
                (stock.lots["esketamine"][0], devices),
            )
        ]
        inventory.count_record(
            actor=nurse, location=location, kind="initial", lines=lines, opening_or_close="opening"
        )
    return stock


def _receive(
    stock: Stock,
    actor: Actor,
    drug: str,
    product: Any,
    containers: int,
    lot_number: str,
    at: datetime,
    now: datetime,
) -> None:
    with clock.replaying(at):
        row = inventory.stock_receive(
            actor=actor,
            product=product,
            location=stock.location,
            lot_number=lot_number,
            containers=containers,
            expires_at=now + timedelta(days=540),
            invoice_reference=f"INV-{lot_number}",
            **SUPPLIER,
        )
    stock.lots.setdefault(drug, []).append(row.lot)


def draw(
    stock: Stock, nurse: Actor, administration: Any, quantity_mg: Decimal, at: datetime
) -> None:
    """Draw `quantity_mg` for an administration from the open containers of the drug's lots,
    oldest first, one container at a time."""
    remaining = quantity_mg
    with clock.replaying(at):
        for lot in stock.lots[_key(administration.drug)]:
            containers = Container.objects.filter(lot=lot, remaining_mg__gt=0).order_by(
                "-remaining_mg" if administration.drug == "esketamine" else "remaining_mg", "label"
            )
            for container in containers:
                if remaining <= 0:
                    return
                take = min(remaining, Decimal(container.remaining_mg))
                inventory.inventory_draw_for_administration(
                    actor=nurse,
                    container=container,
                    quantity_mg=take,
                    administration_public_id=administration.public_id,
                    patient=administration.patient,
                )
                remaining -= take
    if remaining > 0:
        raise RuntimeError(f"the demo stock ran out ({remaining} mg short)")


def waste_rest(nurse: Actor, administration: Any, witness: Any, at: datetime) -> None:
    """The part of a drawn dose that was not given, wasted before a second licensed witness."""
    with clock.replaying(at):
        account = inventory_selectors.administration_reconciliation(administration.public_id)
        if account.difference_mg > 0:
            inventory.stock_waste(
                actor=nurse,
                source="drawn_dose",
                administration_public_id=administration.public_id,
                witness_username=witness.username,
                witness_code=authenticator_code(witness),
                method=WASTE_METHOD,
                quantity_mg=account.difference_mg,
            )


def restock(stock: Stock, nurse: Actor, now: datetime) -> None:
    """A second delivery of devices ten days ago: the stock list shows two lots."""
    from ketaclinic.inventory.models import Product

    device = Product.objects.get(code=ESKETAMINE_28MG_NASAL_DEVICE.product_id)
    _receive(stock, nurse, "esketamine", device, 12, "SPR-2611", now - timedelta(days=10), now)


def current_lot(stock: Stock, drug: str) -> Lot:
    """The lot doses are drawn from now: the oldest with stock left."""
    for lot in stock.lots[_key(drug)]:
        if Container.objects.filter(lot=lot, remaining_mg__gt=0).exists():
            return lot
    raise RuntimeError(f"the demo stock of {drug} ran out")


def _key(drug: str) -> str:
    """Sessions name the drug ("racemic-ketamine", "esketamine"); the stock holds two kinds."""
    return "esketamine" if drug == "esketamine" else "ketamine"


def authenticator_code(user: Any) -> str:
    """The witness's current authenticator code, as they would read it off their phone."""
    from django_otp.oath import TOTP

    from ketaclinic.accounts.models import EncryptedTOTPDevice

    device = EncryptedTOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
