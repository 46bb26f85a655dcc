"""Data leaving the clinic in bulk: each export job is also the accounting of that disclosure
(who asked, when, for which cohort, under which de-identification rule), and each patient's
secret date shift is kept so that every research export shifts them the same way."""

from __future__ import annotations

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.core.models import PublicIdModel
from ketaclinic.outcomes.cohort import MAX_WEEKS_SHOWN
from ketaclinic.patients.models import Patient

SCOPED = {"organization": "organization"}
# What the dashboard counts courses by (outcomes/aggregates.py), in the order it groups them: the
# times and CADSS totals, which differ most between courses, first.
COUNTED = (
    "durability_days",
    "to_response_days",
    "cadss_total",
    "route",
    "protocol_key",
    "response",
    "remission",
    "maintenance",
    "to_response_event",
    "durability_event",
    "cadss_count",
)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    # Done, and its files deleted after GENERATED_FILES_KEEP_HOURS (outcomes/file_retention.py):
    # the row stays, as the record of what was made and for whom.
    EXPIRED = "expired", "Files deleted"


class BackgroundJob(PublicIdModel):
    """What every long job the worker runs keeps, so its page, its JSON twin and the terminal
    follow it the same way: where it is (status, percent done), why it stopped, and when.

    Each job keeps its own `progress <= 100` check (the constraint names predate this base)."""

    Status = JobStatus

    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def ended(self) -> bool:
        """Nothing more will happen to it (a worker that picks it up again leaves it)."""
        return self.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.EXPIRED)


class DataExport(BackgroundJob):
    class Kind(models.TextChoices):
        RESEARCH = "research", "De-identified research export"
        FHIR_BULK = "fhir-bulk", "FHIR Bulk Data export (identified)"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    requester_role = models.CharField(max_length=20)
    channel = models.CharField(max_length=10)
    parameters = models.JSONField(default=dict)  # the cohort filters or FHIR _type/_since
    cohort_described = models.TextField(blank=True)  # the parameters in words, for the log
    rule_version = models.CharField(max_length=60)  # e.g. safe-harbor@1 or fhir-bulk@1
    zip3_table = models.CharField(max_length=40, blank=True)
    patients = models.PositiveIntegerField(default=0)
    files = models.JSONField(default=list)  # [{"name", "type", "rows", "bytes"}]

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


class SummaryRecompute(BackgroundJob):
    """A rewrite of a clinic's course summaries (outcomes/summary.py) in the background worker:
    who started it, how far it has got (the page and the JSON API poll this row), what it wrote.
    The command `ketaclinic outcomes-recompute` does the same work in the terminal."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10)
    rows = models.PositiveIntegerField(default=0)  # course summaries written

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="recompute_progress_percent"
            )
        ]

    def __str__(self) -> str:
        return f"course summary recompute {self.public_id} ({self.status})"


class ReportJob(BackgroundJob):
    """A PDF report drawn in the background worker: a patient's progress report (for the patient
    or a referring clinician) or the clinic's outcomes report of a cohort. The row says who asked,
    when, for which patient or cohort and audience, and which step the drawing has reached; the
    PDF is kept under var/reports/<public id>/ and each download is audited."""

    class Kind(models.TextChoices):
        PROGRESS = "progress", "Patient progress report"
        CLINIC = "clinic", "Clinic outcomes report"

    class Audience(models.TextChoices):
        PATIENT = "patient", "the patient"
        CLINICIAN = "clinician", "the referring clinician"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    requester_role = models.CharField(max_length=20)
    channel = models.CharField(max_length=10)
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    audience = models.CharField(max_length=10, choices=Audience.choices, blank=True)
    parameters = models.JSONField(default=dict)  # the clinic report's cohort filters
    cohort_described = models.TextField(blank=True)
    step = models.CharField(max_length=40, blank=True)  # the step running now, in words
    file_name = models.CharField(max_length=80, blank=True)
    pages = models.PositiveIntegerField(default=0)
    bytes = models.PositiveIntegerField(default=0)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="report_progress_percent"
            ),
            # a progress report names its patient and audience; a clinic report names neither
            models.CheckConstraint(
                condition=(
                    models.Q(
                        kind="progress",
                        patient__isnull=False,
                        audience__in=["patient", "clinician"],
                    )
                    | models.Q(kind="clinic", patient__isnull=True, audience="")
                ),
                name="report_kind_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} report {self.public_id} ({self.status})"


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


class CourseSummary(models.Model):
    """One treatment course's outcome on one instrument, kept so the dashboard adds up rows in
    the database instead of recomputing every patient's course (outcomes/summary.py).

    A course starts at a patient's first dose, or at the first dose of a route, a protocol or
    both (the dashboard's route and protocol filters): one row per distinct starting session,
    flagged with the filters it answers. The verdicts are `cohort.course_outcome`'s, written by
    the services that record scores, doses and dissociation scores (in their transaction) and
    by `ketaclinic outcomes-recompute`.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    instrument_id = models.CharField(max_length=32)
    version = models.PositiveSmallIntegerField()  # summary.SUMMARY_VERSION when written
    first_overall = models.BooleanField()
    first_of_route = models.BooleanField()
    first_of_protocol = models.BooleanField()
    first_of_pair = models.BooleanField()  # first dose of this route and protocol together
    route = models.CharField(max_length=32)
    protocol_key = models.CharField(max_length=100)
    first_dose_on = models.DateField()  # the UTC date, as the date filters compare it
    # dosed sessions counted as each filter counts them (every, this route, protocol, both)
    sessions_all = models.PositiveIntegerField()
    sessions_route = models.PositiveIntegerField()
    sessions_protocol = models.PositiveIntegerField()
    sessions_pair = models.PositiveIntegerField()
    baseline = models.DecimalField(max_digits=7, decimal_places=2, null=True)
    response = models.BooleanField(null=True)  # after the default induction window
    remission = models.BooleanField(null=True)
    # each treated score's verdicts within the longest induction window, for a cohort that asks
    # for another window (cohort.early_verdicts)
    early_verdicts = models.TextField(blank=True)
    to_response_days = models.FloatField(null=True)
    to_response_event = models.BooleanField(null=True)
    durability_days = models.FloatField(null=True)
    durability_event = models.BooleanField(null=True)
    durability_not_evaluable = models.BooleanField(default=False)
    maintenance = models.CharField(max_length=20, blank=True)
    # the patient's dissociation scores (CADSS totals) over all their sessions
    cadss_total = models.DecimalField(max_digits=12, decimal_places=1, default=0)
    cadss_count = models.PositiveIntegerField(default=0)
    # the patient's safety record over all their sessions: sessions with a blood pressure above
    # the alert limits after the dose, by worst severity, and adverse events by CTCAE grade
    bp_warning_sessions = models.PositiveIntegerField(default=0)
    bp_critical_sessions = models.PositiveIntegerField(default=0)

    objects = ScopedManager(**SCOPED)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "instrument_id"], name="course_summary_cohort"),
            models.Index(fields=["patient"], name="course_summary_patient"),
            # The dashboard's GROUP BY (aggregates.OBSERVED, in this order) read off the index in
            # order, with every column a cohort filter or counts reads: no table lookup, no sort.
            models.Index(
                fields=[
                    "organization",
                    "instrument_id",
                    *COUNTED,
                    "first_overall",
                    "first_of_route",
                    "first_of_protocol",
                    "first_of_pair",
                    "first_dose_on",
                    "patient",
                    "sessions_all",
                    "sessions_route",
                    "sessions_protocol",
                    "sessions_pair",
                ],
                name="course_summary_counts",
            ),
        ]


AE_GRADES = range(1, 6)  # CTCAE grades 1-5


def change_column(week: int) -> str:
    return f"change_week_{week}"


def grade_column(grade: int) -> str:
    return f"adverse_events_grade_{grade}"


# Change from baseline of the last score in each week since the first dose, in hundredths of a
# point (scores have two decimals): one integer column per week shown, so the database sums
# them exactly and fast.
for _week in range(MAX_WEEKS_SHOWN):
    CourseSummary.add_to_class(change_column(_week), models.IntegerField(null=True))
for _grade in AE_GRADES:
    CourseSummary.add_to_class(grade_column(_grade), models.PositiveIntegerField(default=0))


class PatientGroup(PublicIdModel):
    """A saved cohort: the outcomes dashboard's filters under a name, served as a FHIR Group
    whose members are the patients the filters select when it is read or exported (so a group
    such as "IV ketamine, TRD met" stays current as patients start treatment)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    filters = models.JSONField(default=dict)  # outcomes.filters.CohortFilters, as JSON
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="patient_group_name")
        ]

    def __str__(self) -> str:
        return self.name
