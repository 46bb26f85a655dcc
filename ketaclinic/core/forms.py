"""Putting a service's field errors back onto the Django form that collected the input."""

from __future__ import annotations

from django import forms

from ketaclinic.core.errors import DomainError


def add_domain_errors(form: forms.Form, error: DomainError) -> None:
    if not error.errors:
        form.add_error(None, error.detail)
        return
    for field_error in error.errors:
        field = field_error.field if field_error.field in form.fields else None
        if field is None and field_error.field.removesuffix("_unit") + "_unit" in form.fields:
            field = field_error.field
        form.add_error(field if field in form.fields else None, field_error.message)
