"""The therapist's workflow through the services: visits, signed notes, amendments, the team,
risk flags raising safety alerts, and handoff messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, audit_count
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.services import alert_acknowledge
from ketaclinic.therapy import selectors, services
from ketaclinic.therapy.models import TeamMessage, TherapyVisit
from ketaclinic.therapy.tests.builders import complete_note, signed_visit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _scope(org_a: Any) -> Any:
    with scope(organization=org_a):
        yield


def test_a_signed_preparation_note_stores_its_billing_facts(therapist: Any, kap: Any) -> None:
    visit = signed_visit(therapist, kap["patient"], "preparation")
    assert visit.signed_by == therapist.user
    assert visit.content_hash
    assert visit.billing["code"] == "90837"  # 55 minutes, psychotherapy alone
    assert visit.billing["modality"] == "in_person"
    assert visit.plan == kap["plan"]
    assert audit_count(action="therapy.note.signed") == 1


def test_a_signed_note_never_changes_and_amendments_are_linked(therapist: Any, kap: Any) -> None:
    visit = signed_visit(therapist, kap["patient"], "integration")
    with pytest.raises(Conflict):
        services.visit_save(actor=therapist, visit=visit, narrative="rewritten")
    with pytest.raises(Conflict):
        services.visit_sign(actor=therapist, visit=visit)
    amendment = services.visit_amend(
        actor=therapist, visit=visit, text="Homework: four evenings.", reason="Misheard"
    )
    visit.refresh_from_db()
    assert visit.narrative == "Engaged and open throughout."
    assert list(visit.amendments.all()) == [amendment]
    assert audit_count(action="therapy.note.amended") == 1


def test_signing_an_incomplete_note_names_every_missing_part(therapist: Any, kap: Any) -> None:
    visit = services.visit_create(actor=therapist, patient=kap["patient"], kind="preparation")
    with pytest.raises(ValidationFailed) as refused:
        services.visit_sign(actor=therapist, visit=visit)
    fields = {e.field for e in refused.value.errors}
    assert {"intentions", "safety_plan", "narrative", "risk_level", "ended_at"} <= fields
    visit.refresh_from_db()
    assert visit.signed_at is None


def test_only_the_visits_therapist_writes_its_note(
    therapist: Any, other_therapist: Any, kap: Any
) -> None:
    visit = services.visit_create(actor=therapist, patient=kap["patient"], kind="preparation")
    with pytest.raises(Forbidden):
        services.visit_save(actor=other_therapist, visit=visit, narrative="not mine")


def test_a_nurse_writes_no_therapy_note(members: Any, kap: Any) -> None:
    with pytest.raises(Forbidden):
        services.visit_create(
            actor=actor_for(members["nurse"]), patient=kap["patient"], kind="preparation"
        )


def test_dosing_support_records_time_in_and_out_at_a_session(therapist: Any, kap: Any) -> None:
    time_in = clock.now() - timedelta(minutes=150)
    visit = services.visit_create(
        actor=therapist,
        patient=kap["patient"],
        kind="dosing_support",
        session=kap["session"],
        started_at=time_in,
    )
    complete_note(therapist, visit)
    visit = services.visit_sign(actor=therapist, visit=visit)
    assert visit.started_at == time_in
    assert visit.ended_at == clock.now()
    assert visit.billing["minutes"] == 150
    assert visit.billing["code"] == ""  # presence during dosing: no band derived


def test_dosing_support_needs_a_session(therapist: Any, kap: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.visit_create(actor=therapist, patient=kap["patient"], kind="dosing_support")
    assert refused.value.errors[0].field == "session"
    assert not TherapyVisit.objects.exists()


def test_a_group_visit_needs_its_size(therapist: Any, kap: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.visit_create(
            actor=therapist, patient=kap["patient"], kind="integration", visit_format="group"
        )
    assert refused.value.errors[0].field == "group_size"


def test_a_high_risk_note_raises_an_alert_the_prescriber_acknowledges(
    therapist: Any, prescriber: Any, kap: Any
) -> None:
    visit = services.visit_create(
        actor=therapist,
        patient=kap["patient"],
        kind="integration",
        started_at=clock.now() - timedelta(minutes=45),
    )
    complete_note(therapist, visit, risk_level="high", risk_notes="Plan and intent since Friday.")
    services.visit_sign(actor=therapist, visit=visit)
    alert = SafetyAlert.objects.get()
    assert alert.source_kind == SafetyAlert.SourceKind.THERAPY
    assert alert.severity == SafetyAlert.Severity.CRITICAL
    assert "Plan and intent since Friday." in alert.summary
    assert alert.responsible == prescriber.user
    alert_acknowledge(actor=prescriber, alert=alert, note="Called patient; safety plan reviewed.")
    alert.refresh_from_db()
    assert alert.acknowledged_by == prescriber.user


def test_a_risk_flag_without_a_note_raises_an_alert(therapist: Any, kap: Any) -> None:
    flag = services.risk_flag_raise(
        actor=therapist, patient=kap["patient"], level="moderate", reason="Hopeless on the phone."
    )
    alert = SafetyAlert.objects.get()
    assert alert.source_public_id == flag.public_id
    assert alert.severity == SafetyAlert.Severity.HIGH
    with pytest.raises(ValidationFailed):
        services.risk_flag_raise(actor=therapist, patient=kap["patient"], level="high", reason="?")
    assert SafetyAlert.objects.count() == 1


def test_the_team_assignment_is_the_prescribers(
    prescriber: Any, therapist: Any, members: Any, kap: Any
) -> None:
    row = services.team_assign(actor=prescriber, therapist=therapist.user, plan=kap["plan"])
    assert selectors.team_for_session(kap["session"]) == [therapist.user]
    with pytest.raises(Conflict):
        services.team_assign(actor=prescriber, therapist=therapist.user, plan=kap["plan"])
    with pytest.raises(ValidationFailed):
        services.team_assign(actor=prescriber, therapist=members["nurse"].user, plan=kap["plan"])
    with pytest.raises(Forbidden):
        services.team_assign(actor=therapist, therapist=therapist.user, session=kap["session"])
    services.team_unassign(actor=prescriber, assignment=row)
    assert selectors.team_for_session(kap["session"]) == []


def test_the_precheck_summary_shows_the_latest_integration_and_risk(
    therapist: Any, kap: Any
) -> None:
    signed_visit(therapist, kap["patient"], "preparation")
    integration = signed_visit(therapist, kap["patient"], "integration")
    summary = selectors.precheck_summary(kap["session"])
    assert summary.integration == integration
    assert summary.risk == integration


def test_handoff_messages_are_delivered_read_and_audited(
    therapist: Any, prescriber: Any, kap: Any
) -> None:
    message = services.message_send(
        actor=therapist,
        recipient=prescriber.user,
        subject="Before Thursday's session",
        body="Anxious about the dose; please review.",
        patient=kap["patient"],
    )
    assert [m.subject for m in selectors.inbox(prescriber)] == ["Before Thursday's session"]
    assert selectors.inbox(therapist) == []
    services.message_mark_read(actor=prescriber, message=message)
    assert audit_count(action="therapy.message.sent") == 1
    assert audit_count(action="therapy.message.read") == 1
    with pytest.raises(ValidationFailed):
        services.message_send(actor=therapist, recipient=prescriber.user, subject="", body="")
    assert TeamMessage.objects.count() == 1


def test_the_plan_asks_for_measures_around_dosing(therapist: Any, kap: Any) -> None:
    services.measure_plan_add(
        actor=therapist, plan=kap["plan"], instrument_id="phq9", timing="before_preparation"
    )
    with pytest.raises(Conflict):
        services.measure_plan_add(
            actor=therapist, plan=kap["plan"], instrument_id="phq9", timing="before_preparation"
        )
    with pytest.raises(ValidationFailed):
        services.measure_plan_add(
            actor=therapist, plan=kap["plan"], instrument_id="nope", timing="before_preparation"
        )
    assert [p.instrument_id for p in selectors.measure_plans(kap["patient"])] == ["phq9"]
