"""A clinician's ICS feed: tokenised, without patient names, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from django.test import Client
from django_scopes import scope

from conftest import actor_for, api_client, make_patient
from ketaclinic.scheduling import services
from ketaclinic.scheduling.tests.helpers import open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_the_feed_lists_the_clinicians_visits_until_revoked(members, prescriber, org_a):
    with time_machine.travel(NOW, tick=False):
        with scope(organization=org_a):
            open_every_day(actor_for(members["clinic_admin"]), members["prescriber"])
            services.appointment_book(
                actor=prescriber,
                patient=make_patient(prescriber, given_name="Zebulon"),
                appointment_type=types(org_a)["consult"],
                starts_at=NOW + timedelta(days=1),
                clinician=members["prescriber"],
            )
        client = api_client(members["prescriber"])
        issued = client.post("/api/v1/scheduling/calendar-feed")
        assert issued.status_code == 201
        url = issued.json()["url"]
        feed = Client().get(url)
        assert feed.status_code == 200
        assert feed["Content-Type"].startswith("text/calendar")
        body = feed.content.decode()
        assert "SUMMARY:Consultation" in body
        assert "DTSTART:20260303T150000Z" in body
        assert "Zebulon" not in body
        assert client.delete("/api/v1/scheduling/calendar-feed").status_code == 204
        assert Client().get(url).status_code == 404
        assert Client().get("/calendar/feed/not-a-token.ics").status_code == 404
