"""Consent forms: template authoring, and the signing form shared by the portal and the tablet."""

from __future__ import annotations

from typing import Any

from django import forms


class TemplateForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}))
    acknowledgements = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="One item a line, as key: text (e.g. dissociation: I understand ...).",
    )

    def clean_acknowledgements(self) -> list[dict[str, str]]:
        items = []
        for line in self.cleaned_data["acknowledgements"].splitlines():
            if not line.strip():
                continue
            key, sep, text = line.partition(":")
            if not sep:
                raise forms.ValidationError(f"Write each line as key: text ({line[:40]!r}).")
            items.append({"key": key.strip(), "text": text.strip()})
        return items

    @staticmethod
    def initial_from(template: Any) -> dict[str, Any]:
        return {
            "title": template.title,
            "body": template.body,
            "acknowledgements": "\n".join(
                f"{a['key']}: {a['text']}" for a in template.acknowledgements
            ),
        }


class SignForm(forms.Form):
    printed_name = forms.CharField(max_length=200, label="Type your full name")
    drawn_signature = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, version: Any, witness_required: bool = False, **kw: Any):
        super().__init__(*args, **kw)
        for item in version.acknowledgements:
            self.fields[f"ack_{item['key']}"] = forms.BooleanField(
                required=True, label=item["text"]
            )
        if witness_required:
            self.fields["witnessed"] = forms.BooleanField(
                required=True, label="I witnessed the patient read and sign this consent."
            )

    def acknowledged(self) -> list[str]:
        return [
            name[4:]
            for name, value in self.cleaned_data.items()
            if name.startswith("ack_") and value
        ]

    def ack_fields(self) -> list[Any]:
        return [self[name] for name in self.fields if name.startswith("ack_")]


class RevokeForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
