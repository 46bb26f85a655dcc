"""Turning Django model validation into the application's field-level errors."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models

from ketaclinic.core.errors import FieldError, ValidationFailed


def full_clean_or_raise(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False)
    except ValidationError as exc:
        raise ValidationFailed(
            "Some fields are not valid.",
            [
                FieldError(field if field != "__all__" else "non_field", message)
                for field, messages in exc.message_dict.items()
                for message in messages
            ],
        ) from None
