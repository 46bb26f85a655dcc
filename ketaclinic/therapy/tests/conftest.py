from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, make_member
from ketaclinic.sessions.tests.builders import session_checked_in


@pytest.fixture
def therapist(members: dict[str, Any]) -> Any:
    return actor_for(members["therapist"])


@pytest.fixture
def other_therapist(org_a: Any) -> Any:
    return actor_for(make_member(org_a, "therapist", username="second-therapist"))


@pytest.fixture
def kap(prescriber: Any, patient_a: Any, traveller: Any) -> dict[str, Any]:
    """A patient checked in for a dosing session, with its plan."""
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    return {"patient": patient_a, "session": session, "plan": session.plan}
