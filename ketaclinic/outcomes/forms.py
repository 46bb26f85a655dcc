"""The dashboard's cohort filter as a form (errors shown next to each field)."""

from __future__ import annotations

from django import forms

from ketaclinic.outcomes.cohort import DEFAULT_INDUCTION_DAYS
from ketaclinic.outcomes.filters import AGE_BANDS, GROUPINGS, INSTRUMENTS, ROUTES, CohortFilters


def _choices(values: list[str] | tuple[str, ...], blank: str) -> list[tuple[str, str]]:
    return [("", blank), *((value, value.replace("_", " ")) for value in values)]


class CohortFilterForm(forms.Form):
    instrument = forms.ChoiceField(choices=list(INSTRUMENTS.items()), initial="phq9")
    route = forms.ChoiceField(choices=_choices(ROUTES, "Any route"), required=False)
    protocol = forms.CharField(
        max_length=100,
        required=False,
        help_text="The protocol, as on the treatment plan (leave blank for all).",
    )
    phase = forms.CharField(max_length=60, required=False, help_text="e.g. maintenance")
    condition = forms.CharField(
        max_length=20, required=False, label="Diagnosis (ICD-10-CM)", help_text="code or prefix"
    )
    trd = forms.ChoiceField(
        label="Treatment-resistant depression",
        choices=[
            ("", "Any"),
            ("met", "Met"),
            ("not_met", "Not met"),
            ("undetermined", "Undetermined"),
        ],
        required=False,
    )
    age_band = forms.ChoiceField(choices=_choices(list(AGE_BANDS), "Any age"), required=False)
    first_dose_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    first_dose_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(choices=list(GROUPINGS.items()), initial="route")
    induction_days = forms.IntegerField(
        min_value=7, max_value=84, initial=DEFAULT_INDUCTION_DAYS, label="Induction window (days)"
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("first_dose_from"), data.get("first_dose_to")
        if start and end and start > end:
            self.add_error("first_dose_to", "The end of the range is before its start.")
        return data

    def filters(self) -> CohortFilters:
        data = {key: value for key, value in self.cleaned_data.items() if value not in (None, "")}
        return CohortFilters(**data)


class ResearchExportForm(CohortFilterForm):
    """A cohort to export de-identified, and the ZIP3 table version to apply."""

    zip3_table = forms.ChoiceField(
        label="ZIP3 table",
        choices=[
            ("zip3-none@1", "No ZIP digits (000 for all; default)"),
            ("zip3-census2000-hhs@1", "HHS 2000-census list of small areas"),
        ],
        initial="zip3-none@1",
    )

    def filters(self) -> CohortFilters:
        data = {
            key: value
            for key, value in self.cleaned_data.items()
            if value not in (None, "") and key not in ("zip3_table", "group_by")
        }
        return CohortFilters(**data)
