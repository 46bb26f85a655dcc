from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice


class StaffLoginForm(OTPAuthenticationFormMixin, AuthenticationForm):
    """Username, password and the 6-digit authenticator code, checked in that order."""

    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]*"}
        ),
        help_text="The 6-digit code from your authenticator app.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        if user is None:
            return cleaned
        if settings.KETACLINIC_REQUIRE_2FA or self._device_of(user) is not None:
            if self._device_of(user) is None:
                raise forms.ValidationError(
                    "Two-factor authentication is required and no authenticator is enrolled for "
                    "this account. Ask your clinic admin to enroll one.",
                    code="no_device",
                )
            self.clean_otp(user)
        return cleaned

    def _chosen_device(self, user: Any) -> TOTPDevice | None:
        # One authenticator per staff account: choose it instead of asking the user.
        return self._device_of(user)

    @staticmethod
    def _device_of(user: Any) -> TOTPDevice | None:
        return TOTPDevice.objects.filter(user=user, confirmed=True).first()
