"""Abstract bases shared by every app. No domain here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.core import clock

# Called with a row just before a change moves its `updated_at` (its version): the database still
# holds the version being replaced. Apps register here (ketaclinic.fhir keeps that version when
# FHIR clients have been served the resource); core knows none of them.
BEFORE_CHANGE: list[Callable[[models.Model], None]] = []


class ClockStampField(models.DateTimeField):
    """`auto_now`/`auto_now_add` read from `core.clock`, so rows written while the demo replays a
    clinic's past carry the replayed time (an alert "raised" yesterday says so), like every other
    time the services record. Outside a replay `clock.now()` is `timezone.now()`: no change.

    Migrations see a plain DateTimeField: the stored column is the same."""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        if self.auto_now or (self.auto_now_add and add):
            if self.auto_now and not add:
                for hook in BEFORE_CHANGE:
                    hook(model_instance)
            value = clock.now()
            before = getattr(model_instance, self.attname, None)
            if self.auto_now and not add and before is not None and value <= before:
                # A change always moves the stamp (it is the row's version, e.g. FHIR's
                # versionId), even in the same microsecond or under a stopped clock.
                value = before + timedelta(microseconds=1)
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DateTimeField", args, kwargs


class TimeStamped(models.Model):
    created_at = ClockStampField(auto_now_add=True)
    updated_at = ClockStampField(auto_now=True)

    class Meta:
        abstract = True


class PublicIdModel(TimeStamped):
    """A model whose integer key never leaves the database: URLs and APIs use `public_id`."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True


class OneTimeLink(PublicIdModel):
    """A signed, expiring, single-use link for someone without an account (e.g. a patient).

    Generic: `purpose` says what the link is for ("measures.response", later "consent.sign"),
    `target_type`/`target_id` name the object it opens and `payload` carries what the purpose
    needs. Only a SHA-256 of the secret is stored; see `ketaclinic.core.links`.
    """

    # By label, not by import: core knows no other app's code.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    purpose = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "purpose", "target_id"], name="otl_target")]

    def __str__(self) -> str:
        return f"{self.purpose} link {self.public_id}"
