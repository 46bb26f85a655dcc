"""The staff screens: a therapist writes and signs a note, a signed note refuses edits, the
psychotherapy note stays with its author (chart, flowsheet pre-check, other roles), break glass,
the pre-check summary, the trajectory markers, and the role matrix."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import audit_count, staff_client
from ketaclinic.therapy import services
from ketaclinic.therapy.models import TherapyVisit
from ketaclinic.therapy.tests.builders import CONTENT, MENTAL_STATUS_OK, signed_visit

pytestmark = pytest.mark.django_db


def _note_post(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = {k: v for k, v in CONTENT[kind].items()}
    data.update({f"mental_status.{k}": v for k, v in MENTAL_STATUS_OK.items()})
    data.update(risk_level="low", risk_notes="Passive thoughts last month, none now.")
    data.update(narrative="Warm, engaged.", sign="1")
    return data


def test_a_therapist_opens_writes_and_signs_a_visit(members: Any, kap: Any) -> None:
    client = staff_client(members["therapist"])
    patient = kap["patient"]
    page = client.get(f"/therapy/patients/{patient.public_id}/")
    assert page.status_code == 200
    opened = client.post(
        f"/therapy/patients/{patient.public_id}/visits/",
        # 08:00 in Chicago, an hour before the travelled-to now (15:00 UTC)
        {
            "kind": "preparation",
            "format": "individual",
            "modality": "video",
            "started_at": "2026-03-02T08:00",
        },
    )
    assert opened.status_code == 302
    with scope(organization=patient.organization):
        visit = TherapyVisit.objects.get()
    blank = client.post(f"/therapy/visits/{visit.public_id}/note/", {"sign": "1"})
    assert blank.status_code == 400
    assert "Intentions: write this part of the note." in blank.content.decode()
    signed = client.post(f"/therapy/visits/{visit.public_id}/note/", _note_post("preparation"))
    assert signed.status_code == 302
    shown = client.get(f"/therapy/visits/{visit.public_id}/").content.decode()
    assert "Signed by" in shown
    assert "08:00" in shown  # time in, in the clinic's zone
    assert "90837" in shown  # 60 minutes of psychotherapy alone
    assert "Quiet room, eye mask, chosen music." in shown
    assert "therapy-note@1" not in shown  # no rule codes in plain view
    again = client.post(f"/therapy/visits/{visit.public_id}/note/", _note_post("preparation"))
    assert again.status_code == 409


def test_a_dosing_visit_at_a_session_and_the_precheck_summary(
    members: Any, therapist: Any, kap: Any
) -> None:
    with scope(organization=kap["patient"].organization):
        signed_visit(therapist, kap["patient"], "integration")
        services.risk_flag_raise(
            actor=therapist, patient=kap["patient"], level="moderate", reason="Hopeless at times."
        )
    flowsheet = staff_client(members["prescriber"]).get(f"/sessions/{kap['session'].public_id}/")
    text = flowsheet.content.decode()
    assert flowsheet.status_code == 200
    assert "Latest integration note" in text
    assert "Grief is not a failure." in text
    assert "Hopeless at times." in text
    # Front desk does not see the session at all; a nurse sees the summary.
    nurse_text = staff_client(members["nurse"]).get(f"/sessions/{kap['session'].public_id}/")
    assert "Latest integration note" in nurse_text.content.decode()


def test_the_process_note_is_invisible_everywhere_but_to_its_author(
    members: Any, therapist: Any, kap: Any, org_a: Any
) -> None:
    with scope(organization=org_a):
        visit = signed_visit(therapist, kap["patient"], "integration")
        services.process_note_write(actor=therapist, visit=visit, text="Dream of the locked door.")
    author = staff_client(members["therapist"])
    assert (
        "Dream of the locked door."
        in author.get(f"/therapy/visits/{visit.public_id}/").content.decode()
    )
    patient_id = kap["patient"].public_id
    for role in ("prescriber", "nurse", "compliance"):
        client = staff_client(members[role])
        for url in (
            f"/therapy/visits/{visit.public_id}/",
            f"/therapy/patients/{patient_id}/",
            f"/patients/{patient_id}/therapy/",
            f"/patients/{patient_id}/",
            f"/sessions/{kap['session'].public_id}/",
        ):
            response = client.get(url)
            assert "locked door" not in response.content.decode(), (role, url)
    # The author's own chart view does not carry it either: it is not part of the record.
    assert "locked door" not in author.get(f"/patients/{patient_id}/therapy/").content.decode()


def test_break_glass_in_the_ui_is_audited_and_listed_for_compliance(
    members: Any, therapist: Any, kap: Any, org_a: Any
) -> None:
    with scope(organization=org_a):
        visit = signed_visit(therapist, kap["patient"], "integration")
        services.process_note_write(actor=therapist, visit=visit, text="Dream of the locked door.")
    prescriber = staff_client(members["prescriber"])
    short = prescriber.post(f"/therapy/visits/{visit.public_id}/break-glass/", {"reason": "now"})
    assert short.status_code == 400
    assert "at least 20 characters" in short.content.decode()
    read = prescriber.post(
        f"/therapy/visits/{visit.public_id}/break-glass/",
        {"reason": "Patient in the ED, therapist on leave."},
    )
    assert "Dream of the locked door." in read.content.decode()
    assert audit_count(action="therapy.process_note.break_glass") == 1
    compliance = staff_client(members["compliance"])
    report = compliance.get("/therapy/compliance/break-glass/").content.decode()
    assert "Patient in the ED, therapist on leave." in report
    inbox = compliance.get("/therapy/").content.decode()
    assert "Break-glass read of a psychotherapy note" in inbox
    with scope(organization=org_a):
        from ketaclinic.therapy.models import BreakGlassRead

        break_glass = BreakGlassRead.objects.get()
    reviewed = compliance.post(
        f"/therapy/compliance/break-glass/{break_glass.public_id}/review/",
        {"note": "Confirmed with the ED; appropriate."},
        follow=True,
    )
    assert "Reviewed by" in reviewed.content.decode()
    assert "Confirmed with the ED; appropriate." in reviewed.content.decode()
    assert (
        staff_client(members["therapist"]).get("/therapy/compliance/break-glass/").status_code
        == 403
    )


@pytest.mark.parametrize(
    ("role", "status"),
    [("front_desk", 403), ("researcher", 403), ("clinic_admin", 403), ("nurse", 200)],
)
def test_who_sees_the_therapy_page(role: str, status: int, members: Any, kap: Any) -> None:
    url = f"/therapy/patients/{kap['patient'].public_id}/"
    assert staff_client(members[role]).get(url).status_code == status


def test_another_clinic_gets_404(outsider: Any, therapist: Any, kap: Any, org_a: Any) -> None:
    with scope(organization=org_a):
        visit = signed_visit(therapist, kap["patient"], "integration")
    assert staff_client(outsider).get(f"/therapy/visits/{visit.public_id}/").status_code == 404


def test_the_trajectory_marks_preparation_dosing_and_integration(
    members: Any, therapist: Any, prescriber: Any, kap: Any, org_a: Any
) -> None:
    from ketaclinic.measures.services import response_record
    from ketaclinic.measures.tests.builders import phq9

    with scope(organization=org_a):
        response_record(
            actor=prescriber,
            patient=kap["patient"],
            instrument_id="phq9",
            answers=phq9(rest=2),
        )
        signed_visit(therapist, kap["patient"], "preparation")
        signed_visit(therapist, kap["patient"], "integration")
    page = staff_client(members["prescriber"]).get(
        f"/patients/{kap['patient'].public_id}/measures/"
    )
    svg = page.content.decode()
    assert 'class="visit visit-preparation"' in svg
    assert 'class="visit visit-integration"' in svg
    assert "Preparation visit" in svg


def test_the_therapy_page_reads_in_fixed_queries(
    members: Any, therapist: Any, kap: Any, org_a: Any, django_assert_max_num_queries: Any
) -> None:
    with scope(organization=org_a):
        for kind in ("preparation", "integration", "integration", "integration"):
            signed_visit(therapist, kap["patient"], kind)
    client = staff_client(members["therapist"])
    with django_assert_max_num_queries(40):
        client.get(f"/therapy/patients/{kap['patient'].public_id}/")
    with scope(organization=org_a):
        signed_visit(therapist, kap["patient"], "integration")
    with django_assert_max_num_queries(40):
        assert client.get(f"/therapy/patients/{kap['patient'].public_id}/").status_code == 200


def test_handoff_message_from_the_page(members: Any, kap: Any) -> None:
    client = staff_client(members["therapist"])
    sent = client.post(
        f"/therapy/patients/{kap['patient'].public_id}/messages/",
        {
            "recipient": str(members["prescriber"].user.public_id),
            "subject": "Before the session",
            "body": "Slept badly; anxious.",
        },
    )
    assert sent.status_code == 302
    inbox = staff_client(members["prescriber"]).get("/therapy/").content.decode()
    assert "Before the session" in inbox


def test_the_page_says_which_therapy_measure_is_due(
    members: Any, therapist: Any, prescriber: Any, kap: Any, org_a: Any
) -> None:
    from ketaclinic.measures.services import response_record
    from ketaclinic.measures.tests.builders import phq9

    with scope(organization=org_a):
        services.measure_plan_add(
            actor=therapist, plan=kap["plan"], instrument_id="phq9", timing="before_preparation"
        )
        services.measure_plan_add(
            actor=therapist, plan=kap["plan"], instrument_id="gad7", timing="after_integration"
        )
    client = staff_client(members["therapist"])
    page = client.get(f"/therapy/patients/{kap['patient'].public_id}/").content.decode()
    assert "PHQ9 · Before the first preparation visit: <strong>Due</strong>" in page
    assert "?instrument=phq9" in page
    assert "GAD7 · After each integration visit: <strong>Waiting</strong>" in page
    with scope(organization=org_a):
        response_record(
            actor=prescriber, patient=kap["patient"], instrument_id="phq9", answers=phq9()
        )
    page = client.get(f"/therapy/patients/{kap['patient'].public_id}/").content.decode()
    assert "PHQ9 · Before the first preparation visit: <strong>Done</strong>" in page


def test_unread_handoff_messages_show_on_the_dashboard(
    members: Any, therapist: Any, prescriber: Any, kap: Any, org_a: Any
) -> None:
    with scope(organization=org_a):
        services.message_send(
            actor=therapist,
            recipient=prescriber.user,
            subject="Anxious before Thursday",
            body="Please call her.",
            patient=kap["patient"],
        )
    dashboard = staff_client(members["prescriber"]).get("/").content.decode()
    assert "Team messages" in dashboard
    assert "Anxious before Thursday" in dashboard
    assert "Anxious before Thursday" not in staff_client(members["nurse"]).get("/").content.decode()
