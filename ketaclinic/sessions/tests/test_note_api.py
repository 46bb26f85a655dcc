"""Reading a session note with its amendments over the JSON API (regression: only the staff
flowsheet showed a signed note and its amendments)."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, api_client
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import session_checked_in

pytestmark = pytest.mark.django_db


def test_a_signed_note_reads_with_its_amendments_oldest_first(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any, outsider: Any
) -> None:
    nurse = actor_for(members["nurse"])
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        client = api_client(members["nurse"])
        assert client.get(f"/api/v1/sessions/{session.public_id}/note").status_code == 404
        session = services.session_abort(actor=nurse, session=session, reason="Patient unwell")
        services.note_save(actor=nurse, session=session, text="Aborted before dosing.")
        services.note_sign(actor=prescriber, session=session)
        services.note_amend(actor=nurse, session=session, text="BP 150/95.", reason="late entry")
        services.note_amend(
            actor=prescriber, session=session, text="Rebook next week.", reason="plan agreed"
        )
    answer = client.get(f"/api/v1/sessions/{session.public_id}/note")
    assert answer.status_code == 200, answer.json()
    note = answer.json()
    assert note["text"] == "Aborted before dosing."
    assert note["signed_by"] == prescriber.user.username
    assert note["signed_at"] is not None
    assert len(note["content_hash"]) == 64
    assert note["patient"] == str(patient_a.public_id)
    assert [(a["text"], a["reason"], a["signed_by"]) for a in note["amendments"]] == [
        ("BP 150/95.", "late entry", members["nurse"].user.username),
        ("Rebook next week.", "plan agreed", prescriber.user.username),
    ]
    with scopes_disabled():
        read = AuditEvent.objects.get(action="sessions.note.read")
    assert read.patient_id == patient_a.public_id
    assert read.detail["amendments"] == 2
    assert api_client(outsider).get(f"/api/v1/sessions/{session.public_id}/note").status_code == 404
    denied = api_client(members["researcher"]).get(f"/api/v1/sessions/{session.public_id}/note")
    assert denied.status_code == 403
