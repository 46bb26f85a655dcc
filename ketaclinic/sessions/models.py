"""The monitored treatment session and everything recorded in it.

Rows are written only by `ketaclinic.sessions.services`. Computed results (dose, gate, alerts,
discharge) are stored as JSON beside the rule id and version that produced them.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Clinic, Organization, User
from ketaclinic.core.errors import Conflict
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import ChartEntry, Patient
from ketaclinic.protocols.models import ProtocolVersion, SafetyPolicyVersion, TreatmentPlan
from ketaclinic.sessions.workflow import SessionState

SCOPED = {"organization": "organization"}
STATE_CHOICES = [(s.value, s.value.replace("_", " ").capitalize()) for s in SessionState]
ACTIVE_STATES = [
    SessionState.CHECKED_IN.value,
    SessionState.PRECHECKS_PASSED.value,
    SessionState.DOSING.value,
    SessionState.MONITORING.value,
    SessionState.READY_FOR_DISCHARGE.value,
]


class TreatmentSession(ChartEntry):
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="+")
    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="+")
    protocol_key = models.CharField(max_length=100)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    chair = models.PositiveSmallIntegerField(null=True, blank=True)
    drug = models.CharField(max_length=32)
    route = models.CharField(max_length=32)
    setting = models.CharField(max_length=16)
    session_number = models.PositiveIntegerField()  # 1 = the plan's first dosing session
    scheduled_at = models.DateTimeField()
    state = models.CharField(max_length=20, choices=STATE_CHOICES, default=SessionState.SCHEDULED)
    state_changed_at = models.DateTimeField()
    policy_version = models.ForeignKey(
        SafetyPolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy_key = models.CharField(max_length=60)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    dose_started_at = models.DateTimeField(null=True, blank=True)
    dose_ended_at = models.DateTimeField(null=True, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    abort_reason = models.TextField(blank=True)
    # The latest flowsheet row, kept here so the floor board reads one table.
    last_vitals = models.JSONField(default=dict, blank=True)
    last_alert_severity = models.CharField(max_length=10, blank=True)
    # The worst blood pressure above the alert limits among its post-dose flowsheet rows (0 none,
    # 1 warning, 2 critical), raised as rows are stored: a batch of vitals with a high blood
    # pressure tells from it whether it moves the dashboard's count. Reading the flowsheet for
    # that took a query and JSON parsing every time, and every row of the session at that
    # severity when none reached it (5 ms on a monitor's 11,000 rows; issue 13). Rows are never
    # removed, so the rank only rises.
    worst_bp_rank = models.PositiveSmallIntegerField(default=0)
    # A prescriber's override of the dosing-frequency limits (gap, sessions a week) for this
    # session, with the justification and the findings it overrode (docs/sources/sessions.md).
    frequency_override_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frequency_override_reason = models.TextField(blank=True)
    frequency_override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "state"], name="session_org_state"),
            models.Index(fields=["patient", "-scheduled_at"], name="session_pt_time"),
            models.Index(fields=["patient", "-dose_started_at"], name="session_pt_dosed"),
        ]
        # The floor's hard stops, held by the database under the services' own checks: one open
        # session per patient, one patient per chair of a clinic (issue 10).
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(state__in=ACTIVE_STATES),
                name="session_one_open_per_patient",
            ),
            models.UniqueConstraint(
                fields=["clinic", "chair"],
                condition=models.Q(state__in=ACTIVE_STATES, chair__isnull=False),
                name="session_one_patient_per_chair",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.public_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in (SessionState.DISCHARGED, SessionState.ABORTED)


class SessionTransition(PublicIdModel):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="transitions"
    )
    event = models.CharField(max_length=30)
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.TextField(blank=True)
    at = models.DateTimeField()
    by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["at", "pk"]


class SessionRow(PublicIdModel):
    """Base of every row recorded inside a session."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        abstract = True


class Precheck(SessionRow):
    """One pass over the pre-session checklist, the treatment gates, weight and pre-dose vitals."""

    checklist = models.JSONField()  # {code: bool} as ticked
    items = models.JSONField()  # the items that applied: [{code, label, source}]
    unmet = models.JSONField(default=list)
    weight = models.JSONField(default=dict)  # SelectedWeight, or {} when refused
    gate = models.JSONField(default=dict)  # GateResult
    override_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_reason = models.TextField(blank=True)
    passed = models.BooleanField(default=False)
    rule = models.CharField(max_length=60)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["recorded_at", "pk"]


class DoseOrder(SessionRow):
    class Status(models.TextChoices):
        SIGNED = "signed", "Signed"
        VOIDED = "voided", "Voided"

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="+")
    protocol_key = models.CharField(max_length=100)
    algorithm = models.CharField(max_length=60)
    policy_key = models.CharField(max_length=60)
    prescribed_amount = models.DecimalField(max_digits=8, decimal_places=3)
    prescribed_unit = models.CharField(max_length=8)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1)
    device_count = models.PositiveSmallIntegerField(null=True, blank=True)
    result = models.JSONField()  # DoseResult.to_dict()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SIGNED)
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=models.Q(status="signed"),
                name="one_signed_order_per_session",
            ),
            models.CheckConstraint(condition=models.Q(dose_mg__gt=0), name="order_dose_positive"),
        ]


class DoseAdministration(SessionRow):
    """What was actually given. The controlled-substance ledger links here by `public_id` and
    `lot_number` (inventory is a separate module)."""

    order = models.ForeignKey(DoseOrder, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    drug = models.CharField(max_length=32)
    route = models.CharField(max_length=32)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1)
    device_count = models.PositiveSmallIntegerField(null=True, blank=True)
    lot_number = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(dose_mg__gt=0), name="admin_dose_positive"),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="admin_end_after_start",
            ),
        ]


class VitalsEntry(SessionRow):
    """One row of the flowsheet. Also written to the chart as VitalSign rows (FHIR Observations
    linked to this session's Encounter)."""

    taken_at = models.DateTimeField()
    predose = models.BooleanField(default=False)
    systolic = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(null=True, blank=True)
    respiratory_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    alerts = models.JSONField(default=list)  # [{measure, value, threshold, direction, severity}]
    severity = models.CharField(max_length=10, blank=True)  # worst alert, "" when none
    rule = models.CharField(max_length=60)
    policy_key = models.CharField(max_length=60)

    class Meta:
        ordering = ["taken_at", "pk"]
        indexes = [models.Index(fields=["session", "taken_at"], name="vitals_session_time")]

    @property
    def bp(self) -> str:
        if self.systolic is None or self.diastolic is None:
            return ""
        return f"{self.systolic}/{self.diastolic}"


class SessionObservation(SessionRow):
    """Dissociation (CADSS), sedation (MOAA/S) and the side-effects checklist."""

    class Kind(models.TextChoices):
        CADSS = "cadss", "Dissociation (CADSS)"
        SEDATION = "sedation", "Sedation (MOAA/S 0-5)"
        SIDE_EFFECTS = "side_effects", "Side effects checklist"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    observed_at = models.DateTimeField()
    score = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    instrument = models.CharField(max_length=40, blank=True)  # e.g. cadss@1
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["observed_at", "pk"]


class AdverseEvent(SessionRow):
    class Outcome(models.TextChoices):
        RESOLVED = "resolved", "Resolved"
        RESOLVING = "resolving", "Resolving"
        ONGOING = "ongoing", "Not resolved"
        TRANSFERRED = "transferred", "Transferred to emergency care"
        FATAL = "fatal", "Fatal"
        UNKNOWN = "unknown", "Unknown"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    event_code = models.CharField(max_length=40)
    description = models.TextField(blank=True)
    grade = models.PositiveSmallIntegerField()
    serious = models.BooleanField(default=False)
    onset_at = models.DateTimeField()
    action_taken = models.TextField(blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.ONGOING)
    escalated = models.BooleanField(default=False)
    escalation_rule = models.CharField(max_length=40)

    class Meta:
        ordering = ["onset_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grade__gte=1, grade__lte=5), name="ae_grade_1_to_5"
            )
        ]


class Intervention(SessionRow):
    """A medication given during the session for a reason (antiemetic, antihypertensive...)."""

    drug_name = models.CharField(max_length=120)
    rxnorm_code = models.CharField(max_length=20, blank=True)
    dose_text = models.CharField(max_length=80)
    route = models.CharField(max_length=32)
    given_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    adverse_event = models.ForeignKey(
        AdverseEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["given_at", "pk"]


class DischargeCheck(SessionRow):
    assessment = models.JSONField()
    result = models.JSONField()  # DischargeResult, with every unmet criterion
    ready = models.BooleanField()
    rule = models.CharField(max_length=40)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["checked_at", "pk"]


class SessionNote(SessionRow):
    """The session note. Once signed it never changes: corrections are amendments."""

    text = models.TextField(blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session"], name="one_note_per_session")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Belt and braces under the service check: a signed note's row is never rewritten.
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("signed_at", flat=True)
            if stored and stored[0] is not None:
                raise Conflict("A signed note cannot be changed; add an amendment.")
        super().save(*args, **kwargs)


class NoteAmendment(SessionRow):
    note = models.ForeignKey(SessionNote, on_delete=models.PROTECT, related_name="amendments")
    text = models.TextField()
    reason = models.CharField(max_length=200)
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "pk"]


class RemsEnrollment(ChartEntry):
    """A patient's enrollment in the SPRAVATO REMS."""

    rems_patient_id = models.CharField(max_length=40, blank=True)
    enrolled_on = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "patient"], name="one_rems_per_patient")
        ]


class PatientMonitoringForm(SessionRow):
    """The REMS Patient Monitoring Form of one esketamine session."""

    data = models.JSONField(default=dict)  # PMF field key -> answer
    missing = models.JSONField(default=list)
    problems = models.JSONField(default=list)
    rule = models.CharField(max_length=40)
    treatment_date = models.DateField()
    due_on = models.DateField()
    submitted_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["due_on", "pk"]
        constraints = [models.UniqueConstraint(fields=["session"], name="one_pmf_per_session")]
