"""The organization's stock list as a clinic admin sets it up: vials, compounded troches and
esketamine devices as their labels read (strength, fill, NDC), and taking a product off the list.

Strengths and counts come from the product's label, never from this module (troches are
compounded: their strength is the pharmacy's). Esketamine is one marketed presentation (28 mg
devices, NDC 50458-028, inventory.products), so it is registered from the catalogue as it is.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from ketaclinic.inventory.models import Product
from ketaclinic.inventory.products import (
    ESKETAMINE_28MG_NASAL_DEVICE,
    STANDARD_CATALOG,
    compounded_troche,
    ketamine_vial,
    ndc_problem,
)
from ketaclinic.inventory.products import Product as CatalogProduct
from ketaclinic.inventory.services._common import _require_any, product_register

PRODUCT_FORMS = {
    "vial": "Ketamine injection vial",
    "troche": "Ketamine troche or sublingual tablet (compounded)",
    "esketamine_device": "Esketamine (SPRAVATO) 28 mg nasal device",
}


def _positive(value: Any, field: str, what: str, *, whole: bool = False) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed.for_field(field, f"Enter the {what} as a number.") from None
    if not number.is_finite() or number <= 0:
        raise ValidationFailed.for_field(field, f"The {what} must be more than 0.")
    if number > 100000 or number.as_tuple().exponent < -3:  # type: ignore[operator]
        raise ValidationFailed.for_field(field, f"Check the {what}: at most 3 decimals.")
    if whole and number != number.to_integral_value():
        raise ValidationFailed.for_field(field, f"The {what} is a whole number.")
    return number.normalize() if number == number.to_integral_value() else number


def product_spec(
    *,
    form: str,
    strength_mg: Any = None,
    units_per_container: Any = None,
    ndc: str = "",
) -> CatalogProduct:
    """The product a label describes, checked field by field (each error names its field)."""
    ndc = (ndc or "").strip()
    if form not in PRODUCT_FORMS:
        choices = ", ".join(PRODUCT_FORMS)
        raise ValidationFailed.for_field("form", f"Choose a form of product: {choices}.")
    if ndc and (problem := ndc_problem(ndc)):
        raise ValidationFailed.for_field("ndc", problem)
    if form == "esketamine_device":
        spravato = ESKETAMINE_28MG_NASAL_DEVICE
        if strength_mg not in (None, "") and Decimal(str(strength_mg)) != spravato.mg_per_unit:
            raise ValidationFailed.for_field(
                "strength_mg", "An esketamine nasal device holds 28 mg; no other is marketed."
            )
        if ndc and not ndc.startswith(spravato.ndc or ""):
            raise ValidationFailed.for_field(
                "ndc", f"SPRAVATO devices carry NDC {spravato.ndc} (kits -02 and -03)."
            )
        return spravato
    errors = []
    strength = count = None
    try:
        strength = _positive(strength_mg, "strength_mg", "strength")
    except ValidationFailed as error:
        errors += error.errors
    try:
        count = _positive(
            units_per_container,
            "units_per_container",
            "troches per container" if form == "troche" else "volume per vial (mL)",
            whole=form == "troche",
        )
    except ValidationFailed as error:
        errors += error.errors
    if form == "troche" and ndc:
        errors.append(FieldError("ndc", "Compounded troches carry no NDC; leave it empty."))
    if errors:
        raise ValidationFailed("The product is not valid.", errors)
    assert strength is not None
    assert count is not None
    if form == "troche":
        return compounded_troche(strength_mg=strength, troches_per_container=int(count))
    return ketamine_vial(mg_per_ml=strength, ml=count, ndc=ndc)


def product_define(
    *,
    actor: Actor,
    form: str,
    strength_mg: Any = None,
    units_per_container: Any = None,
    ndc: str = "",
) -> Product:
    """Add a product to the stock list from its label. Refused when it is already listed."""
    _require_any(actor, Cap.SETUP_MANAGE, Cap.INVENTORY_RECEIVE)
    spec = product_spec(
        form=form, strength_mg=strength_mg, units_per_container=units_per_container, ndc=ndc
    )
    with transaction.atomic():
        existing = Product.objects.filter(organization=actor.organization, code=spec.product_id)
        if existing.exists():
            raise Conflict.for_field("form", f"{spec.display_name} is already on the stock list.")
        standard = STANDARD_CATALOG.get(spec.product_id)
        return product_register(
            actor=actor, code=spec.product_id, catalog_product=None if standard else spec
        )


def product_set_active(*, actor: Actor, product: Product, is_active: bool) -> Product:
    """Take a product off the stock list (or put it back). Its ledger history stays."""
    _require_any(actor, Cap.SETUP_MANAGE, Cap.INVENTORY_RECEIVE)
    if product.organization_id != actor.organization.pk:
        raise NotFound("No such product.")
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        if product.is_active == is_active:
            return product
        product.is_active = is_active
        product.save(update_fields=["is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="inventory.product.reactivated" if is_active else "inventory.product.retired",
            obj=product,
            detail={"code": product.code},
        )
    return product
