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
