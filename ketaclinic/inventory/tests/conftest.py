"""The inventory cast: the shared members of organization A plus a safe and a cart, the 50 mg/mL
vial registered, and a helper to receive a lot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, make_patient, totp_code
from ketaclinic.accounts.models import Clinic
from ketaclinic.inventory import services
from ketaclinic.inventory.products import KETAMINE_50MG_PER_ML_10ML_VIAL

VIAL_CODE = KETAMINE_50MG_PER_ML_10ML_VIAL.product_id
EXPIRES = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.fixture
def nurse(members: Any) -> Any:
    return actor_for(members["nurse"])


@pytest.fixture
def compliance(members: Any) -> Any:
    return actor_for(members["compliance"])


@pytest.fixture
def witness(members: Any) -> WitnessCredentials:
    """Credentials of a second staff member (the prescriber) for waste and destruction."""
    return WitnessCredentials(members["prescriber"].user)


class WitnessCredentials(Mapping[str, str]):
    """witness_username and witness_code, the code read when used (`**witness`), so that a test
    that travels in time after the fixture was made still sends the code of its moment."""

    def __init__(self, user: Any) -> None:
        self.user = user

    def __getitem__(self, key: str) -> str:
        if key == "witness_username":
            return str(self.user.username)
        if key == "witness_code":
            return totp_code(self.user)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("witness_username", "witness_code"))

    def __len__(self) -> int:
        return 2


@pytest.fixture
def stock(nurse: Any, org_a: Any) -> dict[str, Any]:
    """A safe and a cart at clinic A; 10 vials (5,000 mg) of lot K1 received into the safe."""
    with scope(organization=org_a):
        clinic = Clinic.objects.get()
        product = services.product_register(actor=nurse, code=VIAL_CODE)
        safe = services.location_create(actor=nurse, clinic=clinic, name="Safe")
        cart = services.location_create(actor=nurse, clinic=clinic, name="Cart", kind="cart")
        row = receive(nurse, product, safe, "K1", 10)
        return {"product": product, "safe": safe, "cart": cart, "lot": row.lot, "receipt": row}


def receive(actor: Any, product: Any, location: Any, lot: str, containers: int, **kw: Any) -> Any:
    data: dict[str, Any] = {
        "expires_at": EXPIRES,
        "supplier_name": "Henry Schein",
        "supplier_address": "135 Duryea Rd, Melville NY",
        "supplier_dea_number": "RH0123456",
        "invoice_reference": "INV-2026-001",
    }
    data.update(kw)
    return services.stock_receive(
        actor=actor,
        product=product,
        location=location,
        lot_number=lot,
        containers=containers,
        **data,
    )


@pytest.fixture
def patient(nurse: Any, prescriber: Any) -> Any:
    return make_patient(prescriber, address="12 Elm St, Springfield IL 62701")


def new_administration() -> uuid.UUID:
    return uuid.uuid4()
