"""Tenants (organizations), sites (clinics), users, role memberships, API tokens and the audit trail."""

from __future__ import annotations

import functools
import uuid
import zoneinfo
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice as _OtpTOTPDevice
from django_scopes import ScopedManager

from ketaclinic.accounts import totp
from ketaclinic.accounts.roles import ROLE_LABELS, Role
from ketaclinic.core.models import PublicIdModel, TimeStamped


class Organization(PublicIdModel):
    """A tenant: one clinic business or a network of clinics. Every clinical row belongs to one."""

    name = models.CharField(max_length=200)
    # Prescribers, nurses and therapists open only the charts of patients whose care team they
    # are on; any other chart by breaking the glass (patients.access). Off: everyone in the
    # organization whose role may see charts sees every chart, as before.
    care_team_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA zones installed, read once per process: zoneinfo walks every tzdata file on each
    call (about 6 ms of CPU, paid by every organization or clinic created or edited). The set
    changes only with a new tzdata package, which a restart picks up."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in known_time_zones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. America/Chicago)")


class Clinic(PublicIdModel):
    """A site where patients are seen, with its own local time zone and chairs."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="clinics")
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    # The SPRAVATO REMS certifies each healthcare setting before it may dispense or administer
    # esketamine; blank means this clinic is not (yet) certified.
    rems_setting_id = models.CharField("REMS healthcare setting ID", max_length=40, blank=True)
    rems_certified_on = models.DateField("REMS certified on", null=True, blank=True)
    # Who answers when a safety alert is escalated: the clinician on call for this clinic and a
    # number to reach them (the escalation delay and role are in the measure policy).
    on_call_clinician = models.ForeignKey(
        "User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalation_phone = models.CharField(max_length=40, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="clinic_name_unique_in_org"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Chair(PublicIdModel):
    """A treatment chair or room of a clinic, numbered as staff call it ("chair 2"), with what it
    can host (accounts.chairs). Sessions name their chair by this number."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="chair_set")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=60, blank=True)
    capabilities = models.JSONField(default=list)  # ChairCapability values
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["clinic", "number"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "number"], name="chair_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="chair_number_positive"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"Chair {self.number}" + (f" ({self.name})" if self.name else "")


class User(AbstractUser):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Membership(TimeStamped):
    """A user's role in one organization. Capabilities come from the role (accounts.roles)."""

    ROLE_CHOICES: ClassVar[list[tuple[str, str]]] = [(r.value, ROLE_LABELS[r]) for r in Role]

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=ROLE_CHOICES)
    home_clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.SET_NULL)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.username} @ {self.organization.name} ({self.role})"


class RoleChange(PublicIdModel):
    """A grant or change of a staff member's role, as requested and (for privileged roles) approved.

    Separation of duties (accounts.staffing): nobody requests or approves a change of their own
    role, and a privileged role takes effect only when a second clinic admin approves it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="changes")
    from_role = models.CharField(max_length=20, blank=True)  # blank: a new account
    to_role = models.CharField(max_length=20, choices=Membership.ROLE_CHOICES)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership"],
                condition=models.Q(status="pending"),
                name="one_pending_role_change",
            )
        ]

    def __str__(self) -> str:
        return f"{self.membership.user.username}: {self.from_role or 'new'} -> {self.to_role}"


class ApiToken(TimeStamped):
    """A bearer token for the JSON and FHIR APIs. Only a SHA-256 of the secret is stored.

    Every token expires (the date is set when it is issued, docs/sources/security.md) and can be
    revoked by its owner or a clinic admin; an expired or revoked token answers 401 at once.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.membership.user.username})"

    def state_at(self, now: Any) -> str:
        """active, expired or revoked, as the token list shows it."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


class EncryptedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A staff member's authenticator whose shared secret is encrypted at rest (accounts.totp).

    The fields are django-otp's TOTPDevice's, except the secret (`sealed_key`, a Fernet token of
    the hex key); verification and the enrolment URL are django-otp's own code."""

    # Annotated because django-otp's Device ships no types, so the plugin cannot infer them.
    sealed_key: models.TextField[Any, str] = models.TextField()
    step: models.PositiveSmallIntegerField[Any, int] = models.PositiveSmallIntegerField(default=30)
    t0: models.BigIntegerField[Any, int] = models.BigIntegerField(default=0)
    digits: models.PositiveSmallIntegerField[Any, int] = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6
    )
    tolerance: models.PositiveSmallIntegerField[Any, int] = models.PositiveSmallIntegerField(
        default=1
    )
    drift: models.SmallIntegerField[Any, int] = models.SmallIntegerField(default=0)
    last_t: models.BigIntegerField[Any, int] = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = "TOTP device"

    def set_key(self, hex_key: str) -> None:
        bytes.fromhex(hex_key)  # refuses anything but hex
        self.sealed_key = totp.seal(hex_key)

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(totp.unseal(self.sealed_key))

    # django-otp's TOTPDevice code, unchanged: it reads only bin_key and the fields above.
    verify_token = _OtpTOTPDevice.verify_token
    get_throttle_factor = _OtpTOTPDevice.get_throttle_factor
    config_url = _OtpTOTPDevice.config_url
    _read_str_from_settings = _OtpTOTPDevice._read_str_from_settings


class WebAuthnCredential(TimestampMixin, Device):
    """A passkey or security key registered as a staff member's second factor (accounts.passkeys).

    A django-otp `Device`, so a login proved with it marks the session verified like the
    authenticator code does. It holds no secret: the public key, its id and the signature
    counter the authenticator reports (a counter that goes backwards means a cloned key)."""

    # Annotated because django-otp's Device ships no types, so the plugin cannot infer them.
    public_id: models.UUIDField[Any, uuid.UUID] = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False
    )
    # base64url, as browsers send it
    credential_id: models.CharField[Any, str] = models.CharField(max_length=1400, unique=True)
    public_key: models.BinaryField[Any, bytes] = models.BinaryField()  # COSE-encoded
    sign_count: models.BigIntegerField[Any, int] = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)

    class Meta(Device.Meta):
        verbose_name = "passkey"

    def verify_token(self, token: object) -> bool:
        return False  # proved by a WebAuthn assertion (accounts.passkeys), never by a typed code


class AuditChain(models.Model):
    """The head of one organization's hash chain. Only the sealing worker locks it (appends
    never wait for it), so sealing is serialized and writes are not."""

    key = models.CharField(max_length=64, unique=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("Audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only")


class AuditEvent(models.Model):
    """One append-only, hash-chained record of a write, a read of a patient record, or a denial."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        FAILED = "failed", "Failed"

    chain_key = models.CharField(max_length=64)
    # Set when the worker seals the row into its chain (accounts.audit.audit_seal); null before.
    seq = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    # Looked up by organization through audit_org_time (organization first): a second index on
    # the column alone was one more page written by every event (issue 13).
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    patient_id = models.UUIDField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    client_address = models.CharField(max_length=45, blank=True)
    channel = models.CharField(max_length=10, blank=True)  # ui, api, fhir, cli, admin, portal
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_seq_unique_in_chain")
        ]
        indexes = [
            models.Index(fields=["organization", "-occurred_at"], name="audit_org_time"),
            # What the sealing worker reads: small, since rows leave it within seconds.
            models.Index(
                fields=["chain_key", "id"],
                condition=models.Q(seq__isnull=True),
                name="audit_unsealed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_username} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only")
