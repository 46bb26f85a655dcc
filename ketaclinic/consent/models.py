"""Consent: templates a clinic authors, their immutable published versions, patients'
signatures (with a stored PDF copy) and revocations; and patient portal accounts.

A template is the editable draft; publishing freezes its text and acknowledgement items into a
`ConsentTemplateVersion` with a SHA-256 content hash. A signature points at one version, so a new
version means the patient must sign again before the next session.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import Patient

SCOPED = {"organization": "organization"}


class ConsentTemplate(PublicIdModel):
    class Kind(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        KAP = "kap", "Ketamine-assisted psychotherapy"
        RESEARCH = "research", "Research use of de-identified data"

    class Setting(models.TextChoices):
        CLINIC = "clinic", "In clinic"
        HOME = "home", "At home"
        ANY = "any", "Any setting"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # A screening Route value for treatment consents; blank for KAP and research.
    route = models.CharField(max_length=32, blank=True)
    setting = models.CharField(max_length=8, choices=Setting.choices)
    title = models.CharField(max_length=200)
    # The draft: edited freely; frozen into a version on publish.
    body = models.TextField()
    acknowledgements = models.JSONField(default=list)  # [{"key": str, "text": str}]
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["kind", "route", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "route", "setting"],
                condition=models.Q(is_active=True),
                name="one_active_consent_template_per_route_setting",
            )
        ]

    def __str__(self) -> str:
        return self.title


class ConsentTemplateVersion(PublicIdModel):
    """A published, immutable version of a template."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    template = models.ForeignKey(ConsentTemplate, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    acknowledgements = models.JSONField()
    content_hash = models.CharField(max_length=64)  # sha256 of the canonical content
    published_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField()

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="consent_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("A published consent version is immutable")
        super().save(*args, **kwargs)


class ConsentSignature(PublicIdModel):
    """A patient's signed consent to one template version, with its manifestation."""

    class Channel(models.TextChoices):
        PORTAL = "portal", "Patient portal"
        CLINIC = "clinic", "In clinic (tablet)"

    MEANING = "consent to treatment"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    template_version = models.ForeignKey(
        ConsentTemplateVersion, on_delete=models.PROTECT, related_name="signatures"
    )
    # Copied from the template so the gate reads one table.
    kind = models.CharField(max_length=12)
    route = models.CharField(max_length=32, blank=True)
    setting = models.CharField(max_length=8)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    signed_at = models.DateTimeField()
    printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=60, default=MEANING)
    acknowledged = models.JSONField()  # keys of every acknowledgement item, each ticked
    drawn_signature = models.TextField(blank=True)  # data:image/png;base64,...
    signed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    witness = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    client_address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    content_hash = models.CharField(max_length=64)  # of the version signed
    pdf = models.BinaryField()
    pdf_sha256 = models.CharField(max_length=64)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revocation_reason = models.TextField(blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-signed_at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "kind", "route", "-signed_at"], name="consent_sig_pt")
        ]

    def __str__(self) -> str:
        return f"{self.printed_name}: {self.template_version}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class PortalAccount(PublicIdModel):
    """A patient's portal login: one User linked to one Patient (no staff membership).

    Lives here for now because consent is the portal's first use; it has no consent-specific
    fields and can move to the patients app without a change of shape.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="+")
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="portal_account")
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    activated_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(**SCOPED)

    def __str__(self) -> str:
        return f"portal account of {self.patient}"


class SignInLinkRequest(models.Model):
    """One request for an e-mailed portal sign-in link, kept only to limit how often one address
    may ask (consent.sign_in_links). Holds a SHA-256 of the address, never the address, and names
    no organization: the limit applies before anyone knows whether the address is a patient's."""

    address_hash = models.CharField(max_length=64)
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["address_hash", "requested_at"], name="sign_in_request_address"),
            models.Index(fields=["requested_at"], name="sign_in_request_time"),
        ]

    def __str__(self) -> str:
        return f"sign-in link request at {self.requested_at:%Y-%m-%d %H:%M}"
