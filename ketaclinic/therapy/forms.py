"""HTML forms of the therapy screens. Times are the clinic's wall clock (datetime-local); the
view attaches the clinic's zone. The note form is built from the visit kind's template."""

from __future__ import annotations

from typing import Any, TypedDict

from django import forms

from ketaclinic.therapy import notes
from ketaclinic.therapy.models import TherapyMeasurePlan


class _LocalTime(TypedDict):
    required: bool
    input_formats: list[str]
    widget: forms.DateTimeInput


LOCAL: _LocalTime = {
    "required": False,
    "input_formats": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    "widget": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
}


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, getattr(m, "label", m.value.capitalize())) for m in enum]


class VisitForm(forms.Form):
    kind = forms.ChoiceField(label="Visit", choices=_choices(notes.VisitKind))
    format = forms.ChoiceField(
        label="Format", choices=[("individual", "Individual"), ("group", "Group")]
    )
    group_size = forms.IntegerField(
        label="Patients in the group", required=False, min_value=2, max_value=50
    )
    modality = forms.ChoiceField(label="Modality", choices=_choices(notes.Modality))
    with_em = forms.BooleanField(label="Done with an E/M visit the same day", required=False)
    session = forms.ChoiceField(label="Dosing session (for dosing-session support)", required=False)
    started_at = forms.DateTimeField(label="Time in (clinic local; empty: now)", **LOCAL)
    appointment = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, sessions: list[Any] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.sessions = {str(s.public_id): s for s in sessions}
        self.fields["session"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (key, f"#{s.session_number} · {s.protocol_key} · {s.get_state_display()}")
            for key, s in self.sessions.items()
        ]


class NoteForm(forms.Form):
    """The draft note: the kind's template, the mental status, risk and narrative, time out."""

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        for field in notes.template_for(kind):
            if field.key == "post_session_checklist":
                self.fields[field.key] = forms.MultipleChoiceField(
                    label=field.label,
                    required=False,
                    choices=notes.POST_SESSION_CHECKLIST,
                    widget=forms.CheckboxSelectMultiple,
                    help_text=field.help,
                )
            else:
                self.fields[field.key] = forms.CharField(
                    label=field.label,
                    required=False,
                    max_length=notes.FIELD_LIMIT,
                    widget=forms.Textarea(attrs={"rows": 2}),
                )
        for field in notes.MENTAL_STATUS:
            self.fields[f"mental_status.{field.key}"] = forms.CharField(
                label=f"Mental status: {field.label.lower()}", required=False, max_length=500
            )
        self.fields["risk_level"] = forms.ChoiceField(
            label="Risk assessment",
            required=False,
            choices=[("", "—"), *_choices(notes.RiskLevel)],
        )
        self.fields["risk_notes"] = forms.CharField(
            label="Risk: what it is and what was done",
            required=False,
            max_length=4000,
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        self.fields["narrative"] = forms.CharField(
            label="Narrative",
            required=False,
            max_length=notes.NARRATIVE_LIMIT,
            widget=forms.Textarea(attrs={"rows": 5}),
        )
        self.fields["ended_at"] = forms.DateTimeField(
            label="Time out (clinic local; empty: now when signing)", **LOCAL
        )

    @staticmethod
    def initial_for(visit: Any, zone: Any) -> dict[str, Any]:
        initial: dict[str, Any] = dict(visit.content)
        initial.update({f"mental_status.{k}": v for k, v in visit.mental_status.items()})
        initial.update(
            risk_level=visit.risk_level, risk_notes=visit.risk_notes, narrative=visit.narrative
        )
        if visit.ended_at:
            initial["ended_at"] = visit.ended_at.astimezone(zone).replace(tzinfo=None)
        return initial

    def note_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        keys = [f.key for f in notes.template_for(self.kind)]
        return {
            "content": {key: data.get(key) for key in keys},
            "mental_status": {
                f.key: data.get(f"mental_status.{f.key}", "") for f in notes.MENTAL_STATUS
            },
            "risk_level": data.get("risk_level", ""),
            "risk_notes": data.get("risk_notes", ""),
            "narrative": data.get("narrative", ""),
        }


class AmendForm(forms.Form):
    text = forms.CharField(label="Amendment", widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(label="Reason", max_length=200)


class RiskFlagForm(forms.Form):
    level = forms.ChoiceField(
        label="Risk level",
        choices=[(m.value, m.label) for m in notes.RiskLevel if m != notes.RiskLevel.NONE],
    )
    reason = forms.CharField(
        label="What is the risk?", max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )


class ProcessNoteForm(forms.Form):
    text = forms.CharField(
        label="Psychotherapy note (private: only you can read it)",
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        label="Why must you read another clinician's psychotherapy note now?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AssignForm(forms.Form):
    therapist = forms.ChoiceField(label="Therapist")
    plan = forms.ChoiceField(label="Treatment plan")

    def __init__(self, *args: Any, therapists: list[Any], plans: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.therapists = {str(u.public_id): u for u in therapists}
        self.plans = {str(p.public_id): p for p in plans}
        self.fields["therapist"].choices = [  # type: ignore[attr-defined]
            (k, u.display_name) for k, u in self.therapists.items()
        ]
        self.fields["plan"].choices = [  # type: ignore[attr-defined]
            (k, f"{p.protocol_key} · from {p.start_date:%Y-%m-%d}") for k, p in self.plans.items()
        ]


class MessageForm(forms.Form):
    recipient = forms.ChoiceField(label="To")
    subject = forms.CharField(label="Subject", max_length=200)
    body = forms.CharField(
        label="Message", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, members: list[Any], me: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recipients = {str(m.user.public_id): m.user for m in members if m.user != me}
        self.fields["recipient"].choices = [  # type: ignore[attr-defined]
            (str(m.user.public_id), f"{m.user.display_name} ({m.get_role_display()})")
            for m in members
            if m.user != me
        ]


class MeasurePlanForm(forms.Form):
    instrument_id = forms.ChoiceField(label="Instrument")
    timing = forms.ChoiceField(label="When", choices=TherapyMeasurePlan.Timing.choices)

    def __init__(self, *args: Any, instruments: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instrument_id"].choices = [  # type: ignore[attr-defined]
            (i.id, i.short_title) for i in instruments
        ]
