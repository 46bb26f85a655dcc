"""The audit trail: appended by the request with one INSERT, sealed into each organization's hash
chain by the worker, verified by `audit-verify` (docs/ARCHITECTURE.md, "Audit trail")."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from conftest import make_patient
from ketaclinic.accounts.audit import audit_chain_verify, audit_record, audit_seal
from ketaclinic.accounts.models import AuditChain, AuditEvent

pytestmark = pytest.mark.django_db


def test_each_event_links_to_the_previous_one_in_its_organization(prescriber, patient_a):
    assert audit_seal() > 0
    with scopes_disabled():
        events = list(
            AuditEvent.objects.filter(chain_key=str(prescriber.organization.public_id)).order_by(
                "seq"
            )
        )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.pk for e in events] == sorted(e.pk for e in events)  # sealed in the order written
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    report = audit_chain_verify()
    assert report.ok
    assert report.unsealed == 0


def test_organizations_have_separate_chains(prescriber, outsider):
    audit_seal()
    keys = set(AuditChain.objects.values_list("key", flat=True))
    assert str(prescriber.organization.public_id) in keys
    assert str(outsider.organization.public_id) in keys


def test_an_event_is_one_insert_without_a_lock_or_savepoint(prescriber):
    with CaptureQueriesContext(connection) as queries:
        event_id = audit_record(actor=prescriber, action="test.event", detail={"n": 1})
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("INSERT INTO")
    event = AuditEvent.objects.get(pk=event_id)
    assert (event.seq, event.hash, event.actor_username) == (None, "", prescriber.user.username)
    assert event.organization_id == prescriber.organization.pk
    assert event.detail == {"n": 1}


def test_audit_verify_reports_events_not_sealed_yet(prescriber, capsys):
    audit_seal()
    audit_record(actor=prescriber, action="test.event")
    report = audit_chain_verify()
    assert report.ok
    assert report.unsealed == 1
    call_command("audit_verify")
    assert "UNSEALED: 1 event(s)" in capsys.readouterr().out
    assert audit_seal() == 1
    assert audit_chain_verify().unsealed == 0
    assert audit_seal() == 0  # idempotent: a second worker finds nothing to do


def test_sealing_continues_the_chain_in_batches(prescriber):
    audit_seal()
    for number in range(7):
        audit_record(actor=prescriber, action="test.event", detail={"n": number})
    assert audit_seal(batch=3) == 7
    report = audit_chain_verify()
    assert report.ok, report.breaks
    head = AuditChain.objects.get(key=str(prescriber.organization.public_id))
    last = AuditEvent.objects.filter(chain_key=head.key).order_by("-seq").first()
    assert (head.last_seq, head.last_hash) == (last.seq, last.hash)
    assert last.detail == {"n": 6}


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(prescriber):
    event = AuditEvent.objects.get(pk=audit_record(actor=prescriber, action="test.event"))
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
    audit_seal()
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
    audit_seal()
    first_patient_event = AuditEvent.objects.filter(action="patients.patient.created").first()
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [first_patient_event.pk])
    report = audit_chain_verify()
    assert not report.ok
    assert "gap" in report.breaks[0].reason


def test_audit_verify_finds_the_last_rows_deleted(prescriber, patient_a):
    audit_seal()
    last = AuditEvent.objects.filter(chain_key=str(prescriber.organization.public_id)).latest("seq")
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [last.pk])
    report = audit_chain_verify()
    assert "missing at the end" in report.breaks[0].reason


def test_audit_verify_finds_two_rows_swapped(prescriber, patient_a):
    """Reordering: the two rows exchange places in the chain (their seq), each keeping its
    content and hash. Each hash covers its seq and the previous hash, so both links break."""
    make_patient(prescriber, given_name="Grace", family_name="Hopper")
    audit_seal()
    first, second = AuditEvent.objects.filter(action="patients.patient.created").order_by("seq")
    _tamper("UPDATE accounts_auditevent SET seq = -1 WHERE id = %s", [first.pk])
    _tamper("UPDATE accounts_auditevent SET seq = %s WHERE id = %s", [first.seq, second.pk])
    _tamper("UPDATE accounts_auditevent SET seq = %s WHERE id = %s", [second.seq, first.pk])
    report = audit_chain_verify()
    assert not report.ok
    assert report.breaks[0].seq == first.seq


def test_a_row_sealed_before_this_design_still_verifies(prescriber):
    """Rows written by the old append (seq and hash set in the request) and rows sealed by the
    worker share one hash definition, so a chain that mixes them verifies end to end."""
    from ketaclinic.accounts.audit import GENESIS_HASH, _stored_fields, event_hash

    audit_seal()
    chain = str(prescriber.organization.public_id)
    events = list(AuditEvent.objects.filter(chain_key=chain).order_by("seq"))
    prev = GENESIS_HASH
    for event in events:
        assert event_hash(prev, _stored_fields(event)) == event.hash
        prev = event.hash
