"""Admin access follows the role table, not Django's is_staff/permissions.

Clinical rows are read-only in the admin: every clinical write must pass through a service, where
the safety rules and the audit trail live.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

ADMIN_CAPABILITY = "admin.access"


def actor_may_administer(request: HttpRequest) -> bool:
    actor = getattr(request, "actor", None)
    return actor is not None and actor.channel == "ui" and actor.can(ADMIN_CAPABILITY)


class TenantAdmin(admin.ModelAdmin):
    """Editable configuration (clinics, memberships), limited to the admin's organization."""

    tenant_field = "organization"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        actor = request.actor  # type: ignore[attr-defined]
        return queryset.filter(**{self.tenant_field: actor.organization})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return actor_may_administer(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return actor_may_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return actor_may_administer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return actor_may_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTenantAdmin(TenantAdmin):
    """Clinical and audit rows: visible to the clinic admin, never changed here."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
