"""A treated cohort for outcome tests: 40 patients with synthetic histories in organization A."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_patient
from ketaclinic.fhir.bulk_export import bulk_export_request
from ketaclinic.outcomes.models import DataExport
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


def queue_bulk_export(
    members, organization, *, types: str = "Patient", since: str = ""
) -> DataExport:
    """A system-level FHIR bulk export asked for by compliance, queued (not run)."""
    with scope(organization=organization):
        return bulk_export_request(
            actor=actor_for(members["compliance"], channel="fhir"),
            level="system",
            types=types,
            since=since,
            run_in_background=False,
        )


@pytest.fixture
def bulk(settings, tmp_path, members, prescriber, org_a) -> DataExport:
    """Two patients and a queued bulk export of their Patient and Condition resources."""
    settings.VAR_DIR = tmp_path
    for index in range(2):
        make_patient(prescriber, mrn=f"B{index:04d}")
    return queue_bulk_export(
        members, org_a, types="Patient,Condition", since="2020-01-01T00:00:00Z"
    )
