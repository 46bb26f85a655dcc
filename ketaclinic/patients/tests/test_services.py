from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope

from conftest import actor_for, audit_count, make_patient
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed
from ketaclinic.patients import services
from ketaclinic.patients.models import BodyWeight, Condition, Patient

pytestmark = pytest.mark.django_db


def fields_of(error) -> set[str]:
    return {e.field for e in error.value.errors}


def test_registering_a_patient_writes_it_and_one_audit_event(prescriber):
    before = audit_count()
    patient = make_patient(prescriber, mrn="A-1")
    assert patient.mrn == "A-1"
    assert audit_count() == before + 1
    assert audit_count(action="patients.patient.created", patient_id=patient.public_id) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"birth_date": date.today() + timedelta(days=1)}, "birth_date"),
        ({"birth_date": date(1880, 1, 1)}, "birth_date"),
        ({"given_name": " "}, "given_name"),
        ({"family_name": ""}, "family_name"),
        ({"sex_at_birth": "robot"}, "sex_at_birth"),
        ({"email": "not-an-email"}, "email"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_each_invalid_patient_field_is_named_and_nothing_is_written(prescriber, overrides, field):
    before = audit_count()
    with pytest.raises(ValidationFailed) as error:
        make_patient(prescriber, **overrides)
    assert field in fields_of(error)
    with scope(organization=prescriber.organization):
        assert not Patient.objects.exists()
    assert audit_count() == before


def test_a_duplicate_mrn_in_the_same_organization_is_a_conflict(prescriber, outsider):
    make_patient(prescriber, mrn="MRN-7")
    with pytest.raises(Conflict) as error:
        make_patient(prescriber, mrn="MRN-7")
    assert "mrn" in fields_of(error)
    # Another organization may use the same number.
    make_patient(actor_for(outsider), mrn="MRN-7")


def test_a_weight_in_pounds_is_converted_and_audited(prescriber, patient_a):
    with scope(organization=prescriber.organization):
        weight = services.weight_record(actor=prescriber, patient=patient_a, value="185", unit="lb")
    assert weight.weight_kg == Decimal("83.91")
    assert weight.entered_unit == "lb"
    assert audit_count(action="patients.weight.recorded", patient_id=patient_a.public_id) == 1


@pytest.mark.parametrize(
    ("value", "unit", "field"),
    [
        ("1800", "lb", "weight"),
        ("-3", "kg", "weight"),
        ("abc", "kg", "weight"),
        ("70", "st", "weight_unit"),
    ],
)
def test_impossible_weights_are_refused_and_nothing_is_written(
    prescriber, patient_a, value, unit, field
):
    before = audit_count()
    with scope(organization=prescriber.organization), pytest.raises(ValidationFailed) as error:
        services.weight_record(actor=prescriber, patient=patient_a, value=value, unit=unit)
    assert field in fields_of(error)
    with scope(organization=prescriber.organization):
        assert not BodyWeight.objects.exists()
    assert audit_count() == before


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"value": "70.125"}, "entered_value", "no more than 2 decimal places"),
        ({"value": "70", "source": "fax"}, "source", "is not a valid choice"),
        ({"value": "70", "external_id": "x" * 201}, "external_id", "at most 200 characters"),
    ],
)
def test_what_a_caller_gives_a_weight_still_passes_the_models_rules(
    prescriber, patient_a, overrides, field, message
):
    with scope(organization=prescriber.organization), pytest.raises(ValidationFailed) as error:
        services.weight_record(actor=prescriber, patient=patient_a, **overrides)
    assert [e.field for e in error.value.errors] == [field]
    assert message in error.value.errors[0].message
    with scope(organization=prescriber.organization):
        assert not BodyWeight.objects.exists()


def test_a_weight_measured_in_the_future_is_refused(prescriber, patient_a):
    with scope(organization=prescriber.organization), pytest.raises(ValidationFailed) as error:
        services.weight_record(
            actor=prescriber,
            patient=patient_a,
            value="70",
            measured_at=timezone.now() + timedelta(hours=2),
        )
    assert "measured_at" in fields_of(error)


def test_front_desk_cannot_record_clinical_data_and_the_refusal_is_audited(members, patient_a):
    front_desk = actor_for(members["front_desk"])
    with scope(organization=front_desk.organization), pytest.raises(Forbidden):
        services.condition_add(actor=front_desk, patient=patient_a, data={"code": "F33.1"})
    assert audit_count(outcome="denied", actor=front_desk.user) == 1


def test_condition_display_comes_from_the_preloaded_code_list(prescriber, patient_a):
    with scope(organization=prescriber.organization):
        condition = services.condition_add(
            actor=prescriber,
            patient=patient_a,
            data={"code": "F41.1", "onset_date": date(2020, 1, 1)},
        )
    assert condition.display == "Generalized anxiety disorder"


def test_an_abatement_before_onset_is_refused(prescriber, patient_a):
    with scope(organization=prescriber.organization), pytest.raises(ValidationFailed) as error:
        services.condition_add(
            actor=prescriber,
            patient=patient_a,
            data={
                "code": "F41.1",
                "onset_date": date(2020, 1, 1),
                "abatement_date": date(2019, 1, 1),
            },
        )
    assert "abatement_date" in fields_of(error)


def test_a_trial_outcome_needs_an_antidepressant_trial(prescriber, patient_a):
    with scope(organization=prescriber.organization), pytest.raises(ValidationFailed) as error:
        services.medication_add(
            actor=prescriber,
            patient=patient_a,
            data={"drug_name": "ibuprofen", "trial_outcome": "none"},
        )
    assert "trial_outcome" in fields_of(error)


def test_entries_are_withdrawn_not_erased(prescriber, patient_a):
    with scope(organization=prescriber.organization):
        condition = services.condition_add(
            actor=prescriber, patient=patient_a, data={"code": "F33.1"}
        )
        services.entry_mark_entered_in_error(
            actor=prescriber, entry=condition, reason="wrong patient"
        )
        assert Condition.objects.get(pk=condition.pk).entered_in_error
        with pytest.raises(Conflict):
            services.condition_update(actor=prescriber, condition=condition, data={"note": "x"})
    assert audit_count(action="patients.condition.entered_in_error") == 1
