"""Witness and approver confirmation by the witness's own authenticator code (issue 12).

Before: the witness re-typed a password checked with authenticate(), so five wrong "witness
passwords" typed by any token holder locked the witness out of the login page (429)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scope

from conftest import PASSWORD, totp_code
from ketaclinic.core.errors import SafetyStop
from ketaclinic.inventory import services
from ketaclinic.inventory.models import LedgerRow
from ketaclinic.inventory.services._common import WITNESS_CODE_ATTEMPTS

pytestmark = pytest.mark.django_db


def _adjust(nurse: Any, stock: dict[str, Any], approver: Any, code: str) -> Any:
    return services.stock_adjust(
        actor=nurse,
        lot=stock["lot"],
        location=stock["safe"],
        quantity_mg="-10",
        reason="keyed wrong",
        approver_username=approver.user.username,
        approver_code=code,
    )


def _wrong(user: Any) -> str:
    return f"{(int(totp_code(user)) + 1) % 1_000_000:06d}"


def test_the_approver_s_password_is_not_accepted_only_their_code(org_a, members, nurse, stock):
    approver = members["compliance"]
    with scope(organization=org_a):
        with pytest.raises(SafetyStop) as stop:
            _adjust(nurse, stock, approver, PASSWORD)
        assert "authenticator code were not accepted" in stop.value.detail
        row = _adjust(nurse, stock, approver, totp_code(approver.user))
    assert row.approver_role == "compliance"


def test_wrong_witness_codes_never_lock_the_witness_out_of_the_login(
    org_a, members, nurse, stock, settings
):
    approver = members["compliance"]
    with scope(organization=org_a):
        for _ in range(settings.AXES_FAILURE_LIMIT + 2):
            with pytest.raises(SafetyStop):
                _adjust(nurse, stock, approver, _wrong(approver.user))
    response = Client().post(
        reverse("accounts:login"),
        {
            "username": approver.user.username,
            "password": PASSWORD,
            "otp_token": totp_code(approver.user),
        },
    )
    assert response.status_code == 302  # logged in, not 429


def test_witness_codes_have_their_own_throttle(org_a, members, nurse, stock):
    approver = members["compliance"]
    with scope(organization=org_a):
        for _ in range(WITNESS_CODE_ATTEMPTS):
            with pytest.raises(SafetyStop):
                _adjust(nurse, stock, approver, _wrong(approver.user))
        with pytest.raises(SafetyStop) as stop:
            _adjust(nurse, stock, approver, totp_code(approver.user))  # even the right code
        assert "Too many wrong codes" in stop.value.detail
        assert LedgerRow.objects.filter(kind="adjustment").count() == 0
