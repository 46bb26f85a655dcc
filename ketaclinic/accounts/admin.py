from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse

from ketaclinic.accounts.models import AuditEvent, Clinic, Membership
from ketaclinic.core.admin_base import ReadOnlyTenantAdmin, TenantAdmin, actor_may_administer

admin.site.site_header = "ketaclinic administration"
admin.site.has_permission = actor_may_administer  # type: ignore[method-assign]


def _login_through_staff_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    # The admin has no login of its own: the staff login (with its second factor) is the only door.
    if request.user.is_authenticated:
        # Logged in but not a clinic admin: say so instead of bouncing between the two logins.
        return HttpResponseForbidden("The admin is for clinic admins only.")
    return redirect(f"{reverse('accounts:login')}?next={request.GET.get('next', '/admin/')}")


admin.site.login = _login_through_staff_login  # type: ignore[method-assign]


@admin.register(Clinic)
class ClinicAdmin(TenantAdmin):
    list_display = ("name", "time_zone", "phone")
    fields = ("name", "time_zone", "address", "phone")

    def save_model(self, request: HttpRequest, obj: Clinic, form: Any, change: bool) -> None:
        obj.organization = request.actor.organization  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ("user", "role", "home_clinic", "is_active")
    list_filter = ("role", "is_active")
    fields = ("role", "home_clinic", "is_active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users are created with `ketaclinic create-user` (password policy, 2FA)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("occurred_at", "actor_username", "role", "action", "outcome", "channel")
    list_filter = ("outcome", "channel")
    search_fields = ("action", "actor_username")
