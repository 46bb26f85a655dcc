from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.patients.codes import PRELOADED_CONDITIONS
from ketaclinic.patients.models import Allergy, Condition, MedicationStatement, Patient
from ketaclinic.patients.services import PATIENT_FIELDS


class DateInput(forms.DateInput):
    input_type = "date"


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = PATIENT_FIELDS
        widgets = {"birth_date": DateInput(), "address": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"mrn": "Leave empty to generate one.", "preferred_language": "e.g. en, es"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mrn"].required = False


class PatientSearchForm(forms.Form):
    q = forms.CharField(label="Name or MRN", required=False, max_length=100)
    birth_date = forms.DateField(label="Date of birth", required=False, widget=DateInput())


class WeightForm(forms.Form):
    value = forms.DecimalField(label="Weight", max_digits=7, decimal_places=2)
    unit = forms.ChoiceField(choices=[("kg", "kg"), ("lb", "lb")], initial="kg")


class HeightForm(forms.Form):
    value = forms.DecimalField(label="Height", max_digits=6, decimal_places=2)
    unit = forms.ChoiceField(choices=[("cm", "cm"), ("in", "in")], initial="cm")


class BloodPressureForm(forms.Form):
    systolic = forms.IntegerField(label="Systolic (mm Hg)")
    diastolic = forms.IntegerField(label="Diastolic (mm Hg)")


class EnteredInErrorForm(forms.Form):
    reason = forms.CharField(
        label="Why is it wrong?",
        max_length=500,
        help_text="e.g. typed 180 for 80; weighed with coat and boots; another patient's reading",
    )


def _condition_choices() -> list[tuple[str, object]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for code in PRELOADED_CONDITIONS:
        mark = "" if code.confirmed else " (verify code)"
        groups.setdefault(code.group, []).append((code.code, f"{code.code} {code.display}{mark}"))
    return [("", "Choose…"), *groups.items()]


class ConditionForm(forms.ModelForm):
    code = forms.ChoiceField(label="Diagnosis (ICD-10-CM)", choices=_condition_choices)

    class Meta:
        model = Condition
        fields = ("code", "clinical_status", "onset_date", "abatement_date", "note")
        widgets = {
            "onset_date": DateInput(),
            "abatement_date": DateInput(),
            "note": forms.Textarea(attrs={"rows": 2}),
        }


class MedicationForm(forms.ModelForm):
    class Meta:
        model = MedicationStatement
        fields = (
            "drug_name",
            "dose_text",
            "status",
            "start_date",
            "end_date",
            "is_antidepressant_trial",
            "adequate_trial",
            "in_current_episode",
            "trial_outcome",
            "note",
        )
        widgets = {
            "start_date": DateInput(),
            "end_date": DateInput(),
            "note": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"is_antidepressant_trial": "Antidepressant trial"}


class AllergyForm(forms.ModelForm):
    class Meta:
        model = Allergy
        fields = ("substance", "reaction", "severity", "criticality", "clinical_status", "note")
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}
