"""A clinic admin's set-up of sites: clinics (time zone, contact, REMS certification, on-call
clinician) and their chairs or rooms with what each can host (issue 10 item 4).

Each service is one transaction with a permission check and one audit event naming what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.chairs import ChairCapability
from ketaclinic.accounts.models import Chair, Clinic, Membership, User
from ketaclinic.accounts.roles import Cap, role_can
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, NotFound, ValidationFailed

CLINIC_FIELDS = (
    "name",
    "time_zone",
    "address",
    "phone",
    "rems_setting_id",
    "rems_certified_on",
    "on_call_clinician",
    "escalation_phone",
)


def _full_clean(obj: Clinic | Chair, what: str, exclude: Iterable[str] = ()) -> None:
    try:
        obj.full_clean(exclude=["organization", "clinic", *exclude], validate_unique=False)
    except ValidationError as exc:
        raise ValidationFailed(
            f"The {what} is not valid.",
            [FieldError(f, "; ".join(m)) for f, m in exc.message_dict.items()],
        ) from None


def _on_call(actor: Actor, username: Any) -> User | None:
    """The on-call clinician: an active member of this organization who answers safety alerts."""
    if username in (None, ""):
        return None
    if isinstance(username, User):
        username = username.username
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=actor.organization, user__username=str(username), is_active=True)
        .first()
    )
    if membership is None:
        raise ValidationFailed.for_field(
            "on_call_clinician", f"{username!r} is not an active member of this organization."
        )
    if not role_can(membership.role, Cap.ALERT_ACKNOWLEDGE):
        raise ValidationFailed.for_field(
            "on_call_clinician",
            f"{membership.user.display_name} ({membership.get_role_display()}) cannot answer "
            "safety alerts; choose a prescriber or a nurse.",
        )
    return membership.user


def _check_rems(clinic: Clinic) -> None:
    if clinic.rems_certified_on and not clinic.rems_setting_id:
        raise ValidationFailed.for_field(
            "rems_setting_id", "Enter the REMS healthcare setting ID the certification belongs to."
        )
    if clinic.rems_certified_on and clinic.rems_certified_on > clock.today_in(clinic.time_zone):
        raise ValidationFailed.for_field(
            "rems_certified_on", "The certification date cannot be in the future."
        )


def _apply(actor: Actor, clinic: Clinic, data: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(data) - set(CLINIC_FIELDS))
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", [FieldError(f, "This field is not accepted.") for f in unknown]
        )
    changed: dict[str, str] = {}
    for field, value in data.items():
        if field == "on_call_clinician":
            value = _on_call(actor, value)
        elif field == "rems_certified_on":
            value = value or None
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    raise ValidationFailed.for_field(field, "Enter a date (YYYY-MM-DD).") from None
        elif isinstance(value, str):
            value = value.strip()
        elif value is None:
            value = ""
        if getattr(clinic, field) != value:
            setattr(clinic, field, value)
            changed[field] = str(getattr(value, "username", value) or "")
    _full_clean(clinic, "clinic")
    _check_rems(clinic)
    return changed


def clinic_create(*, actor: Actor, data: Mapping[str, Any]) -> Clinic:
    actor.require(Cap.SETUP_MANAGE)
    clinic = Clinic(organization=actor.organization)
    changed = _apply(actor, clinic, data)
    with transaction.atomic():
        if Clinic.objects.filter(organization=actor.organization, name=clinic.name).exists():
            raise Conflict.for_field("name", f"There already is a clinic named {clinic.name!r}.")
        clinic.save()
        audit_record(actor=actor, action="accounts.clinic.created", obj=clinic, detail=changed)
    return clinic


def clinic_update(*, actor: Actor, clinic: Clinic, data: Mapping[str, Any]) -> Clinic:
    """Change a clinic's details. Only the fields given change; the event lists them."""
    actor.require(Cap.SETUP_MANAGE)
    if clinic.organization_id != actor.organization.pk:
        raise NotFound("No such clinic.")
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
        changed = _apply(actor, clinic, data)
        if not changed:
            return clinic
        duplicate = Clinic.objects.filter(organization=actor.organization, name=clinic.name)
        if "name" in changed and duplicate.exclude(pk=clinic.pk).exists():
            raise Conflict.for_field("name", f"There already is a clinic named {clinic.name!r}.")
        clinic.save()
        audit_record(actor=actor, action="accounts.clinic.updated", obj=clinic, detail=changed)
    return clinic


def _capabilities(values: Iterable[str]) -> list[str]:
    chosen = []
    for value in values:
        try:
            chosen.append(ChairCapability(value).value)
        except ValueError:
            allowed = ", ".join(c.value for c in ChairCapability)
            raise ValidationFailed.for_field(
                "capabilities", f"Unknown capability {value!r}; choose from: {allowed}."
            ) from None
    if not chosen:
        raise ValidationFailed.for_field(
            "capabilities", "Say what the chair can host (at least one kind of session)."
        )
    # Stored in the catalogue's order so two saves of the same choice compare equal.
    return [c.value for c in ChairCapability if c.value in chosen]


def chair_create(
    *, actor: Actor, clinic: Clinic, number: int, name: str = "", capabilities: Iterable[str]
) -> Chair:
    actor.require(Cap.SETUP_MANAGE)
    if clinic.organization_id != actor.organization.pk:
        raise NotFound.for_field("clinic", "No such clinic.")
    chair = Chair(
        organization=actor.organization,
        clinic=clinic,
        number=number,
        name=(name or "").strip(),
        capabilities=_capabilities(capabilities),
    )
    _full_clean(chair, "chair")
    if number < 1:
        raise ValidationFailed.for_field("number", "Chairs are numbered from 1.")
    try:
        with transaction.atomic():
            chair.save()
            audit_record(
                actor=actor,
                action="accounts.chair.created",
                obj=chair,
                detail={
                    "clinic": clinic.name,
                    "number": number,
                    "capabilities": chair.capabilities,
                },
            )
    except IntegrityError:
        raise Conflict.for_field("number", f"{clinic.name} already has a chair {number}.") from None
    return chair


def chair_update(
    *,
    actor: Actor,
    chair: Chair,
    name: str | None = None,
    capabilities: Iterable[str] | None = None,
    is_active: bool | None = None,
) -> Chair:
    """Rename a chair, change what it can host, or take it out of (or back into) service."""
    actor.require(Cap.SETUP_MANAGE)
    if chair.organization_id != actor.organization.pk:
        raise NotFound("No such chair.")
    with transaction.atomic():
        chair = Chair.objects.select_for_update().get(pk=chair.pk)
        changed: dict[str, Any] = {}
        if name is not None and name.strip() != chair.name:
            chair.name = changed["name"] = name.strip()
        if capabilities is not None:
            chosen = _capabilities(capabilities)
            if chosen != list(chair.capabilities):
                chair.capabilities = changed["capabilities"] = chosen
        if is_active is not None and is_active != chair.is_active:
            chair.is_active = changed["is_active"] = is_active
        if not changed:
            return chair
        _full_clean(chair, "chair")
        chair.save()
        action = "accounts.chair.updated"
        if set(changed) == {"is_active"}:
            action = "accounts.chair.reactivated" if is_active else "accounts.chair.deactivated"
        audit_record(
            actor=actor, action=action, obj=chair, detail={"number": chair.number, **changed}
        )
    return chair
