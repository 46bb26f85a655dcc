"""Screening records: the clinic's policy versions, intake history, evaluations and decisions.

Every row is append-only in practice (services create, never edit, except the review fields of a
decision, which are written once). What the rules computed is stored beside the policy and rule
versions and the fingerprint of the inputs, so a decision can be explained and re-checked later.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel
from ketaclinic.patients.models import ChartEntry

SCOPED = {"organization": "organization"}

ROUTE_CHOICES = [
    ("intravenous", "Intravenous (clinic)"),
    ("intramuscular", "Intramuscular (clinic)"),
    ("intranasal_esketamine", "Intranasal esketamine (clinic, REMS)"),
    ("sublingual_oral_in_clinic", "Sublingual/oral (clinic)"),
    ("sublingual_at_home", "Sublingual (at home)"),
]
ROUTE_LABELS = dict(ROUTE_CHOICES)
DECISION_CHOICES = [
    ("eligible", "Eligible"),
    ("needs_prescriber_review", "Needs prescriber review"),
    ("ineligible", "Ineligible"),
]


class ScreeningPolicyVersion(PublicIdModel):
    """One published version of a clinic's screening policy (immutable once stored)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    policy_id = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    data = models.JSONField()  # ScreeningPolicy.to_dict()
    note = models.TextField(blank=True)
    published_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "policy_id", "version"], name="screening_policy_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}@{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("A published screening policy version is immutable")
        super().save(*args, **kwargs)


class IntakeHistory(ChartEntry):
    """The intake questionnaire as answered at one moment. A new answer set is a new row; the
    latest row is the current intake. Yes/no answers are nullable: empty = not documented."""

    psychosis_history = models.BooleanField(null=True, blank=True)
    current_psychotic_symptoms = models.BooleanField(null=True, blank=True)
    bipolar_disorder = models.BooleanField(null=True, blank=True)
    current_mania_or_hypomania = models.BooleanField(null=True, blank=True)
    suicidal_ideation = models.CharField(max_length=32, blank=True)
    active_substance_use_disorder = models.BooleanField(null=True, blank=True)
    active_ketamine_or_pcp_use_disorder = models.BooleanField(null=True, blank=True)
    ketamine_or_pcp_misuse_history = models.BooleanField(null=True, blank=True)
    prior_ketamine_or_pcp_use = models.BooleanField(null=True, blank=True)
    past_substance_use_disorder = models.BooleanField(null=True, blank=True)
    hypertension = models.CharField(max_length=16, blank=True)
    cardiovascular_disease = models.CharField(max_length=16, blank=True)
    cerebrovascular_disease = models.CharField(max_length=16, blank=True)
    hypertensive_encephalopathy_history = models.BooleanField(null=True, blank=True)
    aneurysmal_vascular_disease_or_avm = models.BooleanField(null=True, blank=True)
    intracerebral_hemorrhage_history = models.BooleanField(null=True, blank=True)
    raised_intracranial_pressure = models.BooleanField(null=True, blank=True)
    raised_intraocular_pressure = models.BooleanField(null=True, blank=True)
    hepatic_impairment = models.CharField(max_length=32, blank=True)
    cystitis_history = models.BooleanField(null=True, blank=True)
    urinary_symptoms = models.BooleanField(null=True, blank=True)
    hypersensitivity_to_ketamine_or_esketamine = models.BooleanField(null=True, blank=True)
    pregnant = models.BooleanField(null=True, blank=True)
    breastfeeding = models.BooleanField(null=True, blank=True)
    planning_pregnancy = models.BooleanField(null=True, blank=True)
    # The medication list on the chart was reconciled with the patient (else: not documented).
    medications_reconciled = models.BooleanField(default=False)
    benzodiazepine_lorazepam_equivalent_mg_per_day = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "intake histories"
        indexes = [models.Index(fields=["patient", "-created_at"], name="intake_pt_time")]


class ScreeningEvaluation(PublicIdModel):
    """One run of the rules over a snapshot of the chart."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(ScreeningPolicyVersion, on_delete=models.PROTECT, related_name="+")
    intake = models.ForeignKey(
        IntakeHistory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    algorithm = models.CharField(max_length=60)  # e.g. screening-eligibility@1
    policy_ref = models.CharField(max_length=120)  # e.g. ketaclinic-default-screening@1
    inputs_fingerprint = models.CharField(max_length=64)
    inputs = models.JSONField()  # the snapshot, canonical JSON
    sources = models.JSONField(default=dict)  # chart rows read: medications, conditions, BP
    result = models.JSONField()  # ScreeningResult.to_dict()
    trd_status = models.CharField(max_length=16)
    trd_rule = models.CharField(max_length=60)
    assessed_on = models.DateField()
    valid_until = models.DateField()
    evaluated_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["patient", "-created_at"], name="screen_eval_pt_time")]

    def __str__(self) -> str:
        return f"screening {self.public_id} ({self.assessed_on})"


class ScreeningDecision(PublicIdModel):
    """The decision for one route: what the rules said and what the prescriber decided."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting prescriber review"
        DECIDED = "decided", "Decided by prescriber"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    evaluation = models.ForeignKey(
        ScreeningEvaluation, on_delete=models.PROTECT, related_name="decisions"
    )
    route = models.CharField(max_length=32, choices=ROUTE_CHOICES)
    computed_decision = models.CharField(max_length=32, choices=DECISION_CHOICES)
    findings = models.JSONField(default=list)  # [{rule, rule_id, severity, reason, citation}]
    rule_versions = models.JSONField(default=list)  # ["pregnancy@1", ...]
    policy_ref = models.CharField(max_length=120)
    inputs_fingerprint = models.CharField(max_length=64)
    valid_until = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    final_decision = models.CharField(max_length=32, choices=DECISION_CHOICES, blank=True)
    overridden = models.BooleanField(default=False)
    overridden_rules = models.JSONField(default=list)
    justification = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "route", "-created_at"], name="screen_dec_pt_route")
        ]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "route"], name="one_decision_per_route"),
            models.CheckConstraint(
                condition=models.Q(status="pending", final_decision="")
                | models.Q(status="decided") & ~models.Q(final_decision=""),
                name="decided_has_final_decision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.route}: {self.final_decision or self.computed_decision}"

    @property
    def route_label(self) -> str:
        return ROUTE_LABELS.get(self.route, self.route)

    @property
    def blocking_findings(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("severity") != "info"]
