from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice as _ClearTOTPDevice

from ketaclinic.accounts.models import AuditEvent, Clinic, Membership, RoleChange
from ketaclinic.core.admin_base import ReadOnlyTenantAdmin, actor_may_administer

admin.site.site_header = "ketaclinic administration"
admin.site.has_permission = actor_may_administer  # type: ignore[method-assign]


def _login_through_staff_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    # The admin has no login of its own: the staff login (with its second factor) is the only door.
    if request.user.is_authenticated:
        # Logged in but not a clinic admin: say so instead of bouncing between the two logins.
        return HttpResponseForbidden("The admin is for clinic admins only.")
    return redirect(f"{reverse('accounts:login')}?next={request.GET.get('next', '/admin/')}")


admin.site.login = _login_through_staff_login  # type: ignore[method-assign]


# Clinics, memberships and role changes are read-only here: they change on the Set-up screens
# (or the JSON API), whose services enforce separation of duties, two-person approval for
# privileged roles and one audit event per change (issue 12 item 1). An editable admin form would
# let a clinic admin make themselves prescriber with no approval and no audit event.


@admin.register(Clinic)
class ClinicAdmin(ReadOnlyTenantAdmin):
    list_display = ("name", "time_zone", "phone")
    fields = ("name", "time_zone", "address", "phone", "rems_setting_id", "rems_certified_on")


@admin.register(Membership)
class MembershipAdmin(ReadOnlyTenantAdmin):
    list_display = ("user", "role", "home_clinic", "is_active")
    list_filter = ("role", "is_active")
    fields = ("user", "role", "home_clinic", "is_active")


@admin.register(RoleChange)
class RoleChangeAdmin(ReadOnlyTenantAdmin):
    list_display = ("membership", "from_role", "to_role", "status", "requested_by", "decided_by")
    list_filter = ("status", "to_role")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("occurred_at", "actor_username", "role", "action", "outcome", "channel")
    list_filter = ("outcome", "channel")
    search_fields = ("action", "actor_username")


# django-otp's clear-text TOTP device is not used (accounts.totp): no admin form may create one.
if admin.site.is_registered(_ClearTOTPDevice):
    admin.site.unregister(_ClearTOTPDevice)
