"""JSON API of the set-up area (mounted at /api/v1/setup/): the same services as the screens.

Errors name the field at fault ({"detail", "errors": [{"field", "message"}]}) and write nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Router, Schema, Status

from ketaclinic.accounts import site_setup, staffing
from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.chairs import ChairCapability
from ketaclinic.accounts.models import Chair, Clinic, Membership, RoleChange
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound
from ketaclinic.inventory import services as inventory
from ketaclinic.inventory.models import Product, StorageLocation
from ketaclinic.setup import selectors, services

router = Router(tags=["setup"])

RoleName = Literal[tuple(r.value for r in Role)]  # type: ignore[valid-type]
CapabilityName = Literal[tuple(c.value for c in ChairCapability)]  # type: ignore[valid-type]


def _actor(request: ActorRequest, capability: Cap = Cap.SETUP_MANAGE) -> Actor:
    actor = request.auth
    actor.require(capability)
    return actor


def _get(model: type[Any], public_id: uuid.UUID, what: str, **filters: Any) -> Any:
    found = model.objects.filter(public_id=public_id, **filters).first()
    if found is None:
        raise NotFound(f"No such {what}.")
    return found


# --- clinics ------------------------------------------------------------------------------------


class ClinicOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    name: str
    time_zone: str
    address: str
    phone: str
    rems_setting_id: str
    rems_certified_on: date | None
    on_call_clinician: str | None = None
    escalation_phone: str

    @staticmethod
    def resolve_on_call_clinician(clinic: Clinic) -> str | None:
        return clinic.on_call_clinician.username if clinic.on_call_clinician else None


class ClinicIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    time_zone: str = Field("UTC", max_length=64, description="IANA time zone, e.g. America/Chicago")
    address: str = Field("", max_length=2000)
    phone: str = Field("", max_length=40)
    rems_setting_id: str = Field("", max_length=40)
    rems_certified_on: date | None = None
    on_call_clinician: str | None = Field(None, max_length=150, description="a username")
    escalation_phone: str = Field("", max_length=40)


class ClinicPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    time_zone: str | None = Field(None, max_length=64)
    address: str | None = Field(None, max_length=2000)
    phone: str | None = Field(None, max_length=40)
    rems_setting_id: str | None = Field(None, max_length=40)
    rems_certified_on: date | None = None
    on_call_clinician: str | None = Field(None, max_length=150)
    escalation_phone: str | None = Field(None, max_length=40)


@router.get("/setup/clinics", response={200: list[ClinicOut], **ERROR_RESPONSES})
def clinic_list(request: ActorRequest) -> Any:
    _actor(request)
    return list(selectors.clinics())


@router.post("/setup/clinics", response={201: ClinicOut, **ERROR_RESPONSES})
def clinic_create(request: ActorRequest, payload: ClinicIn) -> Any:
    actor = _actor(request)
    return Status(201, site_setup.clinic_create(actor=actor, data=payload.dict()))


@router.patch("/setup/clinics/{clinic_id}", response={200: ClinicOut, **ERROR_RESPONSES})
def clinic_update(request: ActorRequest, clinic_id: uuid.UUID, payload: ClinicPatch) -> Any:
    actor = _actor(request)
    clinic = _get(Clinic, clinic_id, "clinic")
    data = payload.dict(exclude_unset=True)
    return site_setup.clinic_update(actor=actor, clinic=clinic, data=data)


# --- chairs -------------------------------------------------------------------------------------


class ChairOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    clinic_id: uuid.UUID = Field(..., alias="clinic.public_id")
    number: int
    name: str
    capabilities: list[str]
    is_active: bool


class ChairIn(Schema):
    clinic_id: uuid.UUID
    number: int = Field(..., ge=1, le=999)
    name: str = Field("", max_length=60)
    capabilities: list[CapabilityName] = Field(..., min_length=1)  # type: ignore[valid-type]


class ChairPatch(Schema):
    name: str | None = Field(None, max_length=60)
    capabilities: list[CapabilityName] | None = Field(None, min_length=1)  # type: ignore[valid-type]
    is_active: bool | None = None


@router.get("/setup/chairs", response={200: list[ChairOut], **ERROR_RESPONSES})
def chair_list(request: ActorRequest) -> Any:
    _actor(request)
    return list(selectors.chairs())


@router.post("/setup/chairs", response={201: ChairOut, **ERROR_RESPONSES})
def chair_create(request: ActorRequest, payload: ChairIn) -> Any:
    actor = _actor(request)
    clinic = Clinic.objects.filter(public_id=payload.clinic_id).first()
    if clinic is None:
        raise NotFound.for_field("clinic_id", "No such clinic.")
    chair = site_setup.chair_create(
        actor=actor,
        clinic=clinic,
        number=payload.number,
        name=payload.name,
        capabilities=payload.capabilities,
    )
    return Status(201, chair)


@router.patch("/setup/chairs/{chair_id}", response={200: ChairOut, **ERROR_RESPONSES})
def chair_update(request: ActorRequest, chair_id: uuid.UUID, payload: ChairPatch) -> Any:
    actor = _actor(request)
    chair = _get(Chair, chair_id, "chair")
    return site_setup.chair_update(actor=actor, chair=chair, **payload.dict(exclude_unset=True))


# --- products and storage locations ---------------------------------------------------------------


class ProductOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    code: str
    display_name: str
    substance: str
    dosage_form: str
    dose_unit: str
    mg_per_unit: Decimal
    units_per_container: Decimal
    strength: str = Field(..., alias="strength_label")
    ndc: str
    compounded: bool
    is_active: bool


class ProductIn(Schema):
    form: Literal["vial", "troche", "esketamine_device"]
    strength_mg: Decimal | None = Field(
        None, description="mg per mL (vial), per troche, or 28 (esketamine device)"
    )
    units_per_container: Decimal | None = Field(
        None, description="mL per vial, or troches per container"
    )
    ndc: str = Field("", max_length=20)


class ProductPatch(Schema):
    is_active: bool


@router.get("/setup/products", response={200: list[ProductOut], **ERROR_RESPONSES})
def product_list(request: ActorRequest) -> Any:
    _actor(request)
    return list(selectors.products())


@router.post("/setup/products", response={201: ProductOut, **ERROR_RESPONSES})
def product_create(request: ActorRequest, payload: ProductIn) -> Any:
    actor = _actor(request)
    return Status(201, inventory.product_define(actor=actor, **payload.model_dump()))


@router.patch("/setup/products/{product_id}", response={200: ProductOut, **ERROR_RESPONSES})
def product_update(request: ActorRequest, product_id: uuid.UUID, payload: ProductPatch) -> Any:
    actor = _actor(request)
    product = _get(Product, product_id, "product")
    return inventory.product_set_active(actor=actor, product=product, is_active=payload.is_active)


class LocationOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    clinic_id: uuid.UUID = Field(..., alias="clinic.public_id")
    name: str
    kind: str
    dea_registration_number: str
    is_active: bool


class LocationIn(Schema):
    clinic_id: uuid.UUID
    name: str = Field(..., min_length=1, max_length=100)
    kind: Literal["safe", "cart", "other"] = "safe"
    dea_registration_number: str = Field("", max_length=20)


class LocationPatch(Schema):
    is_active: bool = Field(..., description="false retires an empty location; true brings it back")


@router.get("/setup/locations", response={200: list[LocationOut], **ERROR_RESPONSES})
def location_list(request: ActorRequest) -> Any:
    _actor(request)
    return list(selectors.locations())


@router.post("/setup/locations", response={201: LocationOut, **ERROR_RESPONSES})
def location_create(request: ActorRequest, payload: LocationIn) -> Any:
    actor = _actor(request)
    clinic = Clinic.objects.filter(public_id=payload.clinic_id).first()
    if clinic is None:
        raise NotFound.for_field("clinic_id", "No such clinic.")
    location = inventory.location_create(
        actor=actor,
        clinic=clinic,
        name=payload.name,
        kind=payload.kind,
        dea_registration_number=payload.dea_registration_number,
    )
    return Status(201, StorageLocation.objects.select_related("clinic").get(pk=location.pk))


@router.patch("/setup/locations/{location_id}", response={200: LocationOut, **ERROR_RESPONSES})
def location_update(request: ActorRequest, location_id: uuid.UUID, payload: LocationPatch) -> Any:
    actor = _actor(request)
    location = _get(StorageLocation, location_id, "location")
    inventory.location_set_active(actor=actor, location=location, is_active=payload.is_active)
    return StorageLocation.objects.select_related("clinic").get(pk=location.pk)


# --- staff and role changes ---------------------------------------------------------------------


class StaffOut(Schema):
    id: uuid.UUID = Field(..., alias="user.public_id")
    username: str = Field(..., alias="user.username")
    name: str = Field(..., alias="user.display_name")
    role: str
    is_active: bool
    home_clinic: str | None = None

    @staticmethod
    def resolve_home_clinic(membership: Membership) -> str | None:
        return membership.home_clinic.name if membership.home_clinic else None


class RoleChangeOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    username: str = Field(..., alias="membership.user.username")
    from_role: str
    to_role: str
    status: str
    reason: str
    requested_by: str | None = None
    requested_at: datetime
    decided_at: datetime | None

    @staticmethod
    def resolve_requested_by(change: RoleChange) -> str | None:
        return change.requested_by.username if change.requested_by else None


class StaffIn(Schema):
    username: str = Field(..., min_length=1, max_length=150)
    role: RoleName  # type: ignore[valid-type]
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    email: str = Field("", max_length=254)
    home_clinic_id: uuid.UUID | None = None
    reason: str = Field("", max_length=500)


class NewStaffOut(Schema):
    staff: StaffOut
    password: str = Field(..., description="shown once; never stored in clear")
    totp_secret: str = Field(..., description="base32; shown once")
    totp_url: str = Field(..., description="otpauth:// URL for an authenticator app; shown once")
    role_change: RoleChangeOut
    awaiting_approval: bool


class RoleIn(Schema):
    role: RoleName  # type: ignore[valid-type]
    reason: str = Field("", max_length=500)


class DeactivateIn(Schema):
    reason: str = Field("", max_length=500)


def _membership(actor: Any, user_id: uuid.UUID) -> Membership:
    membership = (
        Membership.objects.select_related("user", "home_clinic")
        .filter(organization=actor.organization, user__public_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such staff member.")
    return membership


@router.get("/setup/staff", response={200: list[StaffOut], **ERROR_RESPONSES})
def staff_list(request: ActorRequest) -> Any:
    actor = _actor(request, Cap.STAFF_MANAGE)
    return list(selectors.staff(actor))


@router.post("/setup/staff", response={201: NewStaffOut, **ERROR_RESPONSES})
def staff_create(request: ActorRequest, payload: StaffIn) -> Any:
    actor = _actor(request, Cap.STAFF_MANAGE)
    home = None
    if payload.home_clinic_id is not None:
        home = Clinic.objects.filter(public_id=payload.home_clinic_id).first()
        if home is None:
            raise NotFound.for_field("home_clinic_id", "No such clinic.")
    created = staffing.staff_create(
        actor=actor,
        username=payload.username,
        role=payload.role,
        first_name=payload.first_name,
        last_name=payload.last_name,
        email=payload.email,
        home_clinic=home,
        reason=payload.reason,
    )
    return Status(
        201,
        {
            "staff": created.membership,
            "password": created.password,
            "totp_secret": created.totp_secret,
            "totp_url": created.totp_url,
            "role_change": created.change,
            "awaiting_approval": created.pending,
        },
    )


@router.post("/setup/staff/{user_id}/role", response={200: RoleChangeOut, **ERROR_RESPONSES})
def staff_role(request: ActorRequest, user_id: uuid.UUID, payload: RoleIn) -> Any:
    actor = _actor(request, Cap.STAFF_MANAGE)
    membership = _membership(actor, user_id)
    return staffing.staff_role_change(
        actor=actor, membership=membership, role=payload.role, reason=payload.reason
    )


@router.post("/setup/staff/{user_id}/deactivate", response={200: StaffOut, **ERROR_RESPONSES})
def staff_deactivate(request: ActorRequest, user_id: uuid.UUID, payload: DeactivateIn) -> Any:
    actor = _actor(request, Cap.STAFF_MANAGE)
    membership = _membership(actor, user_id)
    return staffing.staff_deactivate(actor=actor, membership=membership, reason=payload.reason)


@router.get("/setup/role-changes", response={200: list[RoleChangeOut], **ERROR_RESPONSES})
def role_change_list(request: ActorRequest, pending: bool = True) -> Any:
    _actor(request, Cap.STAFF_MANAGE)
    if pending:
        return list(selectors.role_changes_pending())
    return list(RoleChange.objects.select_related("membership__user", "requested_by")[:500])


def _decide(request: ActorRequest, change_id: uuid.UUID, approve: bool) -> Any:
    actor = _actor(request, Cap.STAFF_MANAGE)
    change = _get(RoleChange, change_id, "role change")
    return staffing.role_change_decide(actor=actor, change=change, approve=approve)


@router.post(
    "/setup/role-changes/{change_id}/approve", response={200: RoleChangeOut, **ERROR_RESPONSES}
)
def role_change_approve(request: ActorRequest, change_id: uuid.UUID) -> Any:
    return _decide(request, change_id, True)


@router.post(
    "/setup/role-changes/{change_id}/reject", response={200: RoleChangeOut, **ERROR_RESPONSES}
)
def role_change_reject(request: ActorRequest, change_id: uuid.UUID) -> Any:
    return _decide(request, change_id, False)


# --- escalation and the first-run checklist --------------------------------------------------------


class EscalationOut(Schema):
    policy_version: int = Field(..., alias="version")
    escalation_minutes: int
    escalation_role: str


class EscalationIn(Schema):
    escalation_minutes: int = Field(..., ge=1, le=1440)
    escalation_role: RoleName  # type: ignore[valid-type]


@router.get("/setup/escalation", response={200: EscalationOut, **ERROR_RESPONSES})
def escalation_get(request: ActorRequest) -> Any:
    return services.escalation_current(_actor(request))


@router.put("/setup/escalation", response={200: EscalationOut, **ERROR_RESPONSES})
def escalation_put(request: ActorRequest, payload: EscalationIn) -> Any:
    actor = _actor(request)
    return services.escalation_update(
        actor=actor,
        escalation_minutes=payload.escalation_minutes,
        escalation_role=payload.escalation_role,
    )


class ChecklistItemOut(Schema):
    """One item of the clinic admin's set-up checklist (their Today page shows the same)."""

    key: str
    label: str
    done: bool
    hint: str
    required: bool  # False: the clinic runs on built-in defaults until it is done
    screen: str  # the path of the screen where it is done

    @staticmethod
    def resolve_screen(item: Any) -> str:
        from django.urls import reverse

        return reverse(item.url_name)


@router.get("/setup/checklist", response={200: list[ChecklistItemOut], **ERROR_RESPONSES})
def checklist(request: ActorRequest) -> Any:
    return selectors.first_run_checklist(_actor(request))


# --- patient portal: sign-in links and crisis numbers ---------------------------------------------


class PatientPagesIn(Schema):
    sign_in_links_allowed: bool
    crisis_line_number: str = Field(..., max_length=20)
    crisis_line_name: str = Field(..., max_length=80)
    crisis_line_name_es: str = Field("", max_length=80)
    crisis_line_takes_texts: bool
    emergency_number: str = Field(..., max_length=20)
    note: str = Field("", max_length=2000)


class PatientPagesOut(PatientPagesIn):
    version: int
    sign_in_link_minutes: int


def _patient_pages_out(policy: Any) -> dict[str, Any]:
    from ketaclinic.consent.sign_in_links import SIGN_IN_TTL
    from ketaclinic.messaging.patient_pages import FIELDS

    return {
        "version": policy.version,
        "note": policy.note,
        "sign_in_link_minutes": int(SIGN_IN_TTL.total_seconds() // 60),
        **{field: getattr(policy, field) for field in FIELDS},
    }


@router.get("/setup/patient-portal", response={200: PatientPagesOut, **ERROR_RESPONSES})
def patient_pages_get(request: ActorRequest) -> Any:
    """Whether patients may sign in with an e-mailed link, and the crisis numbers they see."""
    from ketaclinic.messaging.patient_pages import patient_pages_policy

    return _patient_pages_out(patient_pages_policy(_actor(request).organization))


@router.put("/setup/patient-portal", response={200: PatientPagesOut, **ERROR_RESPONSES})
def patient_pages_put(request: ActorRequest, payload: PatientPagesIn) -> Any:
    """Publish a new version (audited); numbers are checked as on the set-up screen."""
    from ketaclinic.messaging.patient_pages import patient_pages_policy_publish

    policy = patient_pages_policy_publish(actor=_actor(request), **payload.model_dump())
    return _patient_pages_out(policy)
