"""Rows written while the demo replays a moment carry that moment as created/updated time
(core.models.ClockStampField; here because core's own tests may not import a domain app)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from django_scopes import scope

from conftest import make_patient
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.django_db

YESTERDAY_EVENING = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def test_a_row_written_in_a_replay_is_stamped_with_the_replayed_time(prescriber) -> None:
    with clock.replaying(YESTERDAY_EVENING):
        patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        stored = Patient.objects.get(pk=patient.pk)
    assert stored.created_at == YESTERDAY_EVENING
    assert stored.updated_at == YESTERDAY_EVENING


def test_outside_a_replay_the_stamp_is_the_real_time(prescriber) -> None:
    before = timezone.now()
    patient = make_patient(prescriber)
    assert before <= patient.created_at <= timezone.now()
