"""Issue 15, no dead ends: the dose order shows what it would give as the prescriber types,
before signing, and says what to fix instead of refusing after the click; nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_patient, staff_client
from ketaclinic.sessions.models import DoseOrder
from ketaclinic.sessions.tests.builders import session_prechecked

pytestmark = pytest.mark.django_db


def test_the_dose_is_previewed_while_filling_the_order_and_nothing_is_signed(
    members: Any, django_assert_max_num_queries: Any
) -> None:
    actor = actor_for(members["prescriber"])
    patient = make_patient(actor)
    with scope(organization=actor.organization):
        session = session_prechecked(actor, patient)
    client = staff_client(members["prescriber"])
    sheet = client.get(f"/sessions/{session.public_id}/").content.decode()
    assert f'hx-get="/sessions/{session.public_id}/dose-preview/"' in sheet
    url = f"/sessions/{session.public_id}/dose-preview/"
    with django_assert_max_num_queries(40):
        html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'id="preview-dose"' in html
    assert " mg" in html
    refused = client.get(url, {"concentration_mg_per_ml": "-3"}).content.decode()
    assert "warning" in refused
    with scopes_disabled():
        assert not DoseOrder.objects.exists()
    assert staff_client(members["therapist"]).get(url).status_code == 403
