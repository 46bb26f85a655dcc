"""Protocol versions, treatment plans and the session safety policy, stored per organization.

A protocol version and a safety policy version are immutable once published: a change is a new
version. The definition JSON is exactly `ProtocolTemplate.to_dict()` / `SessionSafetyPolicy
.to_dict()`, so the pure core reads back what was stored.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import ChartEntry
from ketaclinic.protocols.catalog import ProtocolTemplate
from ketaclinic.sessions.policy import SessionSafetyPolicy

SCOPED = {"organization": "organization"}


class ProtocolVersion(PublicIdModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    class Origin(models.TextChoices):
        STANDARD = "standard", "Standard catalog"
        CLINIC = "clinic", "Clinic version"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    protocol_id = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    drug = models.CharField(max_length=32)
    route = models.CharField(max_length=32)
    setting = models.CharField(max_length=16)
    definition = models.JSONField()  # ProtocolTemplate.to_dict()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.CLINIC)
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change_note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["protocol_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "protocol_id", "version"], name="protocol_version_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="published") | models.Q(published_at__isnull=False),
                name="protocol_published_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def key(self) -> str:
        return f"{self.protocol_id}@{self.version}"

    @property
    def template(self) -> ProtocolTemplate:
        return ProtocolTemplate.from_dict(self.definition)


class SafetyPolicyVersion(PublicIdModel):
    """One published version of an organization's session safety policy."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    data = models.JSONField()  # SessionSafetyPolicy.to_dict()
    note = models.TextField(blank=True)
    published_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField()

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"], name="safety_policy_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"session-safety@{self.version}"

    @property
    def policy(self) -> SessionSafetyPolicy:
        return SessionSafetyPolicy.from_dict(self.data)


class TreatmentPlan(ChartEntry):
    """A protocol version applied to one patient, with the prescriber's parameters."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="+")
    protocol_key = models.CharField(max_length=100)
    prescriber = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    phase = models.CharField(max_length=60)
    # The amount ordered each session, in the protocol's unit (mg/kg or mg), within its caps.
    current_amount = models.DecimalField(max_digits=8, decimal_places=3)
    infusion_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    concentration_mg_per_ml = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True
    )
    diluent_volume_ml = models.DecimalField(max_digits=7, decimal_places=2, default=0)
    # e.g. {"response_measure": "phq9", "raise_when_score_above": 10}; the step and caps are the
    # protocol's, never the plan's.
    titration = models.JSONField(default=dict, blank=True)
    plan_measures = models.JSONField(default=list, blank=True)  # ["phq9", "cssrs-screener"]
    childbearing_potential = models.BooleanField(default=False)
    start_date = models.DateField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-start_date", "-pk"]
        indexes = [models.Index(fields=["patient", "status"], name="plan_pt_status")]

    def __str__(self) -> str:
        return f"{self.protocol_key} for {self.patient_id}"

    @property
    def unit(self) -> str:
        return str(self.protocol.definition["dose"]["kind"]).replace("device", "mg")

    def custom_parameters(self) -> dict[str, Any]:
        return {
            "current_amount": str(self.current_amount),
            "infusion_minutes": self.infusion_minutes,
            "concentration_mg_per_ml": (
                str(self.concentration_mg_per_ml) if self.concentration_mg_per_ml else None
            ),
            "diluent_volume_ml": str(self.diluent_volume_ml),
            "titration": self.titration,
            "plan_measures": self.plan_measures,
        }


class PlanEvent(PublicIdModel):
    """A recorded change of a plan: a phase transition or a dose change (titration)."""

    class Kind(models.TextChoices):
        PHASE = "phase", "Phase transition"
        DOSE = "dose", "Dose change"
        STATUS = "status", "Status change"
        # More dosing sessions than the phase planned: from_value is the phase, to_value the
        # number of sessions added (docs/sources/sessions.md, "Planned session counts").
        EXTENSION = "extension", "Phase extended"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_value = models.CharField(max_length=60)
    to_value = models.CharField(max_length=60)
    reason = models.TextField(blank=True)
    algorithm = models.CharField(max_length=60, blank=True)
    result = models.JSONField(default=dict, blank=True)
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["recorded_at", "pk"]
