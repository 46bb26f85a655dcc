"""JSON API for outcomes: ad-hoc survival statistics and the clinic's durability curves."""

from __future__ import annotations

import csv

import pytest

from conftest import api_client, audit_count
from ketaclinic.outcomes.tests.test_stats import AML

pytestmark = pytest.mark.django_db
SURVIVAL = "/api/v1/outcomes/survival"


def aml_body() -> dict:
    groups: dict[str, list] = {}
    with AML.open() as handle:
        for row in csv.DictReader(handle):
            groups.setdefault(row["x"], []).append(
                {"time": float(row["time"]), "event": row["status"] == "1"}
            )
    return {"groups": groups}


@pytest.mark.parametrize("role", ["researcher", "prescriber", "clinic_admin"])
def test_survival_answers_r_figures_to_the_roles_allowed(members, role) -> None:
    response = api_client(members[role]).post(SURVIVAL, aml_body(), content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    maintained = body["groups"]["Maintained"]
    assert (maintained["n"], maintained["events"]) == (11, 7)
    assert (maintained["median"], maintained["median_ci_lower"]) == (31, 18)
    assert maintained["median_ci_upper"] is None
    assert maintained["quartiles"] == {"25": 18, "50": 31, "75": 48}
    first = maintained["curve"][0]
    assert first["time"] == 9
    assert first["at_risk"] == 11
    assert round(first["survival"], 3) == 0.909
    assert round(first["ci_lower"], 4) == 0.7541
    assert set(first) == {"time", "survival", "at_risk", "ci_lower", "ci_upper"}
    assert body["groups"]["Nonmaintained"]["median"] == 23
    assert round(body["logrank"]["chisq"], 1) == 3.4
    assert body["logrank"]["df"] == 1
    assert round(body["logrank"]["p"], 2) == 0.07


def test_one_group_has_no_logrank_and_unreached_values_are_null(members) -> None:
    body = {"groups": {"all": [{"time": 5, "event": False}, {"time": 9, "event": True}]}}
    response = api_client(members["researcher"]).post(
        SURVIVAL, body, content_type="application/json"
    )
    assert response.status_code == 200
    result = response.json()
    assert result["logrank"] is None
    assert result["groups"]["all"]["median"] == 9
    assert result["groups"]["all"]["quartiles"]["25"] == 9


@pytest.mark.parametrize("role", ["nurse", "therapist", "front_desk", "compliance"])
def test_other_roles_are_refused(members, role) -> None:
    response = api_client(members[role]).post(SURVIVAL, aml_body(), content_type="application/json")
    assert response.status_code == 403
    assert "outcomes.analyze" in response.json()["detail"]


@pytest.mark.parametrize(
    ("groups", "field"),
    [
        ({"a": [{"time": -1, "event": True}]}, "groups.a.0.time"),
        ({"a": []}, "groups.a"),
        ({}, "groups"),
        ({"a": [{"time": 1}]}, "groups.a.0.event"),
    ],
)
def test_bad_survival_data_names_the_field(members, groups, field) -> None:
    response = api_client(members["researcher"]).post(
        SURVIVAL, {"groups": groups}, content_type="application/json"
    )
    assert 400 <= response.status_code < 500
    assert field in [error["field"] for error in response.json()["errors"]]


def test_durability_of_the_clinic_cohort_by_route(
    members, treated_cohort, django_assert_max_num_queries
) -> None:
    client = api_client(members["researcher"])
    before = audit_count(action="outcomes.cohort.viewed")
    with django_assert_max_num_queries(20):
        response = client.get("/api/v1/outcomes/durability?instrument=madrs&group_by=route")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_unit"] == "days"
    assert set(body["groups"]) <= {"intravenous", "intranasal"}
    group = next(iter(body["groups"].values()))
    assert len(group["times"]) == len(group["event_flags"]) == group["n"]
    assert sum(group["event_flags"]) == group["events"]
    assert group["curve"][0]["at_risk"] == group["n"]
    if len(body["groups"]) == 2:
        assert body["logrank"]["df"] == 1
    # The same responders again, by how often they were dosed after responding.
    by_maintenance = body["by_maintenance"]["groups"]
    assert set(by_maintenance) <= {"weekly", "every 2 weeks", "less often", "no dose after"}
    assert sum(g["n"] for g in by_maintenance.values()) == sum(
        g["n"] for g in body["groups"].values()
    )
    assert audit_count(action="outcomes.cohort.viewed") == before + 1


def test_phq9_has_no_relapse_score_rule_so_its_responders_are_not_evaluable(
    members, treated_cohort
) -> None:
    body = api_client(members["prescriber"]).get("/api/v1/outcomes/durability").json()
    assert body["groups"] == {}
    assert body["not_evaluable"] > 0


def test_durability_filters_are_validated(members) -> None:
    response = api_client(members["researcher"]).get("/api/v1/outcomes/durability?age_band=12-17")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "age_band"
