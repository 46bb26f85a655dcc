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


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SPANS_PER_DAY = 2  # a morning and an afternoon; the API takes any number


class WeeklyHoursForm(forms.Form):
    """A staff member's regular week at one clinic: up to two spans a day, clinic wall-clock
    time. A day left empty is a day off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for weekday, name in enumerate(WEEKDAY_NAMES):
            for span in range(SPANS_PER_DAY):
                suffix = "" if span == 0 else " (second span)"
                for edge in ("start", "end"):
                    self.fields[f"d{weekday}_{span}_{edge}"] = forms.TimeField(
                        label=f"{name} {'from' if edge == 'start' else 'until'}{suffix}",
                        required=False,
                        widget=forms.TimeInput(format="%H:%M", attrs={"type": "time"}),
                    )

    @staticmethod
    def initial_from(rows: Any) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        used = [0] * len(WEEKDAY_NAMES)
        for row in rows:
            span = used[row.weekday]
            if span < SPANS_PER_DAY:
                initial[f"d{row.weekday}_{span}_start"] = row.start_time
                initial[f"d{row.weekday}_{span}_end"] = row.end_time
            used[row.weekday] += 1
        return initial

    def days(self) -> list[tuple[str, list[tuple[Any, Any]]]]:
        """(weekday name, [(start field, end field) per span]) for the template's table."""
        return [
            (
                name,
                [
                    (self[f"d{weekday}_{span}_start"], self[f"d{weekday}_{span}_end"])
                    for span in range(SPANS_PER_DAY)
                ],
            )
            for weekday, name in enumerate(WEEKDAY_NAMES)
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        for weekday in range(len(WEEKDAY_NAMES)):
            for span in range(SPANS_PER_DAY):
                start_name, end_name = f"d{weekday}_{span}_start", f"d{weekday}_{span}_end"
                start, end = data.get(start_name), data.get(end_name)
                if start_name in self.errors or end_name in self.errors:
                    continue
                if (start is None) != (end is None):
                    missing = end_name if end is None else start_name
                    self.add_error(missing, "Give both the start and the end, or neither.")
                elif start is not None and end <= start:
                    self.add_error(end_name, "The end must be after the start.")
        return data

    def spans(self) -> list[tuple[int, Any, Any]]:
        """The week as the service takes it: (weekday, start, end), in order."""
        return [
            (weekday, self.cleaned_data[f"d{weekday}_{span}_start"], end)
            for weekday in range(len(WEEKDAY_NAMES))
            for span in range(SPANS_PER_DAY)
            if (end := self.cleaned_data.get(f"d{weekday}_{span}_end")) is not None
        ]
