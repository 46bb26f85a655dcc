"""Ketamine-assisted psychotherapy: the treatment team, therapy visits with their progress notes,
psychotherapy (process) notes kept apart, risk flags, break-glass reads and team messages.

Rows are written only by `ketaclinic.therapy.services`. Psychotherapy notes live in their own
table that no chart, export, FHIR or portal reader queries (docs/sources/therapy.md).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.errors import Conflict
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import ChartEntry, Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.therapy.notes import Modality, RiskLevel, VisitFormat, VisitKind

SCOPED = {"organization": "organization"}


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, getattr(m, "label", m.value.replace("_", " ").capitalize())) for m in enum]


class TeamAssignment(PublicIdModel):
    """A therapist on a patient's treatment team, for a whole plan or for one dosing session."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        TreatmentPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    session = models.ForeignKey(
        TreatmentSession, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    therapist = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    assigned_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(plan__isnull=False, session__isnull=True)
                | models.Q(plan__isnull=True, session__isnull=False),
                name="team_assignment_plan_xor_session",
            ),
            models.UniqueConstraint(
                fields=["plan", "therapist"],
                condition=models.Q(ended_at__isnull=True, plan__isnull=False),
                name="team_one_open_plan_assignment",
            ),
            models.UniqueConstraint(
                fields=["session", "therapist"],
                condition=models.Q(ended_at__isnull=True, session__isnull=False),
                name="team_one_open_session_assignment",
            ),
        ]


class TherapyVisit(ChartEntry):
    """One therapy visit and its progress note (part of the medical record). Signed, it never
    changes: corrections are amendments."""

    kind = models.CharField(max_length=20, choices=_choices(VisitKind))
    format = models.CharField(max_length=12, choices=_choices(VisitFormat))
    group_size = models.PositiveSmallIntegerField(null=True, blank=True)
    modality = models.CharField(max_length=12, choices=_choices(Modality))
    with_em = models.BooleanField(default=False)  # done with an E/M visit the same day
    plan = models.ForeignKey(
        TreatmentPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Dosing-session support: the session the therapist was present at.
    session = models.ForeignKey(
        TreatmentSession, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The booked appointment (scheduling app) the visit took place in, by public id.
    appointment_public_id = models.UUIDField(null=True, blank=True)
    therapist = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()  # time in
    ended_at = models.DateTimeField(null=True, blank=True)  # time out
    content = models.JSONField(default=dict, blank=True)  # the kind's template fields
    mental_status = models.JSONField(default=dict, blank=True)
    risk_level = models.CharField(max_length=10, choices=_choices(RiskLevel), blank=True)
    risk_notes = models.TextField(blank=True)
    narrative = models.TextField(blank=True)
    rule = models.CharField(max_length=40)
    billing = models.JSONField(default=dict, blank=True)  # BillingFacts, stored on signing
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["patient", "-started_at"], name="therapy_visit_pt_time")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="dosing_support") | models.Q(session__isnull=False),
                name="therapy_dosing_support_has_session",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gt=models.F("started_at")),
                name="therapy_visit_ends_after_start",
            ),
            models.UniqueConstraint(
                fields=["appointment_public_id"],
                condition=models.Q(appointment_public_id__isnull=False),
                name="therapy_one_visit_per_appointment",
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Belt and braces under the service check: a signed note's row is never rewritten.
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("signed_at", flat=True)
            if stored and stored[0] is not None:
                raise Conflict("A signed therapy note cannot be changed; add an amendment.")
        super().save(*args, **kwargs)

    @property
    def kind_label(self) -> str:
        return VisitKind(self.kind).label

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None


class TherapyNoteAmendment(PublicIdModel):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(TherapyVisit, on_delete=models.PROTECT, related_name="amendments")
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    reason = models.CharField(max_length=200)
    signed_at = models.DateTimeField()

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["signed_at", "pk"]


class RiskFlag(PublicIdModel):
    """A therapist's risk flag; it raises a safety alert (measures.SafetyAlert, kind therapy)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(
        TherapyVisit, null=True, blank=True, on_delete=models.PROTECT, related_name="risk_flags"
    )
    level = models.CharField(max_length=10, choices=_choices(RiskLevel))
    reason = models.TextField()
    raised_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=40)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]


class PsychotherapyNote(PublicIdModel):
    """A psychotherapy (process) note as HIPAA defines it (45 CFR 164.501): kept apart from the
    medical record, readable only by its author, or through an audited break-glass read."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    visit = models.OneToOneField(
        TherapyVisit, on_delete=models.PROTECT, related_name="psychotherapy_note"
    )
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()

    objects = ScopedManager(**SCOPED)


class BreakGlassRead(PublicIdModel):
    """Someone other than the author read a psychotherapy note; compliance reviews each one."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    note = models.ForeignKey(PsychotherapyNote, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    reader = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    reader_role = models.CharField(max_length=20)
    reason = models.TextField()
    reviewed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]


class TeamMessage(PublicIdModel):
    """A handoff message between members of the team, inside the app (never e-mail)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sender = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recipient = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    read_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="team_msg_inbox")]


class TherapyMeasurePlan(PublicIdModel):
    """An instrument the plan asks for around dosing sessions (e.g. PHQ-9 before preparation)."""

    class Timing(models.TextChoices):
        BEFORE_PREPARATION = "before_preparation", "Before the first preparation visit"
        BEFORE_EACH_DOSING = "before_each_dosing", "Before each dosing session"
        AFTER_EACH_DOSING = "after_each_dosing", "After each dosing session"
        AFTER_INTEGRATION = "after_integration", "After each integration visit"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="+")
    instrument_id = models.CharField(max_length=32)
    timing = models.CharField(max_length=24, choices=Timing.choices)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "instrument_id", "timing"], name="therapy_measure_once_per_timing"
            )
        ]
