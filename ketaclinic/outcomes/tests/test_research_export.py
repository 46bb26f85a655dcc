"""The de-identified research export, field by field against HIPAA Safe Harbor's identifiers,
through the job API a researcher uses: 202, poll, download."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest
from django_scopes import scopes_disabled

from conftest import api_client, audit_count, make_patient
from ketaclinic.outcomes.deid import ZIP3_CENSUS_2000, age_fields, zip3
from ketaclinic.outcomes.export_files import export_directory
from ketaclinic.outcomes.models import DataExport, ResearchDateShift
from ketaclinic.outcomes.research_export import DICTIONARY
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.django_db
EXPORTS = "/api/v1/research/exports"

IDENTIFIED = [
    {
        "given_name": "Zebulon",
        "family_name": "Quatermain",
        "mrn": "MRN-77123",
        "birth_date": date(1931, 5, 17),  # over 89 at the first dose
        "phone": "312-867-5309",
        "email": "zebulon.q@example.org",
        "address": "1200 Elmwood Avenue, Springfield, IL 62704",
        "emergency_contact_name": "Philippa Quatermain",
        "emergency_contact_phone": "312-555-0142",
    },
    {
        "given_name": "Marisol",
        "family_name": "Featherstonehaugh",
        "mrn": "MRN-88456",
        "birth_date": date(1984, 11, 3),
        "phone": "(608) 555-0199",
        "email": "marisol@example.com",
        "address": "77 Lakeshore Drive, Madison, WI 53703-1234",
    },
]


@pytest.fixture
def identified_cohort(prescriber, org_a, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    for data in IDENTIFIED:
        make_patient(prescriber, **data)
    for index in range(8):
        make_patient(prescriber, mrn=f"X{index:04d}", given_name="Ada", family_name="Lovelace")
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=org_a))
    add_histories(
        organization=org_a,
        recorded_by=prescriber.user,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    return patients


def run_export(client, django_capture_on_commit_callbacks, body=None):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(EXPORTS, body or {}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    status = client.get(f"{EXPORTS}/{response.json()['id']}")
    assert status.status_code == 200
    return status.json()


def download(client, file):
    response = client.get(file["url"])
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def rows(client, job, table):
    file = next(f for f in job["files"] if f["name"] == f"{table}.csv")
    return list(csv.DictReader(io.StringIO(download(client, file).decode())))


def test_none_of_the_identifiers_survives(
    members, identified_cohort, django_capture_on_commit_callbacks
) -> None:
    client = api_client(members["researcher"])
    job = run_export(client, django_capture_on_commit_callbacks)
    assert job["status"] == "done"
    assert job["progress"] == 100
    assert job["patients"] == 10
    assert job["rule"] == "safe-harbor@1"
    texts = []
    for file in job["files"]:
        content = download(client, file)
        if file["format"] == "parquet":  # compressed: compare the values it holds
            texts.append(repr(pq.read_table(io.BytesIO(content)).to_pylist()))
        else:
            texts.append(content.decode())
    everything = "\n".join(texts)
    with scopes_disabled():
        public_ids = [str(p.public_id) for p in Patient.objects.all()]
    forbidden = [
        "Zebulon", "Quatermain", "Marisol", "Featherstonehaugh", "Lovelace", "Philippa",
        "MRN-77123", "MRN-88456", "X0001", "867-5309", "555-0142", "555-0199",
        "example.org", "example.com", "Elmwood", "Lakeshore", "Springfield", "Madison",
        "62704", "53703", "http", "www.", "lot", *public_ids,
    ]  # fmt: skip
    for identifier in forbidden:
        assert identifier not in everything, identifier
    assert not re.search(r"[\w.]+@[\w-]+\.\w+", everything)  # no e-mail address
    # No date but a year leaves: no yyyy-mm-dd, no mm/dd/yyyy, no time of day.
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{2}:\d{2}", everything)


def test_each_field_follows_its_rule(
    members, identified_cohort, django_capture_on_commit_callbacks
) -> None:
    client = api_client(members["researcher"])
    job = run_export(client, django_capture_on_commit_callbacks)
    patients = rows(client, job, "patients")
    assert list(patients[0]) == [name for name, _, _ in DICTIONARY["patients"]]
    assert all(re.fullmatch(r"R\d{5}", row["patient"]) for row in patients)
    assert {row["zip3"] for row in patients} == {"000"}  # the conservative default table
    elder = [row for row in patients if row["age_at_first_dose"] == "90+"]
    assert len(elder) == 1
    assert elder[0]["birth_year"] == ""
    others = [row for row in patients if row["age_at_first_dose"] != "90+"]
    assert all(re.fullmatch(r"\d{4}", row["birth_year"]) for row in others)
    assert all(re.fullmatch(r"\d{4}", row["first_dose_year"]) for row in patients)
    measures = rows(client, job, "measures")
    assert set(measures[0]) == {"patient", "instrument", "score", "day"}
    assert any(int(row["day"]) < 0 for row in measures)  # the baseline, before the first dose
    events = rows(client, job, "adverse_events")
    assert set(events[0]) == {"patient", "event", "grade", "serious", "day"}
    pseudonyms = {row["patient"] for row in patients}
    assert {row["patient"] for row in measures} <= pseudonyms
    dictionary = rows(client, job, "data_dictionary")
    assert {(r["table"], r["column"]) for r in dictionary} >= {
        ("patients", "zip3"),
        ("outcomes", "durability_days"),
    }
    parquet = next(f for f in job["files"] if f["name"] == "measures.parquet")
    table = pq.read_table(io.BytesIO(download(client, parquet)))
    assert table.num_rows == len(measures)
    assert table.schema.field("day").type == "int64"


def test_two_exports_keep_one_shift_per_patient_and_both_are_logged(
    members, identified_cohort, django_capture_on_commit_callbacks
) -> None:
    client = api_client(members["researcher"])
    before = audit_count(action="outcomes.research_export.completed")
    first = run_export(client, django_capture_on_commit_callbacks)
    with scopes_disabled():
        shifts = dict(ResearchDateShift.objects.values_list("patient_id", "shift_days"))
    second = run_export(client, django_capture_on_commit_callbacks)
    with scopes_disabled():
        assert dict(ResearchDateShift.objects.values_list("patient_id", "shift_days")) == shifts
    assert len(shifts) == 10
    assert 0 not in shifts.values()

    def shifted(job):
        return sorted(
            (r["first_dose_year"], r["birth_year"], r["age_at_first_dose"], r["dosed_sessions"])
            for r in rows(client, job, "patients")
        )

    assert shifted(first) == shifted(second)
    with scopes_disabled():
        log = list(DataExport.objects.order_by("created_at"))
    assert [str(e.public_id) for e in log] == [first["id"], second["id"]]
    for entry in log:
        assert entry.requested_by == members["researcher"].user
        assert entry.rule_version == "safe-harbor@1"
        assert entry.zip3_table == "zip3-none@1"
        assert "instrument PHQ-9" in entry.cohort_described
    assert audit_count(action="outcomes.research_export.completed") == before + 2
    for job in (first, second):
        assert audit_count(action="outcomes.research_export.completed", object_id=job["id"]) == 1


def test_a_researcher_gets_the_export_but_never_the_identified_chart(members) -> None:
    client = api_client(members["researcher"])
    assert client.get("/api/v1/patients").status_code == 403


@pytest.mark.parametrize("role", ["nurse", "therapist", "front_desk", "compliance", "prescriber"])
def test_other_roles_cannot_export(members, role) -> None:
    response = api_client(members[role]).post(EXPORTS, {}, content_type="application/json")
    assert response.status_code == 403


def test_another_clinic_cannot_see_the_job(
    members, outsider, identified_cohort, django_capture_on_commit_callbacks
) -> None:
    job = run_export(api_client(members["researcher"]), django_capture_on_commit_callbacks)
    from conftest import make_member
    from ketaclinic.accounts.roles import Role

    foreign = make_member(outsider.organization, Role.RESEARCHER.value, username="foreign-r")
    assert api_client(foreign).get(f"{EXPORTS}/{job['id']}").status_code == 404
    assert api_client(foreign).get(job["files"][0]["url"]).status_code == 404


def test_files_are_written_under_the_export_directory(
    members, identified_cohort, django_capture_on_commit_callbacks
) -> None:
    job = run_export(api_client(members["clinic_admin"]), django_capture_on_commit_callbacks)
    with scopes_disabled():
        export = DataExport.objects.get(public_id=job["id"])
    assert sorted(p.name for p in export_directory(export).iterdir()) == sorted(
        f["name"] for f in job["files"]
    )


# --- the pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "table", "expected"),
    [
        ("1 Main St, Springfield, IL 62704", "zip3-none@1", "000"),
        ("1 Main St, Springfield, IL 62704", ZIP3_CENSUS_2000, "627"),
        ("Hanover, NH 03603-1234", ZIP3_CENSUS_2000, "000"),  # 036: 20,000 people or fewer
        ("no postal code here", ZIP3_CENSUS_2000, "000"),
    ],
)
def test_zip3_table(address, table, expected) -> None:
    assert zip3(address, table=table) == expected


def test_ages_over_89_are_one_group_without_a_birth_year() -> None:
    assert age_fields(date(1935, 6, 1), date(2025, 6, 1), 30).age == "90+"
    assert age_fields(date(1935, 6, 2), date(2025, 6, 1), 30).age == "89"
    young = age_fields(date(1990, 12, 20), date(2025, 6, 1), 30)
    assert (young.age, young.birth_year) == ("34", "1991")


def test_cli_runs_the_export_with_a_progress_bar_and_logs_it(members, identified_cohort) -> None:
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    username = members["researcher"].user.username
    call_command("export", "research", "--username", username, "--instrument", "madrs",
                 stdout=out, stderr=err)  # fmt: skip
    assert "10 patients" in out.getvalue()
    assert "measures.parquet" in out.getvalue()
    assert "100%" in err.getvalue()
    with scopes_disabled():
        export = DataExport.objects.get()
    assert export.channel == "cli"
    assert "instrument MADRS" in export.cohort_described


def test_cli_refuses_a_role_without_the_capability(members) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="research.export"):
        call_command("export", "research", "--username", members["nurse"].user.username)
