"""Forms generated from an instrument definition: one accessible radio group per item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import choice_field
from ketaclinic.measures.definitions import Instrument, Item
from ketaclinic.measures.models import MeasureSchedule


def field_name(link_id: str) -> str:
    return f"item_{link_id}"


@dataclass(frozen=True)
class Question:
    number: int
    item: Item
    text: str
    field: forms.BoundField
    critical: bool = False  # a critical-item rule watches it (PHQ-9 item 9)


class QuestionnaireForm(forms.Form):
    """Built from the definition, never by hand; the service re-validates every answer."""

    def __init__(self, instrument: Instrument, language: str = "en", *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.instrument = instrument
        self.language = language
        for item in instrument.items:
            self.fields[field_name(item.link_id)] = forms.TypedChoiceField(
                label=item.label(language),
                choices=[(o.value, o.label(language)) for o in item.options],
                coerce=int,
                empty_value=None,
                # Items behind skip logic (C-SSRS) are optional here; the scorer decides.
                required=item.required and item.enable_when is None,
                widget=forms.RadioSelect,
                error_messages={"required": "Choose one answer."},
            )

    @property
    def questions(self) -> list[Question]:
        critical = {rule.link_id for rule in self.instrument.critical_items}
        return [
            Question(
                number=index,
                item=item,
                text=item.texts.get(self.language)
                or item.texts.get("en")
                or item.label(self.language),
                field=self[field_name(item.link_id)],
                critical=item.link_id in critical,
            )
            for index, item in enumerate(self.instrument.items, start=1)
        ]

    def review(self) -> list[dict[str, Any]]:
        """Each question with the answer chosen, in order, for the review step (valid form)."""
        rows = []
        for q in self.questions:
            value = self.cleaned_data.get(field_name(q.item.link_id))
            option = next((o for o in q.item.options if o.value == value), None)
            threshold = next(
                (
                    c.threshold
                    for c in self.instrument.critical_items
                    if c.link_id == q.item.link_id
                ),
                None,
            )
            rows.append(
                {
                    "number": q.number,
                    "text": q.text,
                    "answer": option.label(self.language) if option else "",
                    "critical": q.critical,
                    "flagged": threshold is not None and value is not None and value >= threshold,
                    "name": q.field.html_name,
                    "value": "" if value is None else value,
                }
            )
        return rows

    def answers(self) -> dict[str, int | None]:
        return {
            item.link_id: self.cleaned_data.get(field_name(item.link_id))
            for item in self.instrument.items
            if self.cleaned_data.get(field_name(item.link_id)) is not None
        }

    def add_service_errors(self, error: DomainError) -> None:
        """The service's verdict on the form: its summary on top, each item's message beside it."""
        self.add_error(None, error.detail)
        for field_error in error.errors:
            name = field_name(field_error.field.removeprefix("answers."))
            if name in self.fields:
                self.add_error(name, field_error.message)


class CorrectionForm(forms.Form):
    correction_reason = forms.CharField(
        label="Why is the earlier response corrected?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="Action taken",
        max_length=4000,
        help_text="e.g. safety plan reviewed, patient called, seen in clinic",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class LinkForm(forms.Form):
    instrument_id = forms.ChoiceField(label="Questionnaire")
    language = forms.ChoiceField(label="Language", choices=[("en", "English"), ("es", "Español")])

    def __init__(self, instruments: list[Instrument], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        choice_field(self, "instrument_id").choices = [(i.id, i.title) for i in instruments]


class ScheduleForm(forms.Form):
    instrument_id = forms.ChoiceField(label="Questionnaire")
    cadence = forms.ChoiceField(choices=MeasureSchedule.Cadence.choices)
    language = forms.ChoiceField(label="Language", choices=[("en", "English"), ("es", "Español")])

    def __init__(self, instruments: list[Instrument], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        choice_field(self, "instrument_id").choices = [(i.id, i.title) for i in instruments]
