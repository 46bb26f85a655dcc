"""Data leaving the clinic in bulk: each export job is also the accounting of that disclosure
(who asked, when, for which cohort, under which de-identification rule), and each patient's
secret date shift is kept so that every research export shifts them the same way."""

from __future__ import annotations

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import Patient

SCOPED = {"organization": "organization"}


class DataExport(PublicIdModel):
    class Kind(models.TextChoices):
        RESEARCH = "research", "De-identified research export"
        FHIR_BULK = "fhir-bulk", "FHIR Bulk Data export (identified)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    requester_role = models.CharField(max_length=20)
    channel = models.CharField(max_length=10)
    parameters = models.JSONField(default=dict)  # the cohort filters or FHIR _type/_since
    cohort_described = models.TextField(blank=True)  # the parameters in words, for the log
    rule_version = models.CharField(max_length=60)  # e.g. safe-harbor@1 or fhir-bulk@1
    zip3_table = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    patients = models.PositiveIntegerField(default=0)
    files = models.JSONField(default=list)  # [{"name", "type", "rows", "bytes"}]
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="export_progress_percent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} export {self.public_id} ({self.status})"


class ResearchDateShift(models.Model):
    """A patient's secret date shift for research exports; never shown, never exported."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="+")
    shift_days = models.SmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(shift_days=0), name="research_shift_not_zero"
            )
        ]
