"""The patient chart core: demographics, body measurements, conditions, medications, allergies.

Every row carries its organization (tenant) directly, so the tenant scope is a plain filter on
every query and never a join.
"""

from __future__ import annotations

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel

SCOPED = {"organization": "organization"}


class Patient(PublicIdModel):
    class SexAtBirth(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        INTERSEX = "intersex", "Intersex"
        UNKNOWN = "unknown", "Unknown / not recorded"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    mrn = models.CharField("MRN", max_length=32)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex_at_birth = models.CharField(max_length=10, choices=SexAtBirth.choices)
    gender_identity = models.CharField(max_length=60, blank=True)
    pronouns = models.CharField(max_length=30, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    emergency_contact_name = models.CharField(max_length=150, blank=True)
    emergency_contact_phone = models.CharField(max_length=40, blank=True)
    emergency_contact_relationship = models.CharField(max_length=60, blank=True)
    preferred_language = models.CharField(max_length=16, default="en")
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "mrn"], name="mrn_unique_in_org")
        ]
        indexes = [
            models.Index(fields=["organization", "family_name", "given_name"], name="pt_name"),
            models.Index(fields=["organization", "birth_date"], name="pt_birth"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class ChartEntry(PublicIdModel):
    """Base of every row in a patient's chart: tenant, patient, who recorded it and from where."""

    class Source(models.TextChoices):
        CLINIC = "clinic", "Entered in clinic"
        PATIENT = "patient", "Reported by patient"
        IMPORT = "import", "Imported"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CLINIC)
    # Set when the row was created from an outside record (e.g. a FHIR import), for idempotency.
    external_id = models.CharField(max_length=200, blank=True, db_index=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        abstract = True


class CorrectableQuerySet(models.QuerySet):
    def in_use(self) -> CorrectableQuerySet:
        """Leave out entries marked entered-in-error: what the chart, dosing and screening use."""
        return self.filter(entered_in_error=False)


CorrectableManager = models.Manager.from_queryset(CorrectableQuerySet)


class CorrectableEntry(ChartEntry):
    """A chart entry that is corrected by marking it entered-in-error, never by erasing it: the
    row stays for the record (and reads back with that status), and `in_use()` leaves it out."""

    entered_in_error = models.BooleanField(default=False)

    # The plugin has already typed `objects` from ChartEntry's scoped manager (see typings/
    # django_scopes); the queryset-derived manager class here is one it cannot relate to that.
    objects = ScopedManager(_manager_class=CorrectableManager, **SCOPED)  # type: ignore[misc, arg-type]

    class Meta:
        abstract = True


class MeasurementEntry(CorrectableEntry):
    """A weight, height or vital sign: the chart's high-rate rows (a monitored session records
    vital signs every few minutes, a device feed many more).

    Every lookup of these rows by organization, patient or outside identifier is served by the
    composite indexes each table declares (organization + external_id, patient + time), which
    start with the same column; the single-column indexes ChartEntry's fields would add beside
    them answered no query and cost one more index page written by every INSERT (issue 13)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+", db_index=False)
    # ChartEntry's outside identifier (import idempotency), found through (organization, it).
    external_id = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True


class BodyWeight(MeasurementEntry):
    weight_kg = models.DecimalField(max_digits=6, decimal_places=2)
    entered_value = models.DecimalField(max_digits=7, decimal_places=2)
    entered_unit = models.CharField(max_length=10, default="kg")
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        indexes = [
            models.Index(fields=["organization", "external_id"], name="weight_org_ext"),
            models.Index(fields=["patient", "-measured_at"], name="weight_pt_time"),
        ]


class BodyHeight(MeasurementEntry):
    height_cm = models.DecimalField(max_digits=5, decimal_places=1)
    entered_value = models.DecimalField(max_digits=6, decimal_places=2)
    entered_unit = models.CharField(max_length=10, default="cm")
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        indexes = [
            models.Index(fields=["organization", "external_id"], name="height_org_ext"),
            models.Index(fields=["patient", "-measured_at"], name="height_pt_time"),
        ]


class Condition(CorrectableEntry):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RECURRENCE = "recurrence", "Recurrence"
        RELAPSE = "relapse", "Relapse"
        INACTIVE = "inactive", "Inactive"
        REMISSION = "remission", "In remission"
        RESOLVED = "resolved", "Resolved"

    code_system = models.CharField(max_length=100, default="http://hl7.org/fhir/sid/icd-10-cm")
    code = models.CharField(max_length=20)
    display = models.CharField(max_length=255)
    clinical_status = models.CharField(max_length=12, choices=Status.choices, default="active")
    onset_date = models.DateField(null=True, blank=True)
    abatement_date = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-onset_date", "code"]
        indexes = [
            models.Index(fields=["organization", "external_id"], name="condition_org_ext"),
            models.Index(fields=["patient", "clinical_status"], name="condition_pt"),
        ]


class MedicationStatement(CorrectableEntry):
    """A medication the patient takes or took, including antidepressant trials for TRD status."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Taking now"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    class TrialOutcome(models.TextChoices):
        RESPONSE = "response", "Response"
        PARTIAL = "partial", "Partial response"
        NONE = "none", "No response"
        INTOLERANCE = "intolerance", "Intolerance"
        UNKNOWN = "unknown", "Unknown"

    drug_name = models.CharField(max_length=200)
    rxnorm_code = models.CharField(max_length=20, blank=True)
    dose_text = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    is_antidepressant_trial = models.BooleanField(default=False)
    adequate_trial = models.BooleanField(null=True, blank=True)
    in_current_episode = models.BooleanField(null=True, blank=True)
    trial_outcome = models.CharField(
        max_length=12, choices=TrialOutcome.choices, blank=True, default=""
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-start_date", "drug_name"]
        indexes = [
            models.Index(fields=["organization", "external_id"], name="medstmt_org_ext"),
            models.Index(fields=["patient", "status"], name="medstmt_pt"),
        ]


class Allergy(CorrectableEntry):
    class Severity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    class Criticality(models.TextChoices):
        LOW = "low", "Low"
        HIGH = "high", "High"
        UNABLE = "unable-to-assess", "Unable to assess"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        RESOLVED = "resolved", "Resolved"

    substance = models.CharField(max_length=200)
    reaction = models.CharField(max_length=255, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True)
    criticality = models.CharField(max_length=20, choices=Criticality.choices, default="low")
    clinical_status = models.CharField(max_length=10, choices=Status.choices, default="active")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["substance"]
        verbose_name_plural = "allergies"
        # Import idempotency looks rows up by their outside identifier within a tenant.
        indexes = [models.Index(fields=["organization", "external_id"], name="allergy_org_ext")]


class VitalSign(MeasurementEntry):
    """A vital sign other than weight and height (those have their own tables).

    Values are stored in one canonical UCUM unit per kind; what was entered is kept beside them.
    A blood pressure is one row: `value` is systolic, `value_diastolic` diastolic.
    """

    class Kind(models.TextChoices):
        BLOOD_PRESSURE = "bp", "Blood pressure"
        HEART_RATE = "heart_rate", "Heart rate"
        SPO2 = "spo2", "Oxygen saturation"
        RESPIRATORY_RATE = "resp_rate", "Respiratory rate"
        TEMPERATURE = "temperature", "Body temperature"
        BMI = "bmi", "Body mass index"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    code = models.CharField(max_length=20)  # LOINC code of the observation (canonical)
    value = models.DecimalField(max_digits=7, decimal_places=2)
    value_diastolic = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    unit = models.CharField(max_length=12)  # canonical UCUM unit of `value`
    entered_value = models.DecimalField(max_digits=8, decimal_places=2)
    entered_unit = models.CharField(max_length=20)
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        indexes = [
            models.Index(fields=["organization", "external_id"], name="vital_org_ext"),
            models.Index(fields=["patient", "kind", "-measured_at"], name="vital_pt_kind_time"),
            models.Index(fields=["organization", "-measured_at"], name="vital_org_time"),
        ]


class CareTeamMember(PublicIdModel):
    """A clinician assigned to a patient. When the organization keeps charts to the care team
    (`Organization.care_team_only`), prescribers, nurses and therapists open only their
    patients' records, and anyone else's by breaking the glass (BreakGlassAccess)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    added_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "user"], name="care_team_member_once")
        ]


class BreakGlassAccess(PublicIdModel):
    """A clinician opened a patient's record outside their assignment: the reason they gave,
    until when the access holds, and compliance's review (docs/sources/security.md)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20)
    reason = models.TextField()
    expires_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "user", "expires_at"], name="break_glass_open"),
            models.Index(fields=["organization", "reviewed_at"], name="break_glass_review"),
        ]
