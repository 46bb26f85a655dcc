"""Responses, alerts, acknowledgement, escalation and policy through the services."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, audit_count, make_patient
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed
from ketaclinic.measures import services
from ketaclinic.measures.models import MeasurePolicy, QuestionnaireResponse, SafetyAlert
from ketaclinic.measures.tests.builders import phq9

pytestmark = pytest.mark.django_db
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def patient(prescriber):
    return make_patient(prescriber)


def record(actor, patient, instrument_id="phq9", answers=None, **kw):
    with scope(organization=actor.organization):
        return services.response_record(
            actor=actor,
            patient=patient,
            instrument_id=instrument_id,
            answers=answers if answers is not None else phq9(),
            **kw,
        )


def counts(org):
    with scope(organization=org):
        return QuestionnaireResponse.objects.count(), SafetyAlert.objects.count()


@pytest.mark.parametrize(
    "instrument_id", ["phq9", "gad7", "qids-sr16", "pcl5", "ybocs", "dast10", "peg", "madrs"]
)
def test_golden_fixtures_score_the_same_through_the_service(prescriber, patient, instrument_id):
    golden = json.loads((GOLDEN / f"{instrument_id}.json").read_text())
    stored = 0
    for case in golden["cases"]:
        expect = case.get("expect", {})
        if "error" in case or "total" not in expect or case.get("respondent_sex"):
            continue
        response = record(prescriber, patient, instrument_id, case["answers"])
        stored += 1
        assert response.total == Decimal(expect["total"]), case["name"]
        assert response.rule == f"{instrument_id}@1"
        assert response.answers == case["answers"]
        if expect.get("severity"):
            assert response.severity_code == expect["severity"], case["name"]
    assert stored


def test_positive_item_9_creates_a_critical_alert_in_the_same_write(prescriber, patient):
    before = audit_count(action="measures.response.recorded")
    response = record(prescriber, patient, answers=phq9(item9=1))
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
    assert alert.response == response
    assert alert.rule == "phq9@1:item-9"
    assert alert.severity == "critical"
    assert alert.responsible == prescriber.user
    assert audit_count(action="measures.response.recorded") == before + 1


def test_item_9_at_zero_raises_no_alert(prescriber, patient):
    record(prescriber, patient, answers=phq9(item9=0, rest=3))
    assert counts(prescriber.organization) == (1, 0)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({**phq9(), "9": 4}, "answers.9"),  # out of range
        ({**phq9(), "10x": 1}, "answers.10x"),  # unknown item
        ({k: v for k, v in phq9().items() if k != "3"}, "answers.3"),  # missing required item
    ],
)
def test_invalid_answers_name_the_item_and_write_nothing(prescriber, patient, answers, field):
    before = audit_count()
    with pytest.raises(ValidationFailed) as caught:
        record(prescriber, patient, answers=answers)
    assert caught.value.errors[0].field == field
    assert counts(prescriber.organization) == (0, 0)
    assert audit_count() == before


def test_a_missing_item_with_a_positive_item_9_is_refused_but_says_so(prescriber, patient):
    answers = {k: v for k, v in phq9(item9=2).items() if k != "1"}
    with pytest.raises(ValidationFailed) as caught:
        record(prescriber, patient, answers=answers)
    assert "safety item" in caught.value.detail


def test_unknown_instrument_is_a_field_error(prescriber, patient):
    with pytest.raises(ValidationFailed) as caught:
        record(prescriber, patient, "phq99")
    assert caught.value.errors[0].field == "instrument_id"


def test_qids_item_12_and_madrs_item_10_at_the_clinic_level_alert(prescriber, patient, members):
    qids = {str(i): 0 for i in range(1, 17)}
    qids["12"] = 1
    record(prescriber, patient, "qids-sr16", qids)
    madrs = {str(i): 0 for i in range(1, 11)}
    madrs["10"] = 3
    record(prescriber, patient, "madrs", madrs)  # default alert level 4? then no alert
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        services.measure_policy_publish(actor=admin, scoring_values={"madrs.item10_alert_level": 2})
    record(prescriber, patient, "madrs", madrs)
    with scope(organization=prescriber.organization):
        rules = sorted(SafetyAlert.objects.values_list("rule", flat=True))
    assert "qids-sr16@1:item-12" in rules
    assert rules.count("madrs@1:item-10") >= 1


def test_cssrs_moderate_risk_alerts(prescriber, patient):
    # Method (item 3) without intent: moderate risk.
    answers = {"1": 1, "2": 1, "3": 1, "4": 0, "5": 0, "6": 0}
    response = record(prescriber, patient, "cssrs-screener", answers)
    assert response.risk_level == "moderate"
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
    assert alert.rule == "cssrs-screener@1:risk"
    assert alert.severity == "high"


def test_a_clinic_total_threshold_raises_an_alert(prescriber, patient, members):
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        policy = services.measure_policy_publish(actor=admin, total_alert_thresholds={"phq9": 20})
    assert policy.version == 1
    record(prescriber, patient, answers=phq9(item9=0, rest=3))  # total 24
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
    assert alert.rule == "measure-policy@1:total-phq9"
    assert alert.policy_reference == "measure-policy@1"


def test_policy_versions_are_immutable_and_checked(members):
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        first = services.measure_policy_publish(actor=admin, escalation_minutes=15)
        second = services.measure_policy_publish(actor=admin, escalation_minutes=10)
        assert (first.version, second.version) == (1, 2)
        with pytest.raises(PermissionError):
            first.save()
        with pytest.raises(ValidationFailed):
            services.measure_policy_publish(actor=admin, total_alert_thresholds={"phq9": 99})
        with pytest.raises(Forbidden):
            services.measure_policy_publish(actor=actor_for(members["nurse"]))
        assert MeasurePolicy.objects.count() == 2


def test_a_response_is_immutable_and_corrected_by_a_linked_new_one(prescriber, patient):
    first = record(prescriber, patient, answers=phq9(rest=2))
    with pytest.raises(PermissionError):
        first.save()
    with pytest.raises(ValidationFailed):
        record(prescriber, patient, answers=phq9(rest=1), corrects=first)  # no reason
    second = record(
        prescriber,
        patient,
        answers=phq9(rest=1),
        corrects=first,
        correction_reason="item 3 mis-keyed",
    )
    assert second.corrects == first
    with pytest.raises(Conflict):
        record(prescriber, patient, answers=phq9(), corrects=first, correction_reason="again")


def test_front_desk_may_not_record(members, patient):
    with pytest.raises(Forbidden):
        record(actor_for(members["front_desk"]), patient)


def test_acknowledge_needs_a_note_and_happens_once(prescriber, patient, members):
    record(prescriber, patient, answers=phq9(item9=2))
    nurse = actor_for(members["nurse"])
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
        with pytest.raises(ValidationFailed):
            services.alert_acknowledge(actor=nurse, alert=alert, note="  ")
        before = audit_count(action="measures.alert.acknowledged")
        services.alert_acknowledge(actor=nurse, alert=alert, note="Patient called; safety plan")
        assert audit_count(action="measures.alert.acknowledged") == before + 1
        alert.refresh_from_db()
        assert alert.acknowledged_by == nurse.user
        assert alert.action_note
        with pytest.raises(Conflict):
            services.alert_acknowledge(actor=nurse, alert=alert, note="again")
        with pytest.raises(Forbidden):
            services.alert_acknowledge(
                actor=actor_for(members["compliance"]), alert=alert, note="x"
            )


def test_an_unacknowledged_alert_escalates_after_the_configured_minutes(prescriber, members):
    admin = actor_for(members["clinic_admin"])
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        patient = make_patient(prescriber)
        with scope(organization=admin.organization):
            services.measure_policy_publish(
                actor=admin, escalation_minutes=20, escalation_role="prescriber"
            )
        record(prescriber, patient, answers=phq9(item9=1))
        acked_patient = make_patient(prescriber, mrn="OTHER1")
        record(prescriber, acked_patient, answers=phq9(item9=1))
        with scope(organization=prescriber.organization):
            services.alert_acknowledge(
                actor=prescriber,
                alert=SafetyAlert.objects.get(patient=acked_patient),
                note="Seen in clinic",
            )
    assert services.alerts_escalate_overdue(now=start + timedelta(minutes=19)) == 0
    with time_machine.travel(start + timedelta(minutes=20), tick=False):
        from ketaclinic.measures.tasks import alerts_escalate_overdue_task

        alerts_escalate_overdue_task.enqueue()
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get(patient=patient)
        other = SafetyAlert.objects.get(patient=acked_patient)
    assert alert.escalated_at == start + timedelta(minutes=20)
    assert alert.escalated_to_role == "prescriber"
    assert other.escalated_at is None
    assert audit_count(action="measures.alert.escalated") == 1
    assert services.alerts_escalate_overdue(now=start + timedelta(hours=2)) == 0
