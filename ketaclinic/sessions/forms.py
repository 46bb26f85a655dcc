"""HTML forms of the flowsheet; the services receive plain values."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms

from ketaclinic.core.localtime import clock
from ketaclinic.sessions import rems
from ketaclinic.sessions.adverse_events import KETAMINE_ADVERSE_EVENTS
from ketaclinic.sessions.models import AdverseEvent
from ketaclinic.sessions.services import CADSS_MAX, COMPUTED_ITEMS, MOAAS_RANGE


class VitalsForm(forms.Form):
    systolic = forms.IntegerField(required=False, min_value=1, max_value=400)
    diastolic = forms.IntegerField(required=False, min_value=1, max_value=300)
    heart_rate = forms.IntegerField(required=False, min_value=1, max_value=400)
    spo2 = forms.IntegerField(required=False, min_value=1, max_value=100, label="SpO2")
    respiratory_rate = forms.IntegerField(required=False, min_value=1, max_value=100)


class AdverseEventForm(forms.Form):
    event_code = forms.ChoiceField(choices=[(e.code, e.label) for e in KETAMINE_ADVERSE_EVENTS])
    grade = forms.TypedChoiceField(choices=[(g, g) for g in range(1, 6)], coerce=int)
    serious = forms.BooleanField(required=False)
    action_taken = forms.CharField(required=False, max_length=2000)
    outcome = forms.ChoiceField(choices=AdverseEvent.Outcome.choices, initial="ongoing")
    description = forms.CharField(required=False, max_length=2000)


class DischargeForm(forms.Form):
    alert_and_oriented = forms.BooleanField(required=False)
    sedation_resolved = forms.BooleanField(required=False)
    dissociation_resolved = forms.BooleanField(required=False)
    respiratory_depression_resolved = forms.BooleanField(required=False)
    clinically_stable = forms.BooleanField(required=False)
    escort_present = forms.BooleanField(required=False)


# --- the session workflow on the flowsheet and the chart ------------------------------------------


class ScheduleForm(forms.Form):
    """Schedule a session of one of the patient's active plans (time in the clinic's zone)."""

    plan = forms.ChoiceField(label="Treatment plan")
    scheduled_at = forms.DateTimeField(
        required=False,
        label="Time (clinic local)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    chair = forms.IntegerField(required=False, min_value=1, max_value=100)

    def __init__(self, *args: Any, plans: Iterable[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans = {str(p.public_id): p for p in plans}
        plan_field = self.fields["plan"]
        assert isinstance(plan_field, forms.ChoiceField)
        plan_field.choices = [
            (key, f"{p.protocol_key} · {p.phase} · from {p.start_date:%Y-%m-%d}")
            for key, p in self.plans.items()
        ]

    def clean_scheduled_at(self) -> Any:
        # Naive here: the view reads it in the clinic's time zone, not the server's.
        value = self.cleaned_data["scheduled_at"]
        if value is None and not self.data.get("start"):
            raise forms.ValidationError("Give the time, or start the session now.")
        return value.replace(tzinfo=None) if value is not None else value


class CheckInForm(forms.Form):
    chair = forms.IntegerField(required=False, min_value=1, max_value=100)


class PrecheckForm(VitalsForm):
    """The nurse's checklist ticks, the pre-dose vitals and, for a prescriber, the BP override.

    The screening, consent, weight and BP-gate items are decided by the service, never ticked.
    """

    override_reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Prescriber override of the BP gate (justification)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(
        self, *args: Any, items: Iterable[Any] = (), allow_override: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tick_codes = []
        for item in items:
            if item.code in COMPUTED_ITEMS:
                continue
            self.tick_codes.append(item.code)
            self.fields[f"check_{item.code}"] = forms.BooleanField(required=False, label=item.label)
        # Ticks first, then vitals, then the override.
        order = [f"check_{c}" for c in self.tick_codes] + list(VitalsForm.base_fields)
        if allow_override:
            order.append("override_reason")
        else:
            del self.fields["override_reason"]
        self.order_fields(order)

    def checklist(self) -> dict[str, bool]:
        return {code: bool(self.cleaned_data.get(f"check_{code}")) for code in self.tick_codes}

    def vitals(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in VitalsForm.base_fields}


class DoseOrderForm(forms.Form):
    """Blank fields take the plan's parameters; the calculator decides the dose."""

    prescribed_amount = forms.DecimalField(
        required=False, min_value=Decimal("0.001"), max_digits=8, decimal_places=3
    )
    concentration_mg_per_ml = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), max_digits=7, decimal_places=2
    )
    infusion_minutes = forms.IntegerField(required=False, min_value=1, max_value=600)
    diluent_volume_ml = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=7, decimal_places=2
    )


class AdministrationForm(forms.Form):
    dose_mg = forms.DecimalField(
        label="Actual dose (mg)", min_value=Decimal("0.1"), max_digits=7, decimal_places=1
    )
    lot_number = forms.CharField(max_length=40)
    device_count = forms.IntegerField(required=False, min_value=1, max_value=10)
    completed = forms.BooleanField(required=False, label="Dosing already finished")
    note = forms.CharField(required=False, max_length=2000)


class NoteForm(forms.Form):
    text = forms.CharField(max_length=50_000, widget=forms.Textarea(attrs={"rows": 5}))


class AmendmentForm(forms.Form):
    text = forms.CharField(max_length=50_000, widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(min_length=5, max_length=200)


# --- observations, medications given, abort, the REMS form --------------------------------------


class _Ids:
    """Several small forms share the flowsheet: each gets its own id prefix, so labels and
    per-field error ids stay unique on the page."""

    id_prefix = "f"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class CadssForm(_Ids, forms.Form):
    """Dissociation: the CADSS total (23 items scored 0-4, so 0-92; clinical-reference §5.1)."""

    id_prefix = "cadss"
    score = forms.IntegerField(
        label="CADSS total (0-92)",
        min_value=0,
        max_value=int(CADSS_MAX),
        error_messages={"required": "Enter the CADSS total (0-92)."},
    )
    note = forms.CharField(required=False, max_length=2000)

    def observation(self) -> dict[str, Any]:
        return {"score": self.cleaned_data["score"], "note": self.cleaned_data["note"]}


class SedationForm(_Ids, forms.Form):
    """Sedation on the MOAA/S scale, 0-5 (0 = loss of consciousness; clinical-reference §2.1)."""

    id_prefix = "sedation"
    score = forms.TypedChoiceField(
        label="MOAA/S (0-5)",
        choices=[("", "—")] + [(str(n), str(n)) for n in range(int(MOAAS_RANGE[1]), -1, -1)],
        coerce=int,
        help_text="0 = no response (loss of consciousness): record it as an adverse event too.",
        error_messages={"required": "Choose the MOAA/S score (0-5)."},
    )
    note = forms.CharField(required=False, max_length=2000)

    def observation(self) -> dict[str, Any]:
        return {"score": self.cleaned_data["score"], "note": self.cleaned_data["note"]}


# The events a prescriber must hear about at once are recorded as adverse events (they
# escalate); the checklist holds the common, expected ones. "Other" needs a description.
SIDE_EFFECT_CHOICES = [
    (event.code, event.label)
    for event in KETAMINE_ADVERSE_EVENTS
    if not event.escalate_at_any_grade and event.code != "other"
]


class SideEffectsForm(_Ids, forms.Form):
    """The side-effects checklist: every item is recorded, ticked or not (none ticked = none)."""

    id_prefix = "side-effects"
    effects = forms.MultipleChoiceField(
        label="Side effects present",
        required=False,
        choices=SIDE_EFFECT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )
    note = forms.CharField(required=False, max_length=2000)

    def observation(self) -> dict[str, Any]:
        ticked = set(self.cleaned_data["effects"])
        return {
            "data": {code: code in ticked for code, _ in SIDE_EFFECT_CHOICES},
            "note": self.cleaned_data["note"],
        }


OBSERVATION_FORMS: dict[str, type[CadssForm | SedationForm | SideEffectsForm]] = {
    "cadss": CadssForm,
    "sedation": SedationForm,
    "side_effects": SideEffectsForm,
}

INTERVENTION_ROUTES = [
    ("oral", "Oral"),
    ("sublingual", "Sublingual"),
    ("intravenous", "Intravenous"),
    ("intramuscular", "Intramuscular"),
    ("subcutaneous", "Subcutaneous"),
    ("intranasal", "Intranasal"),
    ("inhaled", "Inhaled"),
    ("topical", "Topical"),
]


class InterventionForm(_Ids, forms.Form):
    """A medication given during the session (an antiemetic, an antihypertensive...)."""

    id_prefix = "intervention"
    drug_name = forms.CharField(label="Medication", max_length=120)
    dose_text = forms.CharField(label="Dose (e.g. 4 mg)", max_length=80)
    route = forms.ChoiceField(choices=[("", "—"), *INTERVENTION_ROUTES])
    reason = forms.CharField(max_length=200)
    rxnorm_code = forms.RegexField(
        label="RxNorm code",
        required=False,
        regex=r"^\d{1,20}$",
        error_messages={"invalid": "An RxNorm code is digits only."},
    )
    adverse_event = forms.ChoiceField(label="For adverse event", required=False)

    def __init__(self, *args: Any, events: Iterable[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = {str(e.public_id): e for e in events}
        field = self.fields["adverse_event"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—")] + [
            (key, f"{e.event_code} grade {e.grade} ({clock(e.onset_at)})")
            for key, e in self.events.items()
        ]

    def intervention(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["adverse_event"] = self.events.get(data["adverse_event"] or "")
        return data


class AbortForm(_Ids, forms.Form):
    id_prefix = "abort"
    reason = forms.CharField(
        label="Why is the session stopped?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the session is aborted."},
    )


_PMF_LABELS = {field.key: field.label for field in rems.PMF_FIELDS}
_YES_NO = [("yes", "Yes"), ("no", "No")]


def _yes_no(key: str) -> forms.TypedChoiceField:
    drugs = _PMF_LABELS[key]
    if drugs[1:2].islower():  # "Benzodiazepines" reads "benzodiazepines"; "MAOIs" stays
        drugs = drugs[0].lower() + drugs[1:]
    return forms.TypedChoiceField(
        label=f"Currently taking {drugs}?",
        choices=_YES_NO,
        coerce=lambda value: value == "yes",
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )


class PmfAnswersForm(_Ids, forms.Form):
    """The Patient Monitoring Form answers the session record cannot give (services.
    PMF_MANUAL_FIELDS). Blank leaves an answer as it was; completeness is checked at signing."""

    id_prefix = "pmf"
    concomitant_benzodiazepines = _yes_no("concomitant_benzodiazepines")
    concomitant_non_benzodiazepine_sedative_hypnotics = _yes_no(
        "concomitant_non_benzodiazepine_sedative_hypnotics"
    )
    concomitant_psychostimulants = _yes_no("concomitant_psychostimulants")
    concomitant_maois = _yes_no("concomitant_maois")
    concomitant_opioids = _yes_no("concomitant_opioids")
    minutes_until_ready_without_two_hour_rule = forms.IntegerField(
        label=_PMF_LABELS["minutes_until_ready_without_two_hour_rule"],
        required=False,
        min_value=0,
    )
    monitoring_hcp_phone = forms.RegexField(
        label="Monitoring healthcare provider's phone",
        required=False,
        max_length=40,
        regex=r"^\+?[0-9][0-9 ().\-/]{5,}[0-9](\s*(x|ext\.?)\s*[0-9]+)?$",
        error_messages={"invalid": "Enter a phone number: digits, spaces and + ( ) - ."},
    )
    monitoring_hcp_email = forms.EmailField(
        label="Monitoring healthcare provider's email", required=False, max_length=254
    )
    setting_address = forms.CharField(
        label=_PMF_LABELS["setting_address"],
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, pmf_data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        pmf_data = pmf_data or {}
        initial = {}
        for name in self.base_fields:
            value = pmf_data.get(name)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            if value not in (None, ""):
                initial[name] = value
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        # The patient left after this many minutes: they were ready by then at the latest.
        self.monitored_minutes = pmf_data.get("monitoring_duration_minutes")

    def clean_minutes_until_ready_without_two_hour_rule(self) -> int | None:
        value = self.cleaned_data["minutes_until_ready_without_two_hour_rule"]
        limit = self.monitored_minutes
        if value is not None and isinstance(limit, int) and value > limit:
            raise forms.ValidationError(
                f"The patient was monitored for {limit} minutes; they were ready to leave by then."
            )
        return value

    def answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.cleaned_data.items() if v is not None and v != ""}


def _not_after_today(value: date | None, today: date) -> None:
    if value is not None and value > today:
        raise forms.ValidationError("The date is in the future.")


class RemsEnrollForm(_Ids, forms.Form):
    id_prefix = "rems"
    enrolled_on = forms.DateField(
        label="Enrolled in the SPRAVATO REMS on", widget=forms.DateInput(attrs={"type": "date"})
    )
    rems_patient_id = forms.CharField(label="REMS patient ID", required=False, max_length=40)

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"enrolled_on": today})
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_enrolled_on(self) -> date:
        value = self.cleaned_data["enrolled_on"]
        _not_after_today(value, self.today)
        return value


class PmfSubmittedForm(_Ids, forms.Form):
    id_prefix = "pmf-submitted"
    submitted_on = forms.DateField(
        label="Submitted to the REMS on", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, today: date, treatment_date: date | None, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"submitted_on": today})
        super().__init__(*args, **kwargs)
        self.today, self.treatment_date = today, treatment_date

    def clean_submitted_on(self) -> date:
        value = self.cleaned_data["submitted_on"]
        _not_after_today(value, self.today)
        if self.treatment_date and value < self.treatment_date:
            raise forms.ValidationError("The form cannot be submitted before the treatment.")
        return value


class FrequencyOverrideForm(_Ids, forms.Form):
    id_prefix = "frequency"
    reason = forms.CharField(
        label="Clinical justification",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
