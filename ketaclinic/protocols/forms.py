"""Forms for the protocol, safety-policy and treatment-plan screens.

Forms only turn text into typed values and say which field is wrong; the rules live in the pure
core (catalog, policy, dosing) and the services, whose field errors are put back on these forms.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from django import forms

from ketaclinic.protocols.catalog import ProtocolTemplate
from ketaclinic.protocols.citations import POLICY_FIELDS
from ketaclinic.protocols.services import EDITABLE_FIELDS
from ketaclinic.sessions.policy import SessionSafetyPolicy

# --- protocol drafts ------------------------------------------------------------------------

_DRAFT_LABELS = {
    "title": "Title",
    "caps.max_mg_per_kg": "Cap per kg (mg/kg)",
    "caps.max_mg": "Absolute cap (mg)",
    "caps.max_infusion_rate_mg_per_kg_per_h": "Infusion rate cap (mg/kg/h)",
    "dose.starting_amount": "Starting amount",
    "dose.minimum_amount": "Minimum amount",
    "infusion.default_minutes": "Default infusion duration (min)",
    "infusion.min_minutes": "Shortest infusion (min)",
    "infusion.max_minutes": "Longest infusion (min)",
    "titration.step": "Titration step",
    "titration.min_sessions_at_current_amount": "Sessions at a dose before raising",
    "titration.max_adverse_event_grade_for_increase": "Raise only if worst AE grade is at most",
    "monitoring.minimum_observation_minutes": "Minimum observation (min)",
    "monitoring.vitals_minutes_after_dose": "Vitals after the dose at (min)",
}
_DECIMALS = {
    "caps.max_mg_per_kg",
    "caps.max_mg",
    "caps.max_infusion_rate_mg_per_kg_per_h",
    "dose.starting_amount",
    "dose.minimum_amount",
    "titration.step",
}
_OPTIONAL = {"caps.max_mg_per_kg", "caps.max_mg", "caps.max_infusion_rate_mg_per_kg_per_h"}


class MinutesListField(forms.CharField):
    """ "15, 30, 40" -> [15, 30, 40]: whole minutes after the dose, rising."""

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = super().to_python(value) or ""
        try:
            minutes = [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Write whole minutes separated by commas.") from None
        if any(m <= 0 for m in minutes):
            raise forms.ValidationError("Each time must be a positive number of minutes.")
        if minutes != sorted(set(minutes)):
            raise forms.ValidationError("List each time once, in rising order.")
        return minutes


def _value_at(definition: dict[str, Any], path: str) -> Any:
    head, _, tail = path.partition(".")
    if not tail:
        return definition.get(head)
    section = definition.get(head)
    return None if section is None else section.get(tail)


class ProtocolDraftForm(forms.Form):
    """The editable fields of a draft (services.EDITABLE_FIELDS), named by their dotted paths so
    the service's field errors land on the right input."""

    def __init__(self, *args: Any, definition: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition = definition
        for path in EDITABLE_FIELDS:
            head = path.split(".", 1)[0]
            if "." in path and definition.get(head) is None:
                continue  # e.g. no infusion section for a sublingual protocol
            self.fields[path] = self._field(path)
            self.initial[path] = self._initial(path)

    def _field(self, path: str) -> forms.Field:
        label = _DRAFT_LABELS[path]
        if path == "title":
            return forms.CharField(label=label, max_length=200)
        if path == "monitoring.vitals_minutes_after_dose":
            return MinutesListField(
                label=label, required=False, help_text="Whole minutes, comma-separated."
            )
        if path in _DECIMALS:
            return forms.DecimalField(
                label=label,
                required=path not in _OPTIONAL,
                min_value=Decimal("0.001"),
                max_digits=8,
                decimal_places=3,
                help_text="Empty: no such cap." if path in _OPTIONAL else "",
            )
        if "grade" in path:
            return forms.IntegerField(label=label, min_value=0, max_value=5)
        return forms.IntegerField(label=label, min_value=1)

    def _initial(self, path: str) -> Any:
        value = _value_at(self.definition, path)
        if path == "monitoring.vitals_minutes_after_dose":
            return ", ".join(str(m) for m in value or ())
        if path in _DECIMALS and value is not None:
            return format(Decimal(value).normalize(), "f")
        return value

    def clean(self) -> dict[str, Any]:
        """Relations between fields the template dataclasses do not check themselves."""
        super().clean()
        data = self.cleaned_data
        start, minimum = data.get("dose.starting_amount"), data.get("dose.minimum_amount")
        if start is not None and minimum is not None and start < minimum:
            self.add_error("dose.starting_amount", "Must be at least the minimum amount.")
        kind = self.definition["dose"]["kind"]
        cap_path = "caps.max_mg_per_kg" if kind == "mg/kg" else "caps.max_mg"
        cap = data.get(cap_path)
        for path in ("dose.starting_amount", "dose.minimum_amount"):
            amount = data.get(path)
            if cap is not None and amount is not None and amount > cap:
                self.add_error(path, f"Above the cap of {format(cap.normalize(), 'f')}.")
        low, default, high = (
            data.get(f"infusion.{name}")
            for name in ("min_minutes", "default_minutes", "max_minutes")
        )
        if None not in (low, default, high) and not low <= default <= high:  # type: ignore[operator]
            self.add_error("infusion.default_minutes", "Must lie between the shortest and longest.")
        return data

    def changes(self) -> dict[str, Any]:
        """Only what differs from the stored draft, as the service takes it."""
        changed = {}
        for path, value in self.cleaned_data.items():
            before = _value_at(self.definition, path)
            if path == "monitoring.vitals_minutes_after_dose":
                if value != list(before or ()):
                    changed[path] = value
            elif path in _DECIMALS:
                if value != (None if before is None else Decimal(before)):
                    changed[path] = "" if value is None else format(value.normalize(), "f")
            elif value != before:
                changed[path] = value
        return changed


class CloneForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=500, label="Why a new version?", widget=forms.TextInput
    )


# --- the session safety policy --------------------------------------------------------------

_POLICY_HIDDEN = {"policy_id", "version"}


class SafetyPolicyForm(forms.Form):
    """Every policy value, typed; the pure SessionSafetyPolicy decides what is safe."""

    note = forms.CharField(
        label="What changed and why",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )

    def __init__(self, *args: Any, policy: SessionSafetyPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        for f in fields(SessionSafetyPolicy):
            if f.name in _POLICY_HIDDEN:
                continue
            label, unit, _source = POLICY_FIELDS[f.name]
            text = f"{label} ({unit})" if unit else label
            if f.type == "bool":
                self.fields[f.name] = forms.BooleanField(label=text, required=False)
            else:
                self.fields[f.name] = forms.IntegerField(label=text)
            self.initial[f.name] = getattr(policy, f.name)
        self.order_fields([*(name for name in self.fields if name != "note"), "note"])

    def changes(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "note" and value != getattr(self.policy, name)
        }


# --- treatment plans ------------------------------------------------------------------------

PLAN_MEASURE_CHOICES = [("phq9", "PHQ-9"), ("cssrs-screener", "C-SSRS screener")]


class PlanCreateForm(forms.Form):
    protocol = forms.ChoiceField(label="Protocol (published)")
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    current_amount = forms.DecimalField(
        label="Dose per session",
        required=False,
        min_value=Decimal("0.001"),
        max_digits=8,
        decimal_places=3,
        help_text="In the protocol's unit (mg/kg or mg). Empty: the protocol's starting amount.",
    )
    infusion_minutes = forms.IntegerField(
        label="Infusion duration (min)", required=False, min_value=1, max_value=600
    )
    concentration_mg_per_ml = forms.DecimalField(
        label="Concentration (mg/mL)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=7,
        decimal_places=2,
    )
    diluent_volume_ml = forms.DecimalField(
        label="Diluent volume (mL)",
        required=False,
        min_value=Decimal("0"),
        max_digits=7,
        decimal_places=2,
    )
    plan_measures = forms.MultipleChoiceField(
        label="Pre-session questionnaires",
        required=False,
        choices=PLAN_MEASURE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )
    response_measure = forms.ChoiceField(
        label="Titration: response measure",
        required=False,
        choices=[("", "none"), *PLAN_MEASURE_CHOICES[:1]],
    )
    raise_when_score_above = forms.IntegerField(
        label="Titration: consider raising when the score is above",
        required=False,
        min_value=0,
        help_text="Prescriber's choice; the step and caps are the protocol's.",
    )
    childbearing_potential = forms.BooleanField(label="Childbearing potential", required=False)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, protocols: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocols = {str(p.public_id): p for p in protocols}
        protocol_field = self.fields["protocol"]
        assert isinstance(protocol_field, forms.ChoiceField)
        protocol_field.choices = [
            ("", "Choose a protocol"),
            *((str(p.public_id), f"{p.key} · {p.title}") for p in protocols),
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("raise_when_score_above") is not None and not data.get("response_measure"):
            self.add_error("response_measure", "Choose the measure the threshold applies to.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        titration = {}
        if data["response_measure"]:
            titration["response_measure"] = data["response_measure"]
            if data["raise_when_score_above"] is not None:
                titration["raise_when_score_above"] = data["raise_when_score_above"]
        return {
            "protocol": self.protocols[data["protocol"]],
            "start_date": data["start_date"],
            "current_amount": data["current_amount"],
            "infusion_minutes": data["infusion_minutes"],
            "concentration_mg_per_ml": data["concentration_mg_per_ml"],
            "diluent_volume_ml": data["diluent_volume_ml"] or 0,
            "titration": titration,
            "plan_measures": list(data["plan_measures"]),
            "childbearing_potential": data["childbearing_potential"],
            "note": data["note"],
        }


class PhaseChangeForm(forms.Form):
    to_phase = forms.ChoiceField(label="Move to phase")
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, template: ProtocolTemplate, current: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        phase_field = self.fields["to_phase"]
        assert isinstance(phase_field, forms.ChoiceField)
        phase_field.choices = [
            (phase.name, phase.name) for phase in template.phases if phase.name != current
        ]


class PhaseExtendForm(forms.Form):
    """More dosing sessions in the current phase than it planned (docs/sources/sessions.md)."""

    extra_sessions = forms.IntegerField(
        label="Add dosing sessions to this phase", min_value=1, max_value=12
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="At least 10 characters: why the phase needs more sessions.",
    )


class TitrateForm(forms.Form):
    direction = forms.ChoiceField(
        choices=[("increase", "Raise one step"), ("decrease", "Lower one step")]
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="At least 10 characters: response, tolerance.",
    )
    sessions_at_current_amount = forms.IntegerField(
        label="Sessions given at the current dose", min_value=0
    )
    worst_adverse_event_grade = forms.IntegerField(
        label="Worst adverse event grade at this dose",
        required=False,
        min_value=1,
        max_value=5,
        help_text="Empty: none.",
    )
    weight_kg = forms.DecimalField(
        label="Current weight (kg)",
        required=False,
        min_value=Decimal("1"),
        max_digits=6,
        decimal_places=2,
        help_text="Lets the absolute mg cap hold a weight-based step short.",
    )
