"""Issue 15 acceptance in a real browser (see the module docstring below once written)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django_scopes import scopes_disabled

from ketaclinic.accounts.models import Membership
from ketaclinic.demo.generator import build_demo
from tests.browser.shots import SHOTS_DIR, key_screens

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.skipif(os.environ.get("KETACLINIC_SHOTS") != "before", reason="taken once by hand")
def test_key_screens_before(page: Any, live_server: Any, settings: Any, tmp_path: Any) -> None:
    settings.VAR_DIR = tmp_path
    build_demo(patients=8, seed=5)
    with scopes_disabled():
        members = {
            m.user.username: m for m in Membership.objects.select_related("user", "organization")
        }
    paths = key_screens(page.context.browser, live_server.url, members, SHOTS_DIR / "before")
    print("\n".join(map(str, paths)))
