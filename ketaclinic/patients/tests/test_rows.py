"""core.rows: the write API's one-row lookup and INSERT give what the ORM gives, inside the
tenant scope (tested here on the patient chart's own models)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from django.db.models.signals import post_save
from django_scopes import ScopeError, scope, scopes_disabled

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.core import rows
from ketaclinic.patients.models import BodyWeight, Patient

pytestmark = pytest.mark.django_db

FIELDS = [f.attname for f in Patient._meta.concrete_fields]


def test_one_returns_the_row_the_orm_returns(prescriber: Any, patient_a: Any) -> None:
    with scope(organization=prescriber.organization):
        fast = rows.one(Patient, public_id=patient_a.public_id)
        orm = Patient.objects.get(public_id=patient_a.public_id)
    assert fast is not None
    assert {f: getattr(fast, f) for f in FIELDS} == {f: getattr(orm, f) for f in FIELDS}
    assert fast.birth_date == patient_a.birth_date  # a date, not the stored text
    assert fast._state.adding is False


def test_one_stays_inside_the_tenant_scope(prescriber: Any, outsider: Any, patient_a: Any) -> None:
    with scope(organization=outsider.organization):
        assert rows.one(Patient, public_id=patient_a.public_id) is None
    with pytest.raises(ScopeError):
        rows.one(Patient, public_id=patient_a.public_id)
    with scopes_disabled():
        assert rows.one(Patient, public_id=patient_a.public_id) == patient_a
    with scope(organization=[outsider.organization, prescriber.organization]):
        assert rows.one(Patient, public_id=patient_a.public_id) == patient_a
    with scope(organization=[]):
        assert rows.one(Patient, public_id=patient_a.public_id) is None


def test_one_reads_only_the_fields_asked_for_and_defers_the_rest(
    prescriber: Any, patient_a: Any, django_assert_num_queries: Any
) -> None:
    with scope(organization=prescriber.organization):
        with django_assert_num_queries(1):
            fast = rows.one(
                Patient, public_id=patient_a.public_id, only=("public_id", "birth_date")
            )
        orm = Patient.objects.only("public_id", "birth_date").get(public_id=patient_a.public_id)
        assert fast is not None
        assert fast.get_deferred_fields() == orm.get_deferred_fields()
        with django_assert_num_queries(0):
            assert (fast.pk, fast.public_id, fast.birth_date) == (
                orm.pk,
                orm.public_id,
                orm.birth_date,
            )
        with django_assert_num_queries(1):  # a deferred field is read when first used
            assert fast.family_name == patient_a.family_name
        whole = rows.one(Patient, public_id=patient_a.public_id)
        assert whole == patient_a
        assert whole is not None
        assert not whole.get_deferred_fields()  # still every field


def _weight(actor: Any, patient: Any) -> BodyWeight:
    return BodyWeight(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        weight_kg=Decimal("72.50"),
        entered_value=Decimal("72.5"),
        entered_unit="kg",
        measured_at=patient.created_at,
    )


def test_insert_writes_the_row_save_would(prescriber: Any, patient_a: Any) -> None:
    with scope(organization=prescriber.organization):
        fast, slow = _weight(prescriber, patient_a), _weight(prescriber, patient_a)
        rows.insert(fast)
        slow.save()
        assert fast.pk is not None
        assert fast._state.adding is False
        stored = BodyWeight.objects.get(pk=fast.pk)
        again = BodyWeight.objects.get(pk=slow.pk)
    skip = {"id", "public_id", "created_at", "updated_at"}
    names = [f.attname for f in BodyWeight._meta.concrete_fields if f.attname not in skip]
    assert {n: getattr(stored, n) for n in names} == {n: getattr(again, n) for n in names}
    assert stored.public_id == fast.public_id
    assert stored.created_at is not None
    assert stored.updated_at == fast.updated_at


def test_insert_and_the_audit_append_give_each_row_its_own_key(
    prescriber: Any, patient_a: Any, django_assert_num_queries: Any
) -> None:
    """The new key comes from the database (SQLite: the rowid of the INSERT, no RETURNING),
    on the driver's cursor and on Django's (while queries are recorded) alike."""
    with scope(organization=prescriber.organization):
        first, second = _weight(prescriber, patient_a), _weight(prescriber, patient_a)
        rows.insert(first)
        event = audit_record(actor=prescriber, action="test.first", obj=first)
        with django_assert_num_queries(2):
            rows.insert(second)
            recorded = audit_record(actor=prescriber, action="test.second", obj=second)
        assert second.pk > first.pk
        for weight in (first, second):
            assert BodyWeight.objects.get(pk=weight.pk).public_id == weight.public_id
    assert AuditEvent.objects.get(pk=event).object_id == str(first.public_id)
    assert AuditEvent.objects.get(pk=recorded).object_id == str(second.public_id)
    assert recorded > event


def test_insert_is_save_when_someone_listens(prescriber: Any, patient_a: Any) -> None:
    heard: list[Any] = []

    def listener(sender: Any, instance: Any, created: bool, **_: Any) -> None:
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=BodyWeight)
    try:
        with scope(organization=prescriber.organization):
            weight = _weight(prescriber, patient_a)
            rows.insert(weight)
    finally:
        post_save.disconnect(listener, sender=BodyWeight)
    assert heard == [(weight.pk, True)]


def test_one_with_related_sets_what_select_related_sets(prescriber: Any, patient_a: Any) -> None:
    from django.db import transaction

    with scope(organization=prescriber.organization):
        weight = _weight(prescriber, patient_a)
        weight.save()
        with transaction.atomic():
            fast = rows.one(BodyWeight, pk=weight.pk, related=("patient", "recorded_by"), lock=True)
        orm = BodyWeight.objects.select_related("patient", "recorded_by").get(pk=weight.pk)
    assert fast is not None
    assert fast.patient_id == patient_a.pk
    for name in ("patient", "recorded_by"):
        assert cast(Any, BodyWeight._meta.get_field(name)).is_cached(fast)
        loaded, expected = getattr(fast, name), getattr(orm, name)
        fields = [f.attname for f in type(expected)._meta.concrete_fields]
        assert {f: getattr(loaded, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    with scope(organization=prescriber.organization):
        assert rows.one(BodyWeight, pk=weight.pk + 1000, related=("patient",)) is None


def test_update_writes_what_save_with_update_fields_writes(prescriber: Any, patient_a: Any) -> None:
    with scope(organization=prescriber.organization):
        weight = _weight(prescriber, patient_a)
        weight.save()
        stamped = weight.updated_at
        weight.weight_kg = Decimal("80.25")
        weight.entered_value = Decimal("999")  # changed but not listed: not written
        rows.update(weight, ("weight_kg", "updated_at"))
        stored = BodyWeight.objects.get(pk=weight.pk)
    assert stored.weight_kg == Decimal("80.25")
    assert stored.entered_value == Decimal("72.5")
    assert stored.updated_at == weight.updated_at >= stamped


def _prepared_statements() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_statements_are_prepared_once_on_postgresql(prescriber: Any, patient_a: Any) -> None:
    """On PostgreSQL a lookup and an INSERT run as statements prepared on the server, each
    prepared once per connection and reused with other values; elsewhere they run as any
    query. Either way the answers are the rows (checked against the ORM above)."""
    from django.db import connection

    with scope(organization=prescriber.organization):
        for _ in range(3):
            assert rows.one(Patient, public_id=patient_a.public_id) == patient_a
            weight = _weight(prescriber, patient_a)
            rows.insert(weight)
            assert BodyWeight.objects.get(pk=weight.pk).public_id == weight.public_id
    if connection.vendor != "postgresql":
        return
    prepared = _prepared_statements()
    lookups = [s for s in prepared if s.startswith('SELECT "patients_patient"."id"')]
    inserts = [s for s in prepared if s.startswith('INSERT INTO "patients_bodyweight"')]
    assert len(lookups) == 1
    assert len(inserts) == 1


def test_a_prepared_insert_that_breaks_a_constraint_raises_djangos_error(
    prescriber: Any, patient_a: Any
) -> None:
    from django.db import IntegrityError, transaction

    with scope(organization=prescriber.organization):
        first = _weight(prescriber, patient_a)
        rows.insert(first)
        twin = _weight(prescriber, patient_a)
        twin.public_id = first.public_id  # unique
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.insert(twin)
        assert BodyWeight.objects.filter(public_id=first.public_id).count() == 1
