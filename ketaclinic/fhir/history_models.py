"""Stored versions of FHIR resources written through /fhir/r4/ (vread, _history, 410 after delete)."""

from __future__ import annotations

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Organization


class ResourceVersion(models.Model):
    """One version of one resource as the server returned it after a create, update or delete.

    The clinical rows stay the source of truth; this is the record of what clients were served,
    so a vread returns each version unchanged. A delete leaves a version without a resource.
    """

    class Method(models.TextChoices):
        CREATE = "POST", "create"
        UPDATE = "PUT", "update"
        DELETE = "DELETE", "delete"

    id = models.BigAutoField(primary_key=True)
    # No index of its own: every index of the table starts with the organization.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=64)
    # The id as a UUID where it is one: searches leave deleted rows out with a subquery on it.
    resource_uuid = models.UUIDField(null=True, blank=True)
    version_id = models.CharField(max_length=32)
    method = models.CharField(max_length=6, choices=Method.choices)
    recorded_at = models.DateTimeField()
    resource = models.JSONField(null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        # One resource's versions (the latest, vread, instance history) are found by the
        # unique constraint's prefix; deletions only by their own index: a create or update
        # adds an entry to two indexes, not five (issue 13).
        indexes = [
            models.Index(fields=["organization", "recorded_at", "id"], name="fhirver_since"),
            models.Index(
                fields=["organization", "resource_type", "resource_uuid"],
                condition=models.Q(method="DELETE"),
                name="fhirver_deletions",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "resource_type", "resource_id", "version_id"],
                name="fhirver_unique_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version_id}"
