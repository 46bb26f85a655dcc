"""Calendar forms: times are entered in the clinic's local wall-clock time."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from ketaclinic.scheduling.models import AppointmentType


class LocalTimeForm(forms.Form):
    day = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}))

    def starts_at(self, time_zone: str) -> datetime:
        return datetime.combine(
            self.cleaned_data["day"], self.cleaned_data["time"], ZoneInfo(time_zone)
        )


class BookForm(LocalTimeForm):
    mrn = forms.CharField(label="Patient MRN", max_length=32)
    appointment_type = forms.ChoiceField(label="Visit", choices=AppointmentType.Kind.choices)
    chair = forms.IntegerField(
        label="Chair", required=False, min_value=1, help_text="Empty: the first free chair."
    )
    clinician = forms.CharField(label="Clinician (user name)", required=False, max_length=150)

    field_order = ("mrn", "appointment_type", "day", "time", "chair", "clinician")


class MoveForm(LocalTimeForm):
    chair = forms.IntegerField(label="Chair", required=False, min_value=1)
    reason = forms.CharField(label="Why", required=False, max_length=300)


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300)


class SeriesForm(forms.Form):
    appointment_type = forms.ChoiceField(label="Visit", choices=AppointmentType.Kind.choices)
    first_day = forms.DateField(label="First visit", widget=forms.DateInput(attrs={"type": "date"}))
    wall_time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class TypeForm(forms.Form):
    duration_minutes = forms.IntegerField(
        label="Minutes in the chair or room", min_value=5, max_value=600
    )
    bookable_online = forms.BooleanField(label="Offered online", required=False)
    is_active = forms.BooleanField(label="Offered", required=False)
    public_price = forms.DecimalField(
        label="Published price (US dollars)",
        required=False,
        min_value=0,
        max_value=100000,
        decimal_places=2,
        help_text="Empty: no price on the public page.",
    )


class CapacityForm(forms.Form):
    patients_per_nurse = forms.IntegerField(
        label="Patients per nurse in monitoring", min_value=1, max_value=10
    )
    note = forms.CharField(label="Why (kept with the version)", required=False, max_length=2000)


class PortalPolicyForm(forms.Form):
    change_cutoff_hours = forms.IntegerField(
        label="Patients change or cancel online up to (hours before)", min_value=1, max_value=336
    )
    horizon_days = forms.IntegerField(
        label="Patients book follow-ups online up to (days ahead)", min_value=1, max_value=180
    )
    note = forms.CharField(label="Why (kept with the version)", required=False, max_length=2000)


class WaitlistForm(forms.Form):
    mrn = forms.CharField(label="Patient MRN", max_length=32)
    appointment_type = forms.ChoiceField(label="Visit", choices=AppointmentType.Kind.choices)
    earliest = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    latest = forms.DateField(label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(label="Note", required=False, max_length=300)


class WaitlistBookForm(LocalTimeForm):
    chair = forms.IntegerField(label="Chair", required=False, min_value=1)
