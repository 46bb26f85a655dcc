"""Checking a staff member's authenticator code outside the login form (a witness or approver
confirming on another person's screen).

Deliberately separate from the login: django-otp's own throttle and django-axes' lockout both
belong to the login page, so a wrong witness code must feed neither (anyone able to record a waste
could otherwise lock any colleague out of the login). Witness confirmation has its own throttle,
counted from its own audit events (inventory services).
"""

from __future__ import annotations

from typing import Any

from django_otp.oath import TOTP

from ketaclinic.accounts.models import EncryptedTOTPDevice


def totp_code_matches(user: Any, code: str) -> bool:
    """True when `code` is the current code (within the device's tolerance) of `user`'s
    confirmed authenticator. Touches no throttle and no replay counter of the login."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) > 8:
        return False
    device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return bool(totp.verify(int(code), device.tolerance))
