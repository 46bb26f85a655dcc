"""Screening forms: the intake questionnaire, a prescriber's decision, the eligibility check."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from django import forms

from ketaclinic.screening.models import ROUTE_CHOICES
from ketaclinic.screening.policy import ScreeningPolicy
from ketaclinic.screening.policy_docs import THRESHOLDS, Kind, Threshold
from ketaclinic.screening.rules import (
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    SuicidalIdeation,
)

YES_NO = [("", "Not documented"), ("true", "Yes"), ("false", "No")]

# (field, question), in the order a clinician asks them.
QUESTIONS: list[tuple[str, str]] = [
    ("psychosis_history", "Psychosis or schizophrenia, ever"),
    ("current_psychotic_symptoms", "Current psychotic symptoms"),
    ("bipolar_disorder", "Bipolar disorder"),
    ("current_mania_or_hypomania", "Current mania or hypomania"),
    ("active_substance_use_disorder", "Active substance use disorder"),
    ("active_ketamine_or_pcp_use_disorder", "Active ketamine or PCP use disorder"),
    ("ketamine_or_pcp_misuse_history", "History of ketamine or PCP misuse"),
    ("prior_ketamine_or_pcp_use", "Prior non-prescribed ketamine or PCP use"),
    ("past_substance_use_disorder", "Past substance use disorder (in remission)"),
    ("hypertensive_encephalopathy_history", "Hypertensive encephalopathy, ever"),
    ("aneurysmal_vascular_disease_or_avm", "Aneurysmal vascular disease or AVM"),
    ("intracerebral_hemorrhage_history", "Intracerebral haemorrhage, ever"),
    ("raised_intracranial_pressure", "Raised intracranial pressure"),
    ("raised_intraocular_pressure", "Raised intraocular pressure (e.g. glaucoma)"),
    ("cystitis_history", "Interstitial or ulcerative cystitis"),
    ("urinary_symptoms", "Current urinary symptoms"),
    ("hypersensitivity_to_ketamine_or_esketamine", "Hypersensitivity to ketamine/esketamine"),
    ("pregnant", "Pregnant"),
    ("breastfeeding", "Breastfeeding"),
    ("planning_pregnancy", "Planning a pregnancy"),
]
QUESTION_LABELS = dict(QUESTIONS)


def _choices(enum: type[StrEnum], blank: str = "Not documented") -> list[tuple[str, str]]:
    return [("", blank)] + [(item.value, item.value.replace("_", " ")) for item in enum]


def _yes_no(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value)


class IntakeForm(forms.Form):
    suicidal_ideation = forms.ChoiceField(
        choices=_choices(SuicidalIdeation), required=False, label="Current suicidal ideation"
    )
    hypertension = forms.ChoiceField(choices=_choices(HypertensionStatus), required=False)
    cardiovascular_disease = forms.ChoiceField(choices=_choices(DiseaseStatus), required=False)
    cerebrovascular_disease = forms.ChoiceField(choices=_choices(DiseaseStatus), required=False)
    hepatic_impairment = forms.ChoiceField(choices=_choices(HepaticImpairment), required=False)
    medications_reconciled = forms.BooleanField(
        required=False, label="Medication list on the chart reconciled with the patient"
    )
    benzodiazepine_lorazepam_equivalent_mg_per_day = forms.DecimalField(
        required=False, min_value=0, max_value=100, label="Benzodiazepine, mg lorazepam-eq./day"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name, question in QUESTIONS:
            self.fields[name] = forms.ChoiceField(choices=YES_NO, required=False, label=question)

    def service_data(self) -> dict[str, object]:
        data = dict(self.cleaned_data)
        for name, _ in QUESTIONS:
            data[name] = _yes_no(data[name])
        return data

    @staticmethod
    def initial_from(intake: object) -> dict[str, object]:
        if intake is None:
            return {}
        initial: dict[str, object] = {}
        for name in IntakeForm.base_fields:
            initial[name] = getattr(intake, name)
        for name, _ in QUESTIONS:
            value = getattr(intake, name)
            initial[name] = "" if value is None else str(value).lower()
        return initial


class DecisionForm(forms.Form):
    final_decision = forms.ChoiceField(
        label="Decision",
        choices=[("eligible", "Eligible"), ("ineligible", "Ineligible")],
        widget=forms.RadioSelect,
    )
    justification = forms.CharField(
        label="Justification", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class EligibilityCheckForm(forms.Form):
    route = forms.ChoiceField(choices=ROUTE_CHOICES)
    setting = forms.ChoiceField(choices=[("clinic", "In clinic"), ("home", "At home")])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "gate-%s")  # the screening page has other route fields
        super().__init__(*args, **kwargs)


class PolicyForm(forms.Form):
    """Every screening threshold, typed; the pure ScreeningPolicy decides what is allowed."""

    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why the policy changes",
        help_text="Stored with the new version and in the audit trail.",
    )

    def __init__(self, *args: Any, policy: ScreeningPolicy, **kwargs: Any) -> None:
        self.policy = policy
        current = policy.to_dict()
        initial: dict[str, Any] = {}
        fields_: dict[str, forms.Field] = {}
        for item in THRESHOLDS:
            value = current[item.name]
            if item.kind is Kind.BLOOD_PRESSURE:
                for part in ("systolic", "diastolic"):
                    name = f"{item.name}__{part}"
                    fields_[name] = forms.IntegerField(
                        label=f"{item.label}: {part} ({item.unit})", min_value=1
                    )
                    initial[name] = value[f"{part}_mmhg"]
            elif item.kind is Kind.INTEGER:
                fields_[item.name] = forms.IntegerField(
                    label=f"{item.label} ({item.unit})", min_value=0
                )
                initial[item.name] = value
            elif item.kind is Kind.DECIMAL:
                fields_[item.name] = forms.DecimalField(
                    label=f"{item.label} ({item.unit})",
                    min_value=0,
                    max_digits=6,
                    decimal_places=2,
                )
                initial[item.name] = Decimal(value)
            else:
                fields_[item.name] = forms.BooleanField(label=item.label, required=False)
                initial[item.name] = value
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.fields = {**fields_, **self.fields}

    def fields_of(self, threshold: Threshold) -> list[Any]:
        if threshold.kind is Kind.BLOOD_PRESSURE:
            return [self[f"{threshold.name}__systolic"], self[f"{threshold.name}__diastolic"]]
        return [self[threshold.name]]

    def add_service_error(self, field: str, message: str) -> None:
        """Put a service's error on the input it names (a BP limit: on its systolic box)."""
        if field in self.fields:
            self.add_error(field, message)
        elif f"{field}__systolic" in self.fields:
            self.add_error(f"{field}__systolic", message)
        else:
            self.add_error(None, message)

    def changes(self) -> dict[str, Any]:
        """The values that differ from the current policy, in ScreeningPolicy.to_dict() form."""
        current = self.policy.to_dict()
        data = self.cleaned_data
        changed: dict[str, Any] = {}
        for item in THRESHOLDS:
            if item.kind is Kind.BLOOD_PRESSURE:
                value: Any = {
                    "systolic_mmhg": data[f"{item.name}__systolic"],
                    "diastolic_mmhg": data[f"{item.name}__diastolic"],
                }
            elif item.kind is Kind.DECIMAL:
                value = format(data[item.name].normalize(), "f")
                if Decimal(value) == Decimal(current[item.name]):
                    continue
            else:
                value = data[item.name]
            if value != current[item.name]:
                changed[item.name] = value
        return changed
