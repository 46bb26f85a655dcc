"""The public page: a consult request with pre-screen, abuse limits, and conversion by the desk."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled
from hypothesis import given
from hypothesis import strategies as st

from conftest import actor_for, staff_client
from ketaclinic.scheduling import frontdoor, leads
from ketaclinic.scheduling.models import Appointment, Lead
from ketaclinic.scheduling.tests.helpers import clinic_of, open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
GOOD = {
    "given_name": "Rosa",
    "family_name": "Parks",
    "birth_date": "1980-02-04",
    "sex_at_birth": "female",
    "email": "rosa@example.org",
    "phone": "",
    "reason": "Depression that has not lifted with two medicines",
}


@pytest.fixture
def front(members, org_a):
    admin = actor_for(members["clinic_admin"])
    with time_machine.travel(NOW, tick=False) as traveller:
        with scope(organization=org_a):
            open_every_day(admin, members["prescriber"], members["nurse"])
            types(org_a)
        clinic = clinic_of_unscoped(org_a)
        yield {"clinic": clinic, "url": f"/c/{clinic.public_id}/", "traveller": traveller}


def clinic_of_unscoped(org):
    with scope(organization=org):
        return clinic_of(org)


def public(address="203.0.113.7"):
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=address)


def post(client, url, data):
    page = client.get(url)
    token = page.cookies["csrftoken"].value
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def leads_count():
    with scopes_disabled():
        return Lead.objects.count()


def test_a_new_patient_requests_a_consult_and_the_desk_converts_and_books_it(front, members):
    client = public()
    page = client.get(front["url"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "IV ketamine infusion" in html
    slot = html.split('name="slot" value="', 1)[1].split('"', 1)[0]
    response = post(client, front["url"], {**GOOD, "slot": slot})
    assert response.status_code == 200
    assert "We will confirm your consultation" in response.content.decode()

    with scopes_disabled():
        lead = Lead.objects.get()
    assert lead.route == "book"
    assert lead.requested_start == datetime.fromisoformat(slot.split("|")[0])
    desk = staff_client(members["front_desk"])
    assert "Rosa Parks" in desk.get("/calendar/leads/").content.decode()
    converted = desk.post(f"/calendar/leads/{lead.public_id}/convert/")
    assert converted.status_code == 302
    with scopes_disabled():
        lead.refresh_from_db()
        appointment = Appointment.objects.get(patient=lead.patient)
    assert (lead.status, appointment.source, appointment.status) == (
        "converted",
        "front_door",
        "booked",
    )


@pytest.mark.parametrize("flag", sorted(frontdoor.QUESTIONS))
def test_any_pre_screen_flag_routes_to_a_clinician_and_never_books(front, members, flag):
    client = public()
    html = client.get(front["url"]).content.decode()
    slot = html.split('name="slot" value="', 1)[1].split('"', 1)[0]
    response = post(client, front["url"], {**GOOD, "slot": slot, flag: "yes"})
    assert "A clinician will call you before anything is booked" in response.content.decode()
    with scopes_disabled():
        lead = Lead.objects.get()
    assert lead.route == "review"
    assert lead.requested_start is None
    assert lead.absolute_contraindication is frontdoor.QUESTIONS[flag][1]
    staff_client(members["front_desk"]).post(f"/calendar/leads/{lead.public_id}/convert/")
    with scopes_disabled():
        assert not Appointment.objects.exists()


def test_missing_fields_and_absurd_dates_get_clear_errors_and_write_nothing(front):
    client = public()
    response = post(client, front["url"], {"given_name": "", "birth_date": "1850-01-01"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Enter your last name." in html
    assert "This date of birth is not possible." in html
    assert "Give an e-mail address or a phone number." in html
    response = post(client, front["url"], {**GOOD, "birth_date": "2999-01-01"})
    assert "This date of birth is not possible." in response.content.decode()
    response = post(client, front["url"], {**GOOD, "slot": "2020-01-01T09:00:00+00:00|1"})
    assert "Choose one of the times shown." in response.content.decode()
    assert leads_count() == 0


def test_ten_requests_a_minute_from_one_address_are_held_to_the_limit(front):
    client = public()
    statuses = []
    for i in range(10):
        response = post(client, front["url"], {**GOOD, "email": f"r{i}@example.org"})
        statuses.append(response.status_code)
    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    assert "Too many requests" in response.content.decode()
    assert leads_count() == 3
    # Another connection is not held back.
    assert (
        post(public("198.51.100.9"), front["url"], {**GOOD, "email": "x@example.org"}).status_code
        == 200
    )


def test_the_honeypot_and_the_csrf_check_keep_scripts_out(front):
    client = public()
    response = post(client, front["url"], {**GOOD, "website": "http://spam.example"})
    assert response.status_code == 200
    assert public().post(front["url"], GOOD).status_code == 403  # no CSRF token
    assert leads_count() == 0


def test_the_same_email_cannot_flood_the_desk(front):
    for address in ("192.0.2.1", "192.0.2.2"):
        assert post(public(address), front["url"], GOOD).status_code == 200
    assert post(public("192.0.2.3"), front["url"], GOOD).status_code == 429
    assert leads_count() == 2


@given(
    answers=st.dictionaries(st.sampled_from(sorted(frontdoor.QUESTIONS)), st.booleans()),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 3, 2)),
)
def test_the_prescreen_books_only_when_nothing_is_flagged(answers, birth):
    result = frontdoor.prescreen(answers, birth_date=birth, today=date(2026, 3, 2))
    flagged = any(answers.values()) or frontdoor.age_on(birth, date(2026, 3, 2)) < 18
    assert (result.route == "review") is flagged
    if any(answers.get(k) for k, (_, absolute) in frontdoor.QUESTIONS.items() if absolute):
        assert result.route == "review"
        assert result.absolute


def test_leads_through_the_api(front, members):
    post(public(), front["url"], GOOD)
    from conftest import api_client

    client = api_client(members["front_desk"])
    [lead] = client.get("/api/v1/scheduling/leads").json()
    done = client.post(f"/api/v1/scheduling/leads/{lead['id']}/convert")
    assert done.status_code == 200
    assert done.json()["status"] == "converted"
    assert done.json()["patient"] is not None
    assert leads.TooManyRequests.status == 429


def test_the_public_page_shows_a_price_only_where_the_clinic_publishes_one(front, members):
    from conftest import api_client

    page = public().get(front["url"]).content.decode()
    assert "$" not in page
    assert "Good Faith Estimate" not in page
    admin = api_client(members["clinic_admin"])
    published = admin.put(
        "/api/v1/scheduling/types/consult",
        {"duration_minutes": 60, "bookable_online": True, "public_price": "1250.00"},
        content_type="application/json",
    )
    assert published.status_code == 200, published.content
    assert published.json()["public_price"] == "1250.00"
    negative = admin.put(
        "/api/v1/scheduling/types/follow_up",
        {"duration_minutes": 30, "bookable_online": True, "public_price": "-5"},
        content_type="application/json",
    )
    assert negative.status_code == 422
    services_list = public().get(front["url"]).content.decode().split('id="services"')[1]
    services_list = services_list.split("</ul>")[0]
    assert 'Consultation <small>(about 60 minutes)</small> · <span class="price">$1,250</span>' in (
        services_list
    )
    assert services_list.count("$") == 1  # the follow-up has no published price
