"""Reads for the set-up area: what a clinic still lacks before its first session, and the lists
the set-up screens and the JSON API show."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.chairs import ChairCapability
from ketaclinic.accounts.models import Chair, Clinic, Membership, RoleChange
from ketaclinic.accounts.roles import Role
from ketaclinic.consent.models import ConsentTemplateVersion
from ketaclinic.inventory.models import LedgerRow, Product, StorageLocation
from ketaclinic.protocols.models import ProtocolVersion, SafetyPolicyVersion
from ketaclinic.scheduling.models import StaffHours
from ketaclinic.screening.models import ScreeningPolicyVersion


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    label: str
    done: bool
    hint: str  # what to do when it is not done
    url_name: str  # the screen where it is done
    # False: the clinic can run without it (built-in defaults), but should see to it.
    required: bool = True


def clinics() -> QuerySet[Clinic]:
    return Clinic.objects.select_related("on_call_clinician").order_by("name")


def chairs() -> QuerySet[Chair]:
    return Chair.objects.select_related("clinic").order_by("clinic__name", "number")


def products() -> QuerySet[Product]:
    return Product.objects.order_by("-is_active", "display_name")


def locations() -> QuerySet[StorageLocation]:
    return StorageLocation.objects.select_related("clinic").order_by("clinic__name", "name")


def staff(actor: Actor) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=actor.organization)
        .select_related("user", "home_clinic")
        .order_by("-is_active", "user__username")
    )


def role_changes_pending() -> QuerySet[RoleChange]:
    return (
        RoleChange.objects.filter(status=RoleChange.Status.PENDING)
        .select_related("membership__user", "requested_by")
        .order_by("requested_at")
    )


def _offers_esketamine() -> bool:
    return (
        Product.objects.filter(is_active=True, substance__startswith="esketamine").exists()
        # JSON containment is not portable to SQLite; a clinic has a handful of chairs.
        or any(
            ChairCapability.ESKETAMINE_OBSERVATION.value in chair.capabilities
            for chair in Chair.objects.filter(is_active=True).only("capabilities")
        )
    )


def first_run_checklist(actor: Actor) -> list[ChecklistItem]:
    """What is still missing before a first session, in the order a new clinic does it."""
    active_roles = set(
        Membership.objects.filter(organization=actor.organization, is_active=True).values_list(
            "role", flat=True
        )
    )
    clinic_rows = list(Clinic.objects.all())
    items = [
        ChecklistItem(
            "chairs",
            "A treatment chair or room, with what it can host",
            Chair.objects.filter(is_active=True).exists(),
            "Add the chairs and say which routes each can host.",
            "setup:chairs",
        ),
        ChecklistItem(
            "products",
            "A controlled-substance product on the stock list",
            Product.objects.filter(is_active=True).exists(),
            "Add the vials, troches or esketamine devices the clinic stocks.",
            "setup:products",
        ),
        ChecklistItem(
            "location",
            "A storage location (safe or cart)",
            StorageLocation.objects.exists(),
            "Add the safe where stock is kept.",
            "setup:locations",
        ),
        ChecklistItem(
            "stock",
            "Stock received",
            LedgerRow.objects.filter(kind="receipt").exists(),
            "A nurse or prescriber receives the first delivery under Controlled substances.",
            "inventory:stock",
        ),
        ChecklistItem(
            "prescriber",
            "A prescriber",
            Role.PRESCRIBER.value in active_roles,
            "Create a prescriber's account (a second clinic admin approves it).",
            "setup:staff",
        ),
        ChecklistItem(
            "nurse",
            "A nurse",
            Role.NURSE.value in active_roles,
            "Create a nurse's account.",
            "setup:staff",
        ),
        ChecklistItem(
            "on_call",
            "An on-call clinician for safety alerts",
            any(c.on_call_clinician_id for c in clinic_rows),
            "Name the clinician who answers escalated alerts.",
            "setup:clinics",
        ),
        ChecklistItem(
            "consent",
            "A consent template published",
            ConsentTemplateVersion.objects.exists(),
            "Publish the treatment consent texts.",
            "consent:templates",
        ),
        ChecklistItem(
            "protocol",
            "A treatment protocol published",
            ProtocolVersion.objects.filter(status=ProtocolVersion.Status.PUBLISHED).exists(),
            "Publish the protocols the clinic follows.",
            "protocols:list",
        ),
        ChecklistItem(
            "screening_policy",
            "The clinic's screening policy reviewed and published",
            ScreeningPolicyVersion.objects.exists(),
            "Until one is published, screening uses the built-in defaults; review and publish.",
            "screening:policy",
            required=False,
        ),
        ChecklistItem(
            "safety_policy",
            "The session safety policy reviewed and published",
            SafetyPolicyVersion.objects.exists(),
            "Until one is published, sessions use the built-in defaults; review and publish.",
            "protocols:safety-policy",
            required=False,
        ),
        ChecklistItem(
            "hours",
            "Working hours of the clinicians and nurses",
            StaffHours.objects.exists(),
            "Visits are offered only inside a clinician's working hours, and only nurses at work"
            " count toward the monitoring ratio; set each one's regular week.",
            "scheduling:hours",
            required=False,
        ),
        ChecklistItem(
            "contact",
            "The clinic's phone number (patients see it in the portal and in messages)",
            all(c.phone for c in clinic_rows) and bool(clinic_rows),
            "Enter each clinic's phone number.",
            "setup:clinics",
            required=False,
        ),
    ]
    if _offers_esketamine():
        items.append(
            ChecklistItem(
                "rems",
                "REMS certification of the clinic (esketamine is offered)",
                any(c.rems_setting_id and c.rems_certified_on for c in clinic_rows),
                "Enter the clinic's REMS healthcare setting ID and certification date.",
                "setup:clinics",
            )
        )
    return items
