"""A refusal is audited even when the transaction it happened in is rolled back.

A FHIR create looks its subject up inside the transaction that writes the resource; a lookup the
organization does not have records `patients.patient.lookup_denied` and raises, and the raise
rolled the event back with the rest: the refused probe left no trace at all (the PHI net saw an
event counted and wrote none either). Now every refusal a rolled-back transaction took with it is
written again after the request, exactly once; the JSON API's lookup, made outside a transaction,
was always recorded and still is, once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction

from conftest import actor_for, api_client, audit_count, make_patient
from ketaclinic.accounts.audit import audit_record, refusals_kept
from ketaclinic.fhir.tests.helpers import bp_json, post

pytestmark = pytest.mark.django_db
DENIED = "patients.patient.lookup_denied"


def _events(**filters: Any) -> int:
    return audit_count(**filters)


def test_a_fhir_create_for_a_patient_not_found_leaves_one_refusal(members) -> None:
    client = api_client(members["nurse"])
    before, all_before = _events(action=DENIED, outcome="denied"), _events()
    response = post(client, "/fhir/r4/Observation", bp_json(str(uuid.uuid4())))
    assert response.status_code == 404
    assert _events(action=DENIED, outcome="denied") == before + 1
    assert _events() == all_before + 1  # that one, and no generic event beside it


def test_a_fhir_create_for_another_clinics_patient_leaves_one_refusal(
    members, outsider, org_b
) -> None:
    theirs = make_patient(actor_for(outsider), mrn="B-0001")
    client = api_client(members["nurse"])
    before = _events(action=DENIED, outcome="denied")
    response = post(client, "/fhir/r4/Observation", bp_json(str(theirs.public_id)))
    assert response.status_code == 404
    assert _events(action=DENIED, outcome="denied") == before + 1


def test_a_transaction_bundle_refused_for_its_subject_leaves_one_refusal(members) -> None:
    client = api_client(members["nurse"])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": bp_json(str(uuid.uuid4())),
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    before = _events(action=DENIED, outcome="denied")
    response = post(client, "/fhir/r4/", bundle)
    assert response.status_code == 404
    assert _events(action=DENIED, outcome="denied") == before + 1


def test_the_json_api_refusal_is_recorded_once(members) -> None:
    client = api_client(members["nurse"])
    before = _events(action=DENIED, outcome="denied")
    response = client.post(
        f"/api/v1/patients/{uuid.uuid4()}/weights",
        {"value": "70", "unit": "kg"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert _events(action=DENIED, outcome="denied") == before + 1


def test_only_refusals_rolled_back_are_written_again(members) -> None:
    actor = actor_for(members["nurse"])
    with refusals_kept():
        with transaction.atomic():
            audit_record(actor=actor, action="test.kept", outcome="denied")
        with pytest.raises(RuntimeError, match="refused"):
            _refuse_in_a_transaction(actor)
    assert _events(action="test.kept") == 1  # committed: not written twice
    assert _events(action="test.rolled_back") == 1  # written again, once
    assert _events(action="test.change") == 0  # a change rolled back stays undone


def _refuse_in_a_transaction(actor: Any) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="test.rolled_back", outcome="denied")
        audit_record(actor=actor, action="test.change", outcome="success")
        raise RuntimeError("refused")
