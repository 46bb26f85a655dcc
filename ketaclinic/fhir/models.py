"""The FHIR resources as received: one row per version of a resource, beside the clinical row it
feeds (or alone, for types the clinic keeps but never reasons about: Practitioner, Organization,
MedicationRequest, historical Encounters, letters, Provenance, ...).

The clinical rows stay the source of truth for every rule; these rows keep every element a client
sent, so a read returns it unchanged (dates with their precision and offset, all codings,
identifiers, extensions) with the server's additions (id, meta, and keys the server adds).
A row's `version_id` is the clinical row's version when it was stored (`common.version_id`): once
the clinical row changes elsewhere (the chart, a correction), the resource is emitted from the
clinical row again, never a stale copy.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization, User
from ketaclinic.patients.models import Patient


class StoredResource(models.Model):
    class Source(models.TextChoices):
        API = "api", "FHIR API"
        IMPORT = "import", "Import"

    # No index of its own: every index of the table starts with the organization.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=64)
    version_id = models.CharField(max_length=32)
    # The patient whose compartment holds the resource (None for Practitioner, Organization, ...).
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resource = models.JSONField()
    # True on the newest version only; a delete stores a last version with deleted set.
    current = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)
    # Only the resource's own row is served from here (`generic`); otherwise it sits beside a
    # clinical row and is served only while that row is at `version_id`.
    generic = models.BooleanField(default=False)
    # Search columns of generic resources: the first identifier as "system|value", every coding
    # of the main code (and of the categories) as " system|code " tokens, the status, the clinically relevant time.
    identifier_key = models.CharField(max_length=200, blank=True)
    codes = models.TextField(blank=True)
    categories = models.TextField(blank=True)
    status = models.CharField(max_length=40, blank=True)
    # Reference search columns (Provenance.target): " Type/id " per reference, for `target=` and
    # `_revinclude=Provenance:target` (a scan of this type's rows only, by the index on type).
    targets = models.TextField(blank=True)
    effective = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    # What makes an imported resource the same on a second run (identifier, else the sender's
    # fullUrl, else Type/id): the importer's duplicate check.
    source_key = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField()
    # Never looked up by user (only a user's deletion would ask, and users are deactivated):
    # no index to add an entry to on every write.
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "resource_type", "resource_id", "version_id"],
                name="stored_resource_version_unique",
            )
        ]
        # One resource's rows are found by the unique constraint's prefix (a handful of
        # versions at most). The search columns are read for generic rows only (generic_queryset,
        # the importer's duplicate check), so only those rows are indexed by them; a patient's
        # rows beside the chart (bulk export) are found by the patient's own index. A FHIR create
        # of a chart resource adds its received JSON to three indexes, not eight (issue 13).
        indexes = [
            models.Index(
                fields=["organization", "resource_type", "identifier_key"],
                condition=models.Q(generic=True),
                name="stored_res_generic_identifier",
            ),
            models.Index(
                fields=["organization", "resource_type", "patient", "current"],
                condition=models.Q(generic=True),
                name="stored_res_generic_patient",
            ),
            models.Index(
                fields=["organization", "resource_type", "source_key"],
                condition=models.Q(generic=True),
                name="stored_res_generic_source_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version_id}"

    # The registry and Bundle code speak of `public_id` and `updated_at` for every stored object.
    @property
    def public_id(self) -> str:
        return self.resource_id

    @property
    def updated_at(self) -> Any:
        return self.recorded_at


# Served versions (vread, _history) and SMART on FHIR: each in its own module.
from ketaclinic.fhir.history_models import ResourceVersion  # noqa: E402
from ketaclinic.fhir.smart.models import (  # noqa: E402
    SmartAssertionUse,
    SmartAuthorizationCode,
    SmartClient,
    SmartGrant,
)

__all__ = [
    "ResourceVersion",
    "SmartAssertionUse",
    "SmartAuthorizationCode",
    "SmartClient",
    "SmartGrant",
    "StoredResource",
]
