"""A treated cohort for outcome tests: 40 patients with synthetic histories in organization A."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_scopes import scopes_disabled

from conftest import make_patient
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Patient


@pytest.fixture
def treated_cohort(prescriber, org_a):
    for index in range(40):
        make_patient(prescriber, mrn=f"C{index:04d}")
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=org_a))
    add_histories(
        organization=org_a,
        recorded_by=prescriber.user,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    return patients
