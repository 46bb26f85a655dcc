import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_scopes import scopes_disabled

from conftest import make_patient
from ketaclinic.accounts.audit import audit_chain_verify, audit_record
from ketaclinic.accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_each_event_links_to_the_previous_one_in_its_organization(prescriber, patient_a):
    with scopes_disabled():
        events = list(AuditEvent.objects.filter(chain_key=str(prescriber.organization.public_id)))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    assert audit_chain_verify().ok


def test_organizations_have_separate_chains(prescriber, outsider):
    keys = set(AuditEvent.objects.values_list("chain_key", flat=True))
    assert str(prescriber.organization.public_id) in keys
    assert str(outsider.organization.public_id) in keys


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(prescriber):
    event = audit_record(actor=prescriber, action="test.event")
    event.action = "test.rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_audit_verify_finds_a_tampered_row(prescriber, patient_a, capsys):
    call_command("audit_verify")
    assert "OK" in capsys.readouterr().out
    target = AuditEvent.objects.filter(action="patients.patient.created").get()
    _tamper(
        "UPDATE accounts_auditevent SET actor_username = %s WHERE id = %s", ["mallory", target.pk]
    )
    report = audit_chain_verify()
    assert not report.ok
    assert report.breaks[0].seq == target.seq
    assert "altered" in report.breaks[0].reason
    with pytest.raises(CommandError, match="broken"):
        call_command("audit_verify")


def test_audit_verify_finds_a_deleted_row(prescriber, patient_a):
    make_patient(prescriber, given_name="Grace", family_name="Hopper")
    first_patient_event = AuditEvent.objects.filter(action="patients.patient.created").first()
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [first_patient_event.pk])
    report = audit_chain_verify()
    assert not report.ok
    assert "gap" in report.breaks[0].reason
