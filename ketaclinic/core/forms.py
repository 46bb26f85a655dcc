"""Putting a service's field errors back onto the Django form that collected the input, and
typed access to a form's fields for forms that fill their choices at runtime."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.core.errors import DomainError


def add_domain_errors(form: forms.BaseForm, error: DomainError) -> None:
    if not error.errors:
        form.add_error(None, error.detail)
        return
    for field_error in error.errors:
        field = field_error.field if field_error.field in form.fields else None
        if field is None and field_error.field.removesuffix("_unit") + "_unit" in form.fields:
            field = field_error.field
        form.add_error(field if field in form.fields else None, field_error.message)


def choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """The form's ChoiceField `name` (whose choices the form sets in __init__)."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a ChoiceField")
    return field


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """The form's ModelChoiceField `name` (whose queryset the form sets in __init__)."""
    field = form.fields[name]
    if not isinstance(field, forms.ModelChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a ModelChoiceField")
    return field
