"""Forms of the set-up screens. They only parse; the services check and write."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.accounts.chairs import CAPABILITY_LABELS, ChairCapability
from ketaclinic.accounts.models import Clinic, Membership, known_time_zones
from ketaclinic.accounts.roles import ROLE_LABELS, Cap, Role, role_can
from ketaclinic.core.forms import choice_field, model_choice_field
from ketaclinic.inventory.models import StorageLocation
from ketaclinic.inventory.services import PRODUCT_FORMS

ROLE_CHOICES = [(r.value, ROLE_LABELS[r]) for r in Role]
CAPABILITY_CHOICES = [(c.value, CAPABILITY_LABELS[c]) for c in ChairCapability]


class DateInput(forms.DateInput):
    input_type = "date"


def _time_zones() -> list[tuple[str, str]]:
    return [(tz, tz) for tz in sorted(known_time_zones()) if "/" in tz or tz == "UTC"]


class ClinicForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.ChoiceField(choices=_time_zones, initial="UTC")
    address = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    phone = forms.CharField(max_length=40, required=False)
    rems_setting_id = forms.CharField(
        label="REMS healthcare setting ID",
        max_length=40,
        required=False,
        help_text="Needed before esketamine is given here.",
    )
    rems_certified_on = forms.DateField(
        label="REMS certified on", required=False, widget=DateInput()
    )
    on_call_clinician = forms.ChoiceField(
        label="On-call clinician", required=False, help_text="Answers escalated safety alerts."
    )
    escalation_phone = forms.CharField(label="On-call phone", max_length=40, required=False)

    def __init__(self, *args: Any, clinicians: list[Membership] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        choice_field(self, "on_call_clinician").choices = [("", "Nobody yet")] + [
            (m.user.username, f"{m.user.display_name} ({m.get_role_display()})")
            for m in clinicians
            if role_can(m.role, Cap.ALERT_ACKNOWLEDGE)
        ]

    @staticmethod
    def initial_for(clinic: Clinic) -> dict[str, Any]:
        return {
            "name": clinic.name,
            "time_zone": clinic.time_zone,
            "address": clinic.address,
            "phone": clinic.phone,
            "rems_setting_id": clinic.rems_setting_id,
            "rems_certified_on": clinic.rems_certified_on,
            "on_call_clinician": clinic.on_call_clinician.username
            if clinic.on_call_clinician
            else "",
            "escalation_phone": clinic.escalation_phone,
        }


class ChairForm(forms.Form):
    clinic: forms.ModelChoiceField[Clinic] = forms.ModelChoiceField(
        queryset=Clinic.objects.none(), to_field_name="public_id", empty_label=None
    )
    number = forms.IntegerField(min_value=1, max_value=999)
    name = forms.CharField(max_length=60, required=False, help_text='e.g. "Quiet room"')
    capabilities = forms.MultipleChoiceField(
        label="Can host",
        choices=CAPABILITY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "clinic").queryset = Clinic.objects.all()


class ChairEditForm(forms.Form):
    name = forms.CharField(max_length=60, required=False)
    capabilities = forms.MultipleChoiceField(
        label="Can host", choices=CAPABILITY_CHOICES, widget=forms.CheckboxSelectMultiple
    )


class ProductForm(forms.Form):
    form = forms.ChoiceField(label="Product", choices=list(PRODUCT_FORMS.items()))
    strength_mg = forms.DecimalField(
        label="Strength (mg)",
        required=False,
        help_text="mg per mL for a vial, mg per troche; 28 for an esketamine device",
    )
    units_per_container = forms.DecimalField(
        label="Per container",
        required=False,
        help_text="mL per vial, or troches per bottle (empty for esketamine)",
    )
    ndc = forms.CharField(
        label="NDC", max_length=20, required=False, help_text="As on the label, e.g. 0409-2051-05"
    )


class LocationForm(forms.Form):
    clinic: forms.ModelChoiceField[Clinic] = forms.ModelChoiceField(
        queryset=Clinic.objects.none(), to_field_name="public_id", empty_label=None
    )
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=StorageLocation.Kind.choices)
    dea_registration_number = forms.CharField(
        label="DEA registration number", max_length=20, required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "clinic").queryset = Clinic.objects.all()


class StaffForm(forms.Form):
    username = forms.CharField(max_length=150)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial=Role.NURSE.value,
        help_text="Prescriber, compliance and clinic admin need a second clinic admin's approval.",
    )
    reason = forms.CharField(max_length=500, required=False)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    reason = forms.CharField(max_length=500, required=False)


class DeactivateForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class EscalationForm(forms.Form):
    escalation_minutes = forms.IntegerField(
        label="Escalate an unacknowledged safety alert after (minutes)",
        min_value=1,
        max_value=1440,
    )
    escalation_role = forms.ChoiceField(label="Escalate to", choices=ROLE_CHOICES)


class PatientPagesForm(forms.Form):
    """Sign-in links and crisis numbers (messaging.patient_pages); the service checks numbers."""

    sign_in_links_allowed = forms.BooleanField(
        required=False,
        label="Patients may sign in to the portal with a link e-mailed to them",
        help_text="Off by default. A patient asks for the link on the portal's login page; it "
        "goes to the e-mail address the clinic has for them, works once and for 15 minutes.",
    )
    crisis_line_number = forms.CharField(
        max_length=20,
        label="Crisis line number",
        help_text="Shown to every patient, and after an answer that raises a safety alert. "
        "US default: 988.",
    )
    crisis_line_name = forms.CharField(
        max_length=80, label="Crisis line name", help_text="US default: Suicide & Crisis Lifeline."
    )
    crisis_line_name_es = forms.CharField(
        max_length=80,
        required=False,
        label="Crisis line name in Spanish",
        help_text="Shown on Spanish questionnaires; left empty, the name above is used.",
    )
    crisis_line_takes_texts = forms.BooleanField(
        required=False, label="The crisis line also takes text messages"
    )
    emergency_number = forms.CharField(
        max_length=20, label="Emergency number", help_text="US default: 911."
    )
    note = forms.CharField(
        max_length=2000, required=False, label="Why the change (kept with this version)"
    )
