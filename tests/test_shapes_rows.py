"""shapes.rows_in: rows loaded by key through SQL compiled once per shape (issue 13). It gives
what the ORM's own query gives (instances with their select_related rows and deferred fields, or
a flat column), only the active organization's rows, one shape per table and power of two of
keys, and the ORM's query outside one organization's scope. The test settings also compare every
load with the ORM's (SQL_SHAPES_CHECKED)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import QuerySet
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.actor import Actor
from ketaclinic.core import clock, shapes
from ketaclinic.patients import services as chart
from ketaclinic.patients.models import BodyWeight, Patient

pytestmark = pytest.mark.django_db


def _weights(actor: Actor, count: int) -> tuple[Patient, list[int]]:
    with scope(organization=actor.organization):
        patient = make_patient(actor)
        for day in range(count):
            chart.weight_record(
                actor=actor,
                patient=patient,
                value=f"{70 + day}",
                unit="kg",
                measured_at=clock.now() - timedelta(days=day + 1),
            )
        keys = list(BodyWeight.objects.filter(patient=patient).values_list("pk", flat=True))
    return patient, keys


def _with_patient() -> QuerySet[Any]:
    return BodyWeight.objects.select_related("patient").only("weight_kg", "patient__public_id")


def test_rows_are_the_orms_and_only_the_scoped_organizations(
    members: dict[str, Any], org_b: Any
) -> None:
    shapes.clear()
    a = actor_for(members["prescriber"])
    b = actor_for(make_member(org_b, "prescriber", username="b-prescriber"))
    patient_a, keys_a = _weights(a, 5)
    patient_b, keys_b = _weights(b, 3)
    with scope(organization=a.organization):
        loaded = shapes.rows_in("weights", _with_patient, "pk", keys_a)
        expected = list(_with_patient().filter(pk__in=keys_a))
        assert sorted(_seen(w) for w in loaded) == sorted(_seen(w) for w in expected)
        assert shapes.rows_in("weights", _with_patient, "pk", keys_b) == []
    with scope(organization=b.organization):
        # Clinic A's shapes (5 keys -> 8, 3 keys -> 4), clinic B's values.
        assert {w.pk for w in shapes.rows_in("weights", _with_patient, "pk", keys_b)} == set(keys_b)
        assert shapes.rows_in("weights", _with_patient, "pk", keys_a) == []
        flat = shapes.rows_in(
            "patient-keys",
            lambda: Patient.objects.values_list("pk", flat=True),
            "public_id",
            [patient_a.public_id, patient_b.public_id],
        )
        assert flat == [patient_b.pk]
    assert sorted(size for (name, _, size, _) in shapes._loaders if name == "weights") == [4, 8]


def _seen(weight: BodyWeight) -> tuple[Any, ...]:
    """What a loaded weight holds, its deferred fields included."""
    return (
        weight.pk,
        weight.weight_kg,
        weight.patient.public_id,
        sorted(weight.get_deferred_fields()),
        sorted(weight.patient.get_deferred_fields()),
    )


def test_outside_one_organizations_scope_it_is_the_orms_query(members: dict[str, Any]) -> None:
    shapes.clear()
    _, keys = _weights(actor_for(members["prescriber"]), 2)
    with scopes_disabled():
        loaded = shapes.rows_in("weights", _with_patient, "pk", keys)
    assert {w.pk for w in loaded} == set(keys)
    assert not shapes._loaders
