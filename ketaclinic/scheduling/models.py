"""Appointment types, staff hours and time off, the clinic's monitoring-ratio policy, series,
appointments (with their history) and the waitlist.

Chairs are `accounts.Chair` rows (with what each can host). Every booking passes the pure rules
in rules.py inside a transaction that locks the clinic row, so two bookings of the last free
chair cannot both succeed (docs/sources/scheduling.md).
"""

from __future__ import annotations

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Chair, Clinic, Membership, Organization, User
from ketaclinic.core.models import PublicIdModel, TimeStamped
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import TreatmentPlan

# No staffing ratio for monitoring appears in the clinical reference. Conservative default, clinic
# setting: one patient per nurse in monitoring, as moderate-sedation guidance asks for a person
# whose only task is watching the patient (clinical-reference §2.4 [S] #46).
DEFAULT_PATIENTS_PER_NURSE = 1

# What a patient may do in the portal (clinic settings, not clinical numbers; defaults written in
# docs/sources/scheduling.md, "Portal booking rules"): change or cancel a visit up to 24 hours before
# it, and book a follow-up at most 14 days ahead.
DEFAULT_PORTAL_CUTOFF_HOURS = 24
DEFAULT_PORTAL_HORIZON_DAYS = 14


class AppointmentType(PublicIdModel):
    class Kind(models.TextChoices):
        IV_INFUSION = "iv_infusion", "IV ketamine infusion"
        ESKETAMINE = "esketamine", "Esketamine nasal spray"
        IM = "im", "IM ketamine"
        SUBLINGUAL = "sublingual", "Sublingual ketamine in clinic"
        KAP_PREPARATION = "kap_preparation", "KAP preparation"
        KAP_DOSING = "kap_dosing", "KAP dosing session"
        KAP_INTEGRATION = "kap_integration", "KAP integration"
        CONSULT = "consult", "Consultation"
        FOLLOW_UP = "follow_up", "Follow-up"
        TELEHEALTH = "telehealth", "Telehealth visit"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100)
    # The whole time the visit holds its chair: dosing plus observation and recovery.
    duration_minutes = models.PositiveSmallIntegerField()
    needs_chair = models.BooleanField(default=False)
    chair_capability = models.CharField(max_length=32, blank=True)  # accounts.chairs value
    needs_clinician = models.BooleanField(default=False)
    monitored = models.BooleanField(default=False)  # counts toward the nurse ratio
    route = models.CharField(max_length=32, blank=True)  # dosing visits: the session's route
    bookable_online = models.BooleanField(default=False)
    # The self-pay price the clinic publishes on its public page (US dollars); empty: not shown.
    public_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    source = models.CharField(max_length=200, blank=True)  # where the duration comes from
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="appt_type_kind_unique"),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=5, duration_minutes__lte=600),
                name="appt_type_duration_sane",
            ),
            models.CheckConstraint(
                condition=models.Q(public_price__isnull=True) | models.Q(public_price__gte=0),
                name="appt_type_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CapacityPolicy(models.Model):
    """One published version of a clinic's monitoring ratio. A change is a new row."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    patients_per_nurse = models.PositiveSmallIntegerField(default=DEFAULT_PATIENTS_PER_NURSE)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "version"], name="capacity_version_unique"),
            models.CheckConstraint(
                condition=models.Q(patients_per_nurse__gte=1, patients_per_nurse__lte=10),
                name="capacity_ratio_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patients_per_nurse} per nurse (v{self.version})"


class PortalPolicy(models.Model):
    """One published version of what patients may do in the portal at a clinic: how close to a
    visit they may still change or cancel it online, and how far ahead they may book a follow-up.
    A change is a new row; the newest version applies."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    change_cutoff_hours = models.PositiveSmallIntegerField(default=DEFAULT_PORTAL_CUTOFF_HOURS)
    horizon_days = models.PositiveSmallIntegerField(default=DEFAULT_PORTAL_HORIZON_DAYS)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "version"], name="portal_policy_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(change_cutoff_hours__gte=1, change_cutoff_hours__lte=336),
                name="portal_policy_cutoff_sane",
            ),
            models.CheckConstraint(
                condition=models.Q(horizon_days__gte=1, horizon_days__lte=180),
                name="portal_policy_horizon_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"portal rules v{self.version}"


class StaffHours(TimeStamped):
    """A staff member's regular weekly hours at a clinic, in the clinic's wall-clock time."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    weekday = models.PositiveSmallIntegerField()  # 0 = Monday
    start_time = models.TimeField()
    end_time = models.TimeField()

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="hours_weekday"),
            models.CheckConstraint(
                condition=models.Q(end_time__gt=models.F("start_time")), name="hours_end_after"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.start_time}-{self.end_time}"


class TimeOff(TimeStamped):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="timeoff_end_after"
            )
        ]

    def __str__(self) -> str:
        return f"off {self.starts_at:%Y-%m-%d}"


class AppointmentSeries(PublicIdModel):
    """The visits proposed from a treatment plan's schedule; a scheduler confirms them."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        TreatmentPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    rules = models.JSONField(default=list)  # [{"phase", "rrule"}], RFC 5545
    exceptions = models.JSONField(default=list, blank=True)  # local dates skipped
    algorithm = models.CharField(max_length=40)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"series {self.public_id}"


class Appointment(PublicIdModel):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        BOOKED = "booked", "Booked"
        CHECKED_IN = "checked_in", "Checked in"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"
        RESCHEDULED = "rescheduled", "Moved"

    # Statuses that hold the chair, the clinician and the nurse's attention.
    HOLDING = ("booked", "checked_in")

    class Source(models.TextChoices):
        STAFF = "staff", "Staff"
        PORTAL = "portal", "Patient portal"
        FRONT_DOOR = "front_door", "Online request"
        FHIR = "fhir", "FHIR"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    chair = models.ForeignKey(
        Chair, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    clinician = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.BOOKED)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.STAFF)
    series = models.ForeignKey(
        AppointmentSeries,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="appointments",
    )
    series_index = models.PositiveSmallIntegerField(null=True, blank=True)
    series_phase = models.CharField(max_length=60, blank=True)
    plan = models.ForeignKey(
        TreatmentPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The monitored session opened by check-in (sessions app), by public id: no reverse coupling.
    session_public_id = models.UUIDField(null=True, blank=True)
    rescheduled_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    booked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["clinic", "starts_at"], name="appt_clinic_start"),
            models.Index(fields=["patient", "starts_at"], name="appt_patient_start"),
            models.Index(fields=["status", "starts_at"], name="appt_status_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="appt_end_after"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[
                        "proposed",
                        "booked",
                        "checked_in",
                        "cancelled",
                        "no_show",
                        "rescheduled",
                    ]
                ),
                name="appt_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.appointment_type_id} at {self.starts_at:%Y-%m-%d %H:%M}"


class WaitlistEntry(PublicIdModel):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        BOOKED = "booked", "Booked"
        REMOVED = "removed", "Removed"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    earliest = models.DateField()
    latest = models.DateField()
    note = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latest__gte=models.F("earliest")), name="waitlist_window"
            )
        ]

    def __str__(self) -> str:
        return f"waitlist {self.public_id}"


class Lead(PublicIdModel):
    """A consultation requested on the clinic's public page, until the front desk converts it."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONVERTED = "converted", "Converted"
        DECLINED = "declined", "Declined"

    class Route(models.TextChoices):
        BOOK = "book", "May book the requested consult"
        REVIEW = "review", "A clinician calls first"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex_at_birth = models.CharField(max_length=10)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    reason = models.TextField()
    answers = models.JSONField(default=dict)
    route = models.CharField(max_length=8, choices=Route.choices)
    route_reasons = models.JSONField(default=list)
    absolute_contraindication = models.BooleanField(default=False)
    rule = models.CharField(max_length=40)
    requested_start = models.DateTimeField(null=True, blank=True)
    requested_clinician = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    client_address_hash = models.CharField(max_length=64, blank=True, db_index=True)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(route="review") | models.Q(requested_start__isnull=True),
                name="lead_review_never_holds_a_slot",
            )
        ]

    def __str__(self) -> str:
        return f"lead {self.public_id}"


class CalendarFeed(TimeStamped):
    """A clinician's private ICS feed. Only a SHA-256 of the token is stored; issuing a new one or
    revoking ends the old one."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"calendar feed of {self.membership_id}"
