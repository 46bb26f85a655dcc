"""Questionnaire responses, safety alerts, the clinic's measure policy and measure schedules.

Definitions and scoring are pure (definitions.py, scoring.py); these tables keep what happened:
every item answer, the definition id and version, the score with its rule id, who answered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import OneTimeLink, PublicIdModel
from ketaclinic.patients.models import SCOPED, ChartEntry, Patient

# No number for this exists in clinical-reference.md: a conservative default a clinic can change.
# 30 minutes is short enough that a positive suicide item never waits a shift for a second look.
DEFAULT_ESCALATION_MINUTES = 30
DEFAULT_ESCALATION_ROLE = "prescriber"


class MeasurePolicy(models.Model):
    """One published version of a clinic's measure policy. Never edited: a change is a new row."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    # Scoring policy values keyed like the definitions' policy keys ("madrs.item10_alert_level").
    scoring_values = models.JSONField(default=dict, blank=True)
    # A total at or above this raises an alert, per instrument id: {"phq9": 20}.
    total_alert_thresholds = models.JSONField(default=dict, blank=True)
    escalation_minutes = models.PositiveIntegerField(default=DEFAULT_ESCALATION_MINUTES)
    escalation_role = models.CharField(max_length=20, default=DEFAULT_ESCALATION_ROLE)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"], name="measure_policy_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(escalation_minutes__gte=1), name="measure_policy_escalation_pos"
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("A published measure policy is immutable; publish a new version")
        super().save(*args, **kwargs)

    @property
    def reference(self) -> str:
        """Stored beside every score and alert; version 0 is the shipped defaults."""
        return f"measure-policy@{self.version or 0}"


class QuestionnaireResponse(ChartEntry):
    """One completed questionnaire. Immutable: a correction is a new response that `corrects` it."""

    class Respondent(models.TextChoices):
        STAFF = "staff", "Entered by staff"
        PATIENT_LINK = "patient_link", "Patient, through a one-time link"

    instrument_id = models.CharField(max_length=32)
    instrument_version = models.PositiveIntegerField()
    rule = models.CharField(max_length=48)  # "phq9@1": the definition that produced the score
    answers = models.JSONField()  # every item answer as given, keyed by link id
    item_scores = models.JSONField(default=dict)
    total = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    subscales = models.JSONField(default=dict, blank=True)
    severity_code = models.CharField(max_length=32, blank=True)
    severity_label = models.CharField(max_length=64, blank=True)
    screen_positive = models.BooleanField(null=True, blank=True)
    risk_level = models.CharField(max_length=10, blank=True)
    findings = models.JSONField(default=list, blank=True)
    prorated = models.BooleanField(default=False)
    score_note = models.TextField(blank=True)
    policy_reference = models.CharField(max_length=80)
    language = models.CharField(max_length=8, default="en")
    respondent = models.CharField(max_length=14, choices=Respondent.choices)
    link = models.ForeignKey(
        OneTimeLink, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField()
    corrects = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrected_by"
    )
    correction_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-completed_at", "-pk"]
        indexes = [
            models.Index(
                fields=["patient", "instrument_id", "completed_at"], name="qr_pt_instr_time"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(corrects__isnull=True) | ~models.Q(correction_reason=""),
                name="qr_correction_has_reason",
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("A completed response is never edited; record a correction")
        super().save(*args, **kwargs)

    @property
    def score(self) -> Decimal | None:
        """The total as scored ("18", "4.33"), without the column's padding ("18.00")."""
        if self.total is None:
            return None
        total = Decimal(self.total)
        if total == total.to_integral_value():
            return total.quantize(Decimal(1))
        return total.normalize()


class SafetyAlert(PublicIdModel):
    """An answer that needs a clinician now (suicide item, C-SSRS risk, clinic total threshold,
    or active suicidal ideation with intent or a plan reported in the intake history).

    `source_kind` says which record raised it; exactly that record's column is set.
    """

    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        HIGH = "high", "High"

    class SourceKind(models.TextChoices):
        QUESTIONNAIRE = "questionnaire", "Questionnaire response"
        INTAKE = "intake", "Intake history"
        SESSION_VITALS = "session_vitals", "Vital signs during a session"
        THERAPY = "therapy", "Therapist's risk assessment"

    # Kinds whose source lives in another app; it is named by its public id.
    REFERENCED_KINDS = (SourceKind.SESSION_VITALS, SourceKind.THERAPY)

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    source_kind = models.CharField(
        max_length=16, choices=SourceKind.choices, default=SourceKind.QUESTIONNAIRE
    )
    response = models.ForeignKey(
        QuestionnaireResponse,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
    )
    intake = models.ForeignKey(
        "screening.IntakeHistory",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The session vitals entry or therapy note that raised it (REFERENCED_KINDS only).
    source_public_id = models.UUIDField(null=True, blank=True)
    rule = models.CharField(max_length=80)  # the first rule that fired, e.g. "phq9@1:item-9"
    severity = models.CharField(max_length=10, choices=Severity.choices)
    summary = models.CharField(max_length=255)
    findings = models.JSONField(default=list)  # every rule that fired, with its source
    policy_reference = models.CharField(max_length=80)
    responsible = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    action_note = models.TextField(blank=True)
    escalate_after = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to_role = models.CharField(max_length=20, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "acknowledged_at"], name="alert_org_open"),
            models.Index(fields=["patient", "acknowledged_at"], name="alert_pt_open"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(acknowledged_at__isnull=True)
                | (~models.Q(action_note="") & models.Q(acknowledged_by__isnull=False)),
                name="alert_ack_has_note_and_who",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        source_kind="questionnaire", response__isnull=False, intake__isnull=True
                    )
                    | models.Q(source_kind="intake", response__isnull=True, intake__isnull=False)
                    | models.Q(
                        source_kind__in=["session_vitals", "therapy"],
                        response__isnull=True,
                        intake__isnull=True,
                        source_public_id__isnull=False,
                    )
                ),
                name="alert_source_matches_kind",
            ),
            # An intake answer that is still open needs no second alert: at most one open
            # intake alert per patient (questionnaire alerts are per response, as before).
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(source_kind="intake", acknowledged_at__isnull=True),
                name="alert_one_open_intake_per_patient",
            ),
        ]

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class MeasureSchedule(PublicIdModel):
    """When a patient is asked to complete an instrument; reminders are queued as tasks."""

    class Cadence(models.TextChoices):
        BEFORE_SESSION = "before_session", "Before every session"
        WEEKLY = "weekly", "Weekly"
        MONTHS_1_3_6 = "months_1_3_6", "At 1, 3 and 6 months"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    instrument_id = models.CharField(max_length=32)
    cadence = models.CharField(max_length=16, choices=Cadence.choices)
    language = models.CharField(max_length=8, default="en")
    starts_at = models.DateTimeField()
    next_due_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["next_due_at"]
        indexes = [models.Index(fields=["is_active", "next_due_at"], name="schedule_due")]
