from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django_otp.forms import OTPAuthenticationFormMixin

from ketaclinic.accounts.models import EncryptedTOTPDevice


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

    # One answer whatever was wrong (username, password, code, enrolment): a different message
    # for a wrong code would tell an attacker that the password was right.
    GENERIC_ERROR = (
        "The username, password or authenticator code is not correct (no authenticator enrolled "
        "yet? ask your clinic admin)."
    )

    def clean(self) -> dict[str, Any]:
        try:
            cleaned = super().clean()
            user = self.get_user()
            if user is not None and (
                settings.KETACLINIC_REQUIRE_2FA or self._device_of(user) is not None
            ):
                if self._device_of(user) is None:
                    raise forms.ValidationError("no device", code="no_device")
                self.clean_otp(user)
        except forms.ValidationError as error:
            if self.user_cache is not None:
                # The password was right but a later factor failed: count it toward the lockout
                # like a wrong password (django-axes listens to this signal).
                user_login_failed.send(
                    sender=__name__,
                    credentials={"username": self.cleaned_data.get("username", "")},
                    request=self.request,
                )
                self.user_cache = None
            raise forms.ValidationError(self.GENERIC_ERROR, code="invalid_login") from error
        return cleaned

    def _chosen_device(self, user: Any) -> EncryptedTOTPDevice | None:
        # One authenticator per staff account: choose it instead of asking the user.
        return self._device_of(user)

    @staticmethod
    def _device_of(user: Any) -> EncryptedTOTPDevice | None:
        return EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).first()
