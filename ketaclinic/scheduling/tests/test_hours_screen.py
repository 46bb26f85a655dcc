"""The working-hours screen: a clinic admin sets a nurse's regular week on screen (the JSON API's
PUT /scheduling/hours through the same service), sees it in clinic time, and a bad week is
refused beside the field with nothing written."""

from __future__ import annotations

import re

import pytest
from django_scopes import scope

from conftest import staff_client
from ketaclinic.accounts.audit import AuditEvent
from ketaclinic.scheduling.models import StaffHours

pytestmark = pytest.mark.django_db

WEEK = {
    "d0_0_start": "09:00",
    "d0_0_end": "17:00",
    "d1_0_start": "09:00",
    "d1_0_end": "12:00",
    "d1_1_start": "13:00",
    "d1_1_end": "17:30",
}


def _nurse_url(members) -> str:
    return f"/calendar/settings/hours/{members['nurse'].user.public_id}/"


def test_the_admin_sets_a_nurses_week_and_the_list_shows_it(members, org_a):
    client = staff_client(members["clinic_admin"])
    listing = client.get("/calendar/settings/hours/").content.decode()
    nurse_name = members["nurse"].user.display_name
    assert nurse_name in listing
    assert "No hours set: not bookable" in listing
    checklist = client.get("/setup/").content.decode()
    assert "Working hours of the clinicians and nurses" in checklist

    saved = client.post(_nurse_url(members), WEEK)
    assert saved.status_code == 302
    listing = client.get(saved["Location"]).content.decode()
    week = re.search(
        r"Monday 09:00–17:00 (C[SD]T); Tuesday 09:00–12:00 \1, 13:00–17:30 \1", listing
    )
    assert week is not None, "the week is shown in clinic time, with the clinic's zone"
    assert f"Working hours of {nurse_name} saved." in listing
    with scope(organization=org_a):
        rows = StaffHours.objects.filter(membership=members["nurse"]).order_by(
            "weekday", "start_time"
        )
        assert [(r.weekday, f"{r.start_time:%H:%M}", f"{r.end_time:%H:%M}") for r in rows] == [
            (0, "09:00", "17:00"),
            (1, "09:00", "12:00"),
            (1, "13:00", "17:30"),
        ]
        assert AuditEvent.objects.filter(action="scheduling.hours.set").count() == 1
    # The form opens on the saved week; emptying Monday makes it a day off.
    page = client.get(_nurse_url(members)).content.decode()
    assert 'value="13:00"' in page
    client.post(_nurse_url(members), {k: v for k, v in WEEK.items() if not k.startswith("d0")})
    listing = client.get("/calendar/settings/hours/").content.decode()
    assert "Monday" not in listing.split('id="hours"')[1]


@pytest.mark.parametrize(
    ("posted", "field", "reason"),
    [
        (
            {"d2_0_start": "17:00", "d2_0_end": "09:00"},
            "d2_0_end",
            "The end must be after the start.",
        ),
        ({"d4_1_start": "13:00"}, "d4_1_end", "Give both the start and the end, or neither."),
        ({"d5_0_start": "nine", "d5_0_end": "12:00"}, "d5_0_start", "Enter a valid time."),
    ],
)
def test_a_bad_week_is_refused_beside_the_field_and_nothing_is_written(
    members, org_a, posted, field, reason
):
    client = staff_client(members["clinic_admin"])
    response = client.post(_nurse_url(members), {**WEEK, **posted})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}-error"' in html
    assert reason in html
    assert 'value="13:00"' in html  # what was typed is kept
    with scope(organization=org_a):
        assert not StaffHours.objects.exists()


def test_a_nurse_sees_the_hours_but_cannot_change_them(
    members, org_a, django_assert_max_num_queries
):
    client = staff_client(members["nurse"])
    with django_assert_max_num_queries(12):
        assert client.get("/calendar/settings/hours/").status_code == 200
    page = client.get(_nurse_url(members)).content.decode()
    assert "Save the week" not in page
    assert client.post(_nurse_url(members), WEEK).status_code == 403
    with scope(organization=org_a):
        assert not StaffHours.objects.exists()
