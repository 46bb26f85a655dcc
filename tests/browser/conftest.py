"""Playwright on Debian's Chromium against pytest-django's live_server.

Never `playwright install`: it downloads a browser, which these machines cannot do. CI installs
Debian's chromium (see .ci/run); without it the browser tests are skipped, saying why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is absent; install Debian's chromium to run these")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    # Keep each phase's report on the item so the page fixture can screenshot a failed test.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    live_server: Any,
    transactional_db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """A fresh Chromium page per test.

    Not session-scoped on purpose: Playwright's sync API keeps an asyncio loop running in this
    thread while it is open, and Django refuses ORM calls under a running loop. Started after the
    database and live server, stopped before the database is flushed, with the ORM allowed in
    between (the test's own setup and assertions run in this thread).
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        yield page
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            RESULTS_DIR.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
            page.screenshot(path=str(RESULTS_DIR / f"{name}.png"), full_page=True)
        browser.close()
        # Django keeps connections per context (asgiref.Local on contextvars), and ORM calls made
        # while Playwright's loop runs get connections of their own; close them here, or
        # PostgreSQL refuses to drop the test database at the end ("accessed by other users").
        connections.close_all()


@pytest.fixture
def failed_responses(page: Any) -> list[str]:
    """Every response of 400 or above the page receives (a missing stylesheet shows up here)."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return failed


# The local SMTP server (aiosmtpd) of the messaging tests: e-mails the live server really sends.
from ketaclinic.messaging.tests.servers import smtp_inbox  # noqa: E402, F401
