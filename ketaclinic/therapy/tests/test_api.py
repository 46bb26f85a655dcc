"""The JSON API: the same services, 409 on a signed note, and psychotherapy notes that only
their author (or an audited break-glass read) ever gets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import api_client, audit_count, make_member
from ketaclinic.core import clock
from ketaclinic.therapy.models import BreakGlassRead, TeamMessage
from ketaclinic.therapy.tests.builders import CONTENT, MENTAL_STATUS_OK

pytestmark = pytest.mark.django_db
API = "/api/v1/"


def post(client: Any, url: str, body: dict[str, Any]) -> Any:
    return client.post(API + url, json.dumps(body, default=str), content_type="application/json")


def put(client: Any, url: str, body: dict[str, Any]) -> Any:
    return client.put(API + url, json.dumps(body, default=str), content_type="application/json")


@pytest.fixture
def author(members: Any) -> Any:
    return api_client(members["therapist"])


def _signed(author: Any, patient: Any, kind: str = "integration") -> str:
    start = clock.now() - timedelta(minutes=40)
    created = post(
        author, "therapy/visits", {"patient": patient.public_id, "kind": kind, "started_at": start}
    )
    assert created.status_code == 201, created.json()
    visit_id = created.json()["id"]
    saved = put(
        author,
        f"therapy/visits/{visit_id}/note",
        {
            "content": CONTENT[kind],
            "mental_status": MENTAL_STATUS_OK,
            "risk_level": "none",
            "narrative": "Engaged.",
            "ended_at": clock.now(),
        },
    )
    assert saved.status_code == 200, saved.json()
    signed = post(author, f"therapy/visits/{visit_id}/sign", {})
    assert signed.status_code == 200, signed.json()
    return visit_id


def test_a_signed_note_answers_409_on_edit_and_takes_amendments(
    author: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = _signed(author, patient_a)
    edit = put(author, f"therapy/visits/{visit_id}/note", {"narrative": "changed"})
    assert edit.status_code == 409
    assert edit.json()["detail"].startswith("The note is signed")
    amend = post(
        author,
        f"therapy/visits/{visit_id}/amendments",
        {"text": "Add: slept well.", "reason": "Omitted"},
    )
    assert amend.status_code == 201
    read = author.get(API + f"therapy/visits/{visit_id}").json()
    assert read["narrative"] == "Engaged."
    assert read["billing"]["code"] == "90834"  # 40 minutes
    assert [a["text"] for a in read["amendments"]] == ["Add: slept well."]


def test_signing_an_incomplete_note_is_a_400_naming_the_fields(
    author: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = post(
        author, "therapy/visits", {"patient": patient_a.public_id, "kind": "preparation"}
    ).json()["id"]
    refused = post(author, f"therapy/visits/{visit_id}/sign", {})
    assert refused.status_code == 400
    fields = {e["field"] for e in refused.json()["errors"]}
    assert {"intentions", "narrative", "ended_at"} <= fields
    unknown = put(author, f"therapy/visits/{visit_id}/note", {"content": {"homework": "x"}})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "homework"


@pytest.mark.parametrize("role", ["front_desk", "researcher", "clinic_admin"])
def test_roles_without_therapy_see_no_visit(
    role: str, author: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = _signed(author, patient_a)
    assert api_client(members[role]).get(API + f"therapy/visits/{visit_id}").status_code == 403


def test_another_clinic_sees_no_visit(
    author: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = _signed(author, patient_a)
    assert api_client(outsider).get(API + f"therapy/visits/{visit_id}").status_code == 404


def test_the_visit_list_reads_in_fixed_queries(
    author: Any, patient_a: Any, traveller: Any, django_assert_max_num_queries: Any
) -> None:
    for kind in ("preparation", "integration", "integration"):
        _signed(author, patient_a, kind)
    with django_assert_max_num_queries(14):
        listed = author.get(API + f"patients/{patient_a.public_id}/therapy/visits")
    assert [v["kind"] for v in listed.json()] == ["integration", "integration", "preparation"]


# --- psychotherapy notes --------------------------------------------------------------------


def test_a_process_note_is_only_its_authors(
    author: Any, members: Any, org_a: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = _signed(author, patient_a)
    written = put(
        author, f"therapy/visits/{visit_id}/process-note", {"text": "Transference: father."}
    )
    assert written.status_code == 200
    assert author.get(API + f"therapy/visits/{visit_id}/process-note").json()["text"] == (
        "Transference: father."
    )
    second = api_client(make_member(org_a, "therapist", username="second-therapist"))
    for role_client in (
        second,
        api_client(members["prescriber"]),
        api_client(members["compliance"]),
    ):
        assert role_client.get(API + f"therapy/visits/{visit_id}/process-note").status_code in (
            403,
            404,
        )
        visit = role_client.get(API + f"therapy/visits/{visit_id}")
        assert "Transference" not in visit.content.decode()
    # Nobody else may write on the author's visit either.
    assert put(second, f"therapy/visits/{visit_id}/process-note", {"text": "x"}).status_code == 404
    assert (
        "Transference"
        not in author.get(API + f"patients/{patient_a.public_id}/therapy/visits").content.decode()
    )
    # The audit trail records that it was written, never what it says.
    with scopes_disabled():
        from ketaclinic.accounts.models import AuditEvent

        assert "Transference" not in json.dumps(
            list(AuditEvent.objects.values_list("detail", flat=True))
        )


def test_break_glass_is_audited_and_reported_to_compliance(
    author: Any, members: Any, org_a: Any, patient_a: Any, traveller: Any
) -> None:
    visit_id = _signed(author, patient_a)
    put(author, f"therapy/visits/{visit_id}/process-note", {"text": "Transference: father."})
    prescriber = api_client(members["prescriber"])
    short = post(
        prescriber, f"therapy/visits/{visit_id}/process-note/break-glass", {"reason": "need it"}
    )
    assert short.status_code == 400
    assert short.json()["errors"][0]["field"] == "reason"
    read = post(
        prescriber,
        f"therapy/visits/{visit_id}/process-note/break-glass",
        {"reason": "Patient in crisis in the ED; therapist unreachable."},
    )
    assert read.status_code == 200
    assert read.json()["text"] == "Transference: father."
    assert audit_count(action="therapy.process_note.break_glass", outcome="success") == 1
    with scope(organization=org_a):
        report = BreakGlassRead.objects.get()
        assert report.reader == members["prescriber"].user
        officer_inbox = TeamMessage.objects.filter(recipient=members["compliance"].user)
        assert officer_inbox.count() == 1
        assert "Patient in crisis" in officer_inbox.get().body
    compliance_inbox = api_client(members["compliance"]).get(API + "therapy/messages").json()
    assert compliance_inbox[0]["subject"] == "Break-glass read of a psychotherapy note"
    assert (
        post(
            api_client(members["nurse"]),
            f"therapy/visits/{visit_id}/process-note/break-glass",
            {"reason": "x" * 30},
        ).status_code
        == 403
    )

    officer = api_client(members["compliance"])
    reads = officer.get(API + "therapy/break-glass-reads").json()
    assert [r["reason"] for r in reads] == ["Patient in crisis in the ED; therapist unreachable."]
    reviewed = post(
        officer,
        f"therapy/break-glass-reads/{reads[0]['id']}/review",
        {"note": "Emergency confirmed with the ED; appropriate."},
    )
    assert reviewed.status_code == 200
    assert reviewed.json()["reviewed_at"]
    again = post(officer, f"therapy/break-glass-reads/{reads[0]['id']}/review", {"note": "again!"})
    assert again.status_code == 409
    assert prescriber.get(API + "therapy/break-glass-reads").status_code == 403
    assert audit_count(action="therapy.process_note.break_glass_reviewed") == 1


def test_team_messages_and_assignments_through_the_api(
    author: Any, members: Any, patient_a: Any, prescriber: Any, traveller: Any
) -> None:
    from ketaclinic.sessions.tests.builders import make_plan, make_treatable

    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient_a)
    boss = api_client(members["prescriber"])
    assigned = post(
        boss,
        "therapy/assignments",
        {"therapist": members["therapist"].user.public_id, "plan": plan.public_id},
    )
    assert assigned.status_code == 201
    again = post(
        boss,
        "therapy/assignments",
        {"therapist": members["therapist"].user.public_id, "plan": plan.public_id},
    )
    assert again.status_code == 409
    ended = post(boss, f"therapy/assignments/{assigned.json()['id']}/end", {})
    assert ended.status_code == 200
    assert ended.json()["ended_at"]
    sent = post(
        author,
        "therapy/messages",
        {
            "recipient": members["prescriber"].user.public_id,
            "subject": "Handoff",
            "body": "Calmer today.",
            "patient": patient_a.public_id,
        },
    )
    assert sent.status_code == 201
    inbox = boss.get(API + "therapy/messages").json()
    assert [m["subject"] for m in inbox] == ["Handoff"]
    assert post(boss, f"therapy/messages/{inbox[0]['id']}/read", {}).status_code == 200
    assert (
        post(
            author,
            "therapy/messages",
            {"recipient": "00000000-0000-0000-0000-000000000000", "subject": "x", "body": "y"},
        ).json()["errors"][0]["field"]
        == "recipient"
    )
    measure = post(
        author,
        f"plans/{plan.public_id}/therapy-measures",
        {"instrument_id": "phq9", "timing": "before_preparation"},
    )
    assert measure.status_code == 201
    flag = post(
        author,
        "therapy/risk-flags",
        {"patient": patient_a.public_id, "level": "high", "reason": "Said goodbye to the dog."},
    )
    assert flag.status_code == 201
