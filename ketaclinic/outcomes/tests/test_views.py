"""The outcomes dashboard: pictures and tables of aggregates, definitions shown, roles."""

from __future__ import annotations

import pytest

from conftest import staff_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["researcher", "prescriber", "clinic_admin"])
def test_dashboard_shows_charts_tables_and_definitions_without_names(
    members,
    treated_cohort,
    role,
    django_assert_max_num_queries,
) -> None:
    client = staff_client(members[role])
    with django_assert_max_num_queries(30):
        response = client.get("/outcomes/?instrument=madrs&group_by=route&induction_days=28")
    assert response.status_code == 200
    page = response.content.decode()
    for chart in ('id="rates"', 'id="change"', 'id="to-response"', 'id="durability"'):
        assert chart in page
    assert "km-at-risk" in page
    assert "Remission (MADRS)" in page
    assert "score &lt;= 12" in page
    assert "wording unconfirmed" in page
    assert 'id="rates-table"' in page
    assert 'id="ae-table"' in page
    assert 'id="bp-table"' in page
    assert 'id="cadss-table"' in page
    assert 'id="dissociation"' in page
    assert 'id="maintenance-table"' in page
    assert "Lovelace" not in page  # the cohort's patients are all "Ada Lovelace"
    assert "C0001" not in page


@pytest.mark.parametrize("role", ["nurse", "therapist", "front_desk", "compliance"])
def test_other_roles_may_not_open_the_dashboard(members, role) -> None:
    assert staff_client(members[role]).get("/outcomes/").status_code == 403


def test_bad_filter_is_shown_next_to_its_field(members) -> None:
    response = staff_client(members["prescriber"]).get(
        "/outcomes/?instrument=phq9&group_by=route&induction_days=2"
    )
    assert response.status_code == 400
    assert 'id="id_induction_days-error"' in response.content.decode()


def test_phq9_durability_says_why_responders_cannot_be_judged(
    members,
    treated_cohort,
) -> None:
    page = staff_client(members["prescriber"]).get("/outcomes/").content.decode()
    assert 'id="not-evaluable"' in page
    assert "no relapse score rule" in page
