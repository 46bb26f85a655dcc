"""Role homes: each role's Today page is a picture of its day, with a JSON twin that says the
same, in the clinic's time, at a query cost that does not grow with the number of patients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import SESSION_DAY, actor_for, api_client, make_patient, staff_client
from ketaclinic.core.models import OneTimeLink
from ketaclinic.measures.services import measure_link_create
from ketaclinic.scheduling import services as scheduling
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import open_every_day, types
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import free_chair, make_plan, make_treatable, weigh

pytestmark = pytest.mark.django_db

CONSULT_AT = SESSION_DAY + timedelta(hours=2)  # 11:00 in Chicago (SESSION_DAY is 09:00 CST)


def _consults(
    org: Any, desk: Any, admin: Any, members: dict[str, Any], count: int, first: int = 0
) -> list[Any]:
    """`count` new patients, each booked for a consultation today, 75 minutes apart."""
    with scope(organization=org):
        open_every_day(admin, members["prescriber"], members["nurse"])
        consult = types(org)["consult"]
        booked = []
        for n in range(first, first + count):
            patient = make_patient(desk, given_name=f"Pat{n}", family_name="Doe", mrn=f"C{n}")
            booked.append(
                scheduling.appointment_book(
                    actor=desk,
                    patient=patient,
                    appointment_type=consult,
                    starts_at=CONSULT_AT + timedelta(minutes=75 * n),
                    clinician=members["prescriber"],
                    notify=False,
                )
            )
        return booked


@pytest.fixture
def desk_day(members: dict[str, Any], traveller: Any, org_a: Any) -> dict[str, Any]:
    """A consult at 11:00 with a questionnaire link still open, and an IV session at 09:00
    scheduled without a booking (the nurse checks it in)."""
    desk = actor_for(members["front_desk"])
    nurse = actor_for(members["nurse"])
    prescriber = actor_for(members["prescriber"])
    admin = actor_for(members["clinic_admin"])
    [visit] = _consults(org_a, desk, admin, members, 1)
    with scope(organization=org_a):
        link = measure_link_create(actor=nurse, patient=visit.patient, instrument_id="phq9")
        dosed = make_patient(prescriber, given_name="Iris", family_name="Murdoch", mrn="S1")
        make_treatable(prescriber, dosed, "iv-ketamine-induction")
        weigh(prescriber, dosed)
        plan = make_plan(prescriber, dosed, "iv-ketamine-induction")
        session = sessions.session_schedule(
            actor=prescriber, plan=plan, scheduled_at=SESSION_DAY, chair=free_chair()
        )
    return {"visit": visit, "link": link.link, "session": session, "dosed": dosed}


def test_the_front_desk_sees_todays_arrivals_in_clinic_time_with_forms_pending(
    members: dict[str, Any], desk_day: dict[str, Any]
) -> None:
    data = api_client(members["front_desk"]).get("/api/v1/today/arrivals").json()
    assert data["day"] == {"clinic": "A Main", "time_zone": "America/Chicago", "date": "2026-03-02"}
    first, second = data["arrivals"]
    assert (first["time"], first["patient_name"], first["status"]) == (
        "09:00 CST",
        "Iris Murdoch",
        "Expected",
    )
    # The front desk cannot open a monitored session: no button, and it says who does.
    assert first["check_in"] is None
    assert "nurse" in first["check_in_note"]
    assert (second["time"], second["visit"], second["status"]) == (
        "11:00 CST",
        "Consultation",
        "Expected",
    )
    assert second["check_in"] == {"kind": "appointment", "id": str(desk_day["visit"].public_id)}
    forms = {f["kind"]: f for f in second["forms"]}
    assert forms["questionnaire"]["title"] == "PHQ-9"
    assert forms["questionnaire"]["link_id"] == str(desk_day["link"].public_id)
    assert forms["questionnaire"]["status"].startswith("sent, open until 2026-03-05 09:00 CST")
    assert forms["intake"]["resend"] == "portal_invitation"
    assert "consent" not in forms  # a consultation needs no treatment consent
    assert first["forms"] == []  # screened, consented: nothing owed
    assert data["with_forms"] == 1

    page = staff_client(members["front_desk"]).get("/").content.decode()
    assert "09:00 CST" in page
    assert "11:00 CST" in page
    assert page.index("Iris Murdoch") < page.index("Pat0 Doe")
    assert "Send the PHQ-9 link again" in page
    assert "Send the portal link again" in page


def test_check_in_from_the_list_returns_to_today(
    members: dict[str, Any], desk_day: dict[str, Any]
) -> None:
    visit = desk_day["visit"]
    response = staff_client(members["front_desk"]).post(
        f"/calendar/appointments/{visit.public_id}/check-in/", {"back": "today"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    visit.refresh_from_db()
    assert visit.status == Appointment.Status.CHECKED_IN
    data = api_client(members["front_desk"]).get("/api/v1/today/arrivals").json()
    assert data["arrivals"][1]["status"] == "Checked in"
    assert data["arrivals"][1]["check_in"] is None


def test_the_nurse_checks_in_the_dosing_session_from_the_list(
    members: dict[str, Any], desk_day: dict[str, Any]
) -> None:
    session = desk_day["session"]
    data = api_client(members["nurse"]).get("/api/v1/today/arrivals").json()
    assert data["arrivals"][0]["check_in"] == {"kind": "session", "id": str(session.public_id)}
    page = staff_client(members["nurse"]).get("/").content.decode()
    assert f"/sessions/{session.public_id}/check-in/" in page


def test_resending_a_questionnaire_link_replaces_the_old_one(
    members: dict[str, Any], desk_day: dict[str, Any]
) -> None:
    old = desk_day["link"]
    response = staff_client(members["front_desk"]).post(f"/measures/links/{old.public_id}/resend/")
    assert response.status_code == 200
    assert "PHQ-9 sent again to Pat0 Doe" in response.content.decode()
    old.refresh_from_db()
    assert old.expires_at <= SESSION_DAY  # the old link no longer works
    data = api_client(members["front_desk"]).get("/api/v1/today/arrivals").json()
    [questionnaire] = [f for f in data["arrivals"][1]["forms"] if f["kind"] == "questionnaire"]
    assert questionnaire["link_id"] != str(old.public_id)
    with scope(organization=old.organization):
        assert OneTimeLink.objects.filter(target_id=old.target_id).count() == 2
    # The API twin; a link already answered, or someone else's, is refused.
    again = api_client(members["front_desk"]).post(
        f"/api/v1/measure-links/{questionnaire['link_id']}/resend"
    )
    assert again.status_code == 201
    assert "/portal/m/" in again.json()["url"]
    assert (
        api_client(members["researcher"])
        .post(f"/api/v1/measure-links/{questionnaire['link_id']}/resend")
        .status_code
        == 403
    )


def test_the_arrivals_cost_the_same_queries_for_one_patient_or_six(
    members: dict[str, Any], traveller: Any, org_a: Any, django_assert_max_num_queries: Any
) -> None:
    desk = actor_for(members["front_desk"])
    admin = actor_for(members["clinic_admin"])
    _consults(org_a, desk, admin, members, 1)
    browser, api = staff_client(members["front_desk"]), api_client(members["front_desk"])
    browser.get("/"), api.get("/api/v1/today/arrivals")  # warm the identity cache

    def counted() -> tuple[int, int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as page:
            assert browser.get("/").status_code == 200
        with CaptureQueriesContext(connection) as json:
            assert api.get("/api/v1/today/arrivals").status_code == 200
        return len(page), len(json)

    one = counted()
    _consults(org_a, desk, admin, members, 6, first=1)
    with django_assert_max_num_queries(one[0]):
        assert browser.get("/").status_code == 200
    with django_assert_max_num_queries(one[1]):
        assert api.get("/api/v1/today/arrivals").status_code == 200
    assert len(api.get("/api/v1/today/arrivals").json()["arrivals"]) == 7


def test_the_therapist_sees_visits_notes_to_finish_and_integration_due(
    members: dict[str, Any], traveller: Any, org_a: Any
) -> None:
    from ketaclinic.therapy import services as therapy

    prescriber = actor_for(members["prescriber"])
    therapist = actor_for(members["therapist"])
    with scope(organization=org_a):
        patient = make_patient(prescriber, given_name="Noor", family_name="Haddad", mrn="T1")
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient, "iv-ketamine-induction")
        therapy.team_assign(actor=prescriber, therapist=members["therapist"].user, plan=plan)
        therapy.visit_create(
            actor=therapist,
            patient=patient,
            kind="preparation",
            visit_format="individual",
            group_size=None,
            modality="in_person",
            with_em=False,
            session=None,
            appointment=None,
            started_at=SESSION_DAY,
        )
    data = api_client(members["therapist"]).get("/api/v1/today/therapy").json()
    [visit] = data["visits"]
    assert (visit["when"], visit["patient_name"]) == ("09:00 CST", "Noor Haddad")
    assert visit["what"] == "Preparation: visit open, note not signed"
    assert [n["patient_name"] for n in data["notes_to_finish"]] == ["Noor Haddad"]
    assert data["integration_due"] == []  # not dosed yet
    page = staff_client(members["therapist"]).get("/").content.decode()
    assert "Notes to finish" in page
    assert "Noor Haddad" in page


def test_the_compliance_home_lists_counts_due_and_access_to_review(
    members: dict[str, Any], traveller: Any, org_a: Any
) -> None:
    from ketaclinic.patients.access import break_glass_open
    from ketaclinic.sessions.tests.builders import receive_stock

    nurse = actor_for(members["nurse"])
    with scope(organization=org_a):
        receive_stock(nurse)
        patient = make_patient(
            actor_for(members["prescriber"]), given_name="Lea", family_name="Roth", mrn="B1"
        )
        break_glass_open(
            actor=nurse,
            patient_id=patient.public_id,
            reason="Covering the floor for a colleague who is ill",
        )
    data = api_client(members["compliance"]).get("/api/v1/today/compliance").json()
    assert [i["kind"] for i in data["controlled_substances"]] == ["count_due"]
    assert data["controlled_substances"][0]["text"].startswith("No count at ")
    [review] = data["access_reviews"]
    assert "Lea Roth" in review["text"]
    assert "Covering the floor for" in review["text"]
    assert review["screen"] == "/patients/break-glass/"
    page = staff_client(members["compliance"]).get("/").content.decode()
    assert 'id="compliance-day"' in page
    assert "Lea Roth" in page
    assert api_client(members["nurse"]).get("/api/v1/today/compliance").status_code == 403


def test_the_researcher_home_shows_aggregates_and_never_a_patient(
    members: dict[str, Any], traveller: Any, org_a: Any
) -> None:
    make_patient(actor_for(members["prescriber"]), given_name="Zelda", family_name="Quist")
    data = api_client(members["researcher"]).get("/api/v1/today/research").json()
    assert [f["label"] for f in data["figures"]] == ["Response", "Remission"]
    assert data["patients"] == 0
    page = staff_client(members["researcher"]).get("/").content.decode()
    assert 'id="research-home"' in page
    assert "Zelda" not in page
    assert "Zelda" not in str(data)
    assert api_client(members["front_desk"]).get("/api/v1/today/research").status_code == 403


def test_the_admin_checklist_says_where_each_item_is_done(members: dict[str, Any]) -> None:
    items = api_client(members["clinic_admin"]).get("/api/v1/setup/checklist").json()
    by_key = {i["key"]: i for i in items}
    assert by_key["chairs"]["required"] is True
    assert by_key["chairs"]["done"] is True  # organization_create made four chairs
    assert by_key["screening_policy"] == {
        **by_key["screening_policy"],
        "required": False,
        "done": False,
        "screen": "/screening/policy/",
    }
    page = staff_client(members["clinic_admin"]).get("/").content.decode()
    assert 'id="checklist-advised"' in page
    assert 'href="/screening/policy/"' in page


def _queries(client: Any, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_therapy_and_compliance_homes_cost_the_same_queries_for_one_patient_or_four(
    members: dict[str, Any], traveller: Any, org_a: Any, django_assert_max_num_queries: Any
) -> None:
    from ketaclinic.patients.access import break_glass_open
    from ketaclinic.therapy import services as therapy

    prescriber = actor_for(members["prescriber"])
    therapist = actor_for(members["therapist"])
    nurse = actor_for(members["nurse"])

    def add(n: int) -> None:
        with scope(organization=org_a):
            patient = make_patient(prescriber, given_name=f"Q{n}", family_name="Roe", mrn=f"Q{n}")
            make_treatable(prescriber, patient, "iv-ketamine-induction")
            plan = make_plan(prescriber, patient, "iv-ketamine-induction")
            therapy.team_assign(actor=prescriber, therapist=members["therapist"].user, plan=plan)
            therapy.visit_create(
                actor=therapist, patient=patient, kind="preparation", started_at=SESSION_DAY
            )
            break_glass_open(
                actor=nurse, patient_id=patient.public_id, reason="Covering for an ill colleague"
            )

    add(0)
    clients = {
        "/api/v1/today/therapy": api_client(members["therapist"]),
        "/api/v1/today/compliance": api_client(members["compliance"]),
    }
    pages = {"therapist": staff_client(members["therapist"])}
    pages["compliance"] = staff_client(members["compliance"])
    for url, client in clients.items():
        _queries(client, url)  # warm the identity cache
    for page in pages.values():
        _queries(page, "/")
    one = {url: _queries(client, url) for url, client in clients.items()}
    one_page = {role: _queries(page, "/") for role, page in pages.items()}
    for n in range(1, 4):
        add(n)
    for url, client in clients.items():
        with django_assert_max_num_queries(one[url]):
            assert client.get(url).status_code == 200
    for role, page in pages.items():
        with django_assert_max_num_queries(one_page[role]):
            assert page.get("/").status_code == 200
    assert len(clients["/api/v1/today/therapy"].get("/api/v1/today/therapy").json()["visits"]) == 4
    reviews = clients["/api/v1/today/compliance"].get("/api/v1/today/compliance").json()
    assert len(reviews["access_reviews"]) == 4
