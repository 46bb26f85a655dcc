"""The outbox: every message the clinic sends (to a patient or to staff), each delivery attempt,
and the consent to contact per patient and channel.

A message is written in the producer's transaction and delivered by the worker after commit, so a
rolled-back write never sends anything. The body is rendered at delivery time from `context`; the
one secret a message may carry (a one-time link's URL) is kept sealed in `sealed_secret`
(ketaclinic/messaging/sealing.py) and erased once the message is sent or has finally failed.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel, TimeStamped
from ketaclinic.messaging.crisis import US_DEFAULTS, CrisisLines
from ketaclinic.messaging.kinds import kind_label
from ketaclinic.patients.models import Patient


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "Text message (SMS)"


class ContactPolicy(TimeStamped):
    """What the clinic assumes for a patient who gave an address but said nothing about contact,
    and where escalations reach the clinician on call. One row per organization; no row means
    the conservative defaults below (contact only after the patient agrees)."""

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="+")
    email_allowed_by_default = models.BooleanField(default=False)
    sms_allowed_by_default = models.BooleanField(default=False)
    on_call_email = models.EmailField(blank=True)
    on_call_phone = models.CharField(max_length=40, blank=True)
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"contact policy of {self.organization_id}"


class ContactPreference(TimeStamped):
    """The patient's own answer for one channel: allowed, or opted out. Overrides the default."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    allowed = models.BooleanField()
    note = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "channel"], name="contact_preference_one_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {'allowed' if self.allowed else 'opted out'}"


class Message(PublicIdModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Not sent"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    staff_recipient = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    to_address = models.CharField(max_length=254, blank=True)
    context = models.JSONField(default=dict, blank=True)
    sealed_secret = models.TextField(blank=True)
    # Attachments as text: [{"filename", "content_type", "content"}] (calendar files are text).
    attachments = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    status_reason = models.CharField(max_length=300, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    # Producers that may run twice (a periodic job on several workers) name the message once.
    dedupe_key = models.CharField(max_length=120, null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="message_due"),
            models.Index(fields=["patient", "-created_at"], name="message_patient"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"], name="message_dedupe_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "sending", "sent", "failed", "suppressed"]
                ),
                name="message_status_known",
            ),
        ]

    @property
    def kind_label(self) -> str:
        """The message kind as staff read it (a kind the registry no longer knows: its id)."""
        return kind_label(self.kind)

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} ({self.status})"


class DeliveryAttempt(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        RETRY = "retry", "Will retry"
        BOUNCED = "bounced", "Refused by the provider"
        GAVE_UP = "gave_up", "Gave up"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "pk"]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.attempted_at:%Y-%m-%d %H:%M}"


class PatientPagesPolicy(models.Model):
    """One published version of what the clinic's patient-facing pages offer and say: whether a
    patient may sign in to the portal with a link e-mailed on request (off until the clinic turns
    it on), and the crisis numbers every patient page and message shows (US defaults, cited in
    docs/sources/portal.md). Never edited: a change is a new row; the newest version applies."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    sign_in_links_allowed = models.BooleanField(default=False)
    crisis_line_number = models.CharField(max_length=20, default=US_DEFAULTS.line_number)
    crisis_line_name = models.CharField(max_length=80, default=US_DEFAULTS.line_name)
    crisis_line_name_es = models.CharField(
        max_length=80, blank=True, default=US_DEFAULTS.line_name_es
    )
    crisis_line_takes_texts = models.BooleanField(default=US_DEFAULTS.line_takes_texts)
    emergency_number = models.CharField(max_length=20, default=US_DEFAULTS.emergency_number)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"], name="patient_pages_policy_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"patient pages policy v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("A published policy is immutable; publish a new version")
        super().save(*args, **kwargs)

    @property
    def crisis_lines(self) -> CrisisLines:
        return CrisisLines(
            line_number=self.crisis_line_number,
            line_name=self.crisis_line_name,
            line_name_es=self.crisis_line_name_es,
            line_takes_texts=self.crisis_line_takes_texts,
            emergency_number=self.emergency_number,
        )
