from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse
from django_otp import login as otp_login

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.forms import StaffLoginForm
from ketaclinic.accounts.selectors import membership_active_for_user
from ketaclinic.core.http import client_address


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        response = super().form_valid(form)
        device = getattr(user, "otp_device", None)
        if device is not None:
            otp_login(self.request, device)
        membership = membership_active_for_user(user)
        audit_record(
            actor=None,
            user=user,
            organization=membership.organization if membership else None,
            channel="ui",
            client_address=client_address(self.request),
            action="accounts.login.succeeded",
            detail={"second_factor": device is not None},
        )
        return response

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        audit_record(
            actor=None,
            channel="ui",
            client_address=client_address(self.request),
            action="accounts.login.failed",
            outcome="denied",
            detail={"username": (form.data.get("username") or "")[:150]},
        )
        return super().form_invalid(form)

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        context["demo_hints"] = settings.KETACLINIC_DEMO_HINTS
        context["require_2fa"] = settings.KETACLINIC_REQUIRE_2FA
        return context


class LogoutView(auth_views.LogoutView):
    pass
