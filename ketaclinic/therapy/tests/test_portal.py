"""The patient's own access (the portal) never shows a psychotherapy note: HIPAA excludes it from
the right of access (45 CFR 164.524(a)(1)(i); docs/sources/therapy.md), and the patient's login
reaches no staff or API route that could."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from ketaclinic.portal.tests.test_portal_intake import portal_login
from ketaclinic.therapy import services
from ketaclinic.therapy.tests.builders import signed_visit

pytestmark = pytest.mark.django_db
SECRET = "Process: shame about the divorce."


def test_the_portal_never_shows_a_psychotherapy_note(
    prescriber: Any, therapist: Any, kap: Any, org_a: Any
) -> None:
    with scope(organization=org_a):
        visit = signed_visit(therapist, kap["patient"], "integration")
        services.process_note_write(actor=therapist, visit=visit, text=SECRET)
    _, client = portal_login(prescriber, kap["patient"])
    for url in ("/portal/", "/portal/intake/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "divorce" not in response.content.decode()
    # The patient's login is no staff member: the staff and API routes refuse it.
    for url in (
        f"/therapy/visits/{visit.public_id}/",
        f"/api/v1/therapy/visits/{visit.public_id}/process-note",
    ):
        response = client.get(url)
        assert response.status_code in (302, 401, 403, 404), url
        assert "divorce" not in response.content.decode()
