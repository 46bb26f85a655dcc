"""No silent loss: every accepted type is created, read and searched, and what comes back is what
was sent, element by element. Allowed differences: `id`, `meta` (the server's versionId and
lastUpdated; the sent profile stays) and keys the server adds that were not sent. Never a changed
code, status, category or date (dates byte-identical, with their precision and offset)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import api_client
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.helpers import DATA, load, post, put, valid

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT_TYPES = {"Patient"}


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


@pytest.fixture
def patient_id(client: Any) -> str:
    response = post(client, BASE + "Patient", rich.patient())
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def assert_same(sent: dict[str, Any], got: dict[str, Any]) -> None:
    """Every sent element back unchanged; only id, meta's server fields and new keys added."""
    assert got["resourceType"] == sent["resourceType"]
    assert got.get("id")
    assert got["meta"]["versionId"]
    for key, value in sent.items():
        if key in ("id",):
            continue
        if key == "meta":
            for meta_key, meta_value in value.items():
                assert got["meta"].get(meta_key) == meta_value, f"meta.{meta_key}"
            continue
        assert key in got, f"{sent['resourceType']}.{key} was dropped"
        assert json.dumps(got[key], sort_keys=True) == json.dumps(value, sort_keys=True), (
            f"{sent['resourceType']}.{key} changed: sent {value!r}, got {got[key]!r}"
        )


def _search(client: Any, resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    kind, rid = resource["resourceType"], resource["id"]
    query = f"{kind}?_id={rid}"
    for name in ("subject", "patient"):
        if name in resource and kind != "Patient":
            query = f"{kind}?patient={patient_id}&_count=200"
    response = client.get(BASE + query)
    assert response.status_code == 200, response.content
    bundle = response.json()
    found = [e["resource"] for e in bundle.get("entry", []) if e["resource"].get("id") == rid]
    assert len(found) == 1, f"{query} did not find {kind}/{rid}"
    return dict(found[0])


def _round_trip(client: Any, sent: dict[str, Any], patient_id: str) -> dict[str, Any]:
    response = post(client, BASE + sent["resourceType"], sent)
    assert response.status_code == 201, response.content
    created = valid(response.json())
    assert_same(sent, created)
    read = client.get(BASE + f"{sent['resourceType']}/{created['id']}")
    assert read.status_code == 200, read.content
    assert_same(sent, valid(read.json()))
    assert_same(sent, _search(client, created, patient_id))
    return created


BUILDERS = {
    "Condition": rich.condition,
    "AllergyIntolerance": rich.allergy,
    "Observation-blood-pressure": rich.blood_pressure,
    "Observation-laboratory": rich.lab,
    "Observation-systolic-alone": rich.systolic_alone,
    "MedicationStatement": rich.medication_statement,
    "MedicationRequest": rich.medication_request,
    "Encounter-historical": rich.encounter,
    "DocumentReference-letter": rich.letter,
}
NO_PATIENT = {
    "Practitioner": rich.practitioner,
    "PractitionerRole": rich.practitioner_role,
    "Organization": rich.organization,
    "Location": rich.location,
    "Medication": rich.medication,
}


def test_patient_round_trips_with_race_ethnicity_telecom_rank_and_address(client: Any) -> None:
    sent = rich.patient()
    _round_trip(client, sent, "")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_patient_record_types_round_trip(client: Any, patient_id: str, name: str) -> None:
    _round_trip(client, BUILDERS[name](patient_id), patient_id)


@pytest.mark.parametrize("name", sorted(NO_PATIENT))
def test_directory_types_round_trip(client: Any, name: str) -> None:
    _round_trip(client, NO_PATIENT[name](), "")


def test_provenance_round_trips(client: Any, patient_id: str) -> None:
    _round_trip(client, rich.provenance(f"Patient/{patient_id}"), patient_id)


def _synthea_samples() -> dict[str, dict[str, Any]]:
    """One resource of each type a Synthea export holds (the first file that has it)."""
    samples: dict[str, dict[str, Any]] = {}
    folder = DATA / "synthea-r4" / "smart-generated-sample-data-R4"
    for path in sorted(folder.glob("*.json")):
        for entry in json.loads(path.read_text())["entry"]:
            resource = entry["resource"]
            samples.setdefault(resource["resourceType"], resource)
    return samples


SYNTHEA_TYPES = [
    "Claim",
    "ExplanationOfBenefit",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "CarePlan",
    "Goal",
    "ImagingStudy",
]


@pytest.mark.parametrize("resource_type", SYNTHEA_TYPES)
def test_synthea_types_round_trip(client: Any, patient_id: str, resource_type: str) -> None:
    sent = dict(_synthea_samples()[resource_type])
    sent.pop("id", None)
    for name in ("subject", "patient"):
        if name in sent:
            sent[name] = {"reference": f"Patient/{patient_id}"}
    _round_trip(client, sent, patient_id)


def test_chart_change_after_the_write_is_what_a_read_returns(
    client: Any, patient_id: str, prescriber: Any
) -> None:
    """The clinical row stays the truth: once the chart marks it entered-in-error, a read says so
    (not the stale received copy). (A FHIR DELETE answers 410 afterwards: test_history.py.)"""
    from django_scopes import scope

    from ketaclinic.patients import services
    from ketaclinic.patients.models import Condition

    created = post(client, BASE + "Condition", rich.condition(patient_id)).json()
    with scope(organization=prescriber.organization):
        entry = Condition.objects.get(public_id=created["id"])
        services.entry_mark_entered_in_error(actor=prescriber, entry=entry, reason="chart")
    after = client.get(BASE + f"Condition/{created['id']}").json()
    codes = [c["code"] for c in after["verificationStatus"]["coding"]]
    assert codes == ["entered-in-error"]


def test_update_keeps_the_new_received_resource(client: Any, patient_id: str) -> None:
    created = post(client, BASE + "MedicationRequest", rich.medication_request(patient_id)).json()
    changed = {**rich.medication_request(patient_id), "id": created["id"], "status": "stopped"}
    response = put(client, BASE + f"MedicationRequest/{created['id']}", changed)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "stopped"
    assert response.json()["meta"]["versionId"] != created["meta"]["versionId"]
    read = client.get(BASE + f"MedicationRequest/{created['id']}").json()
    assert_same({k: v for k, v in changed.items() if k != "id"}, read)


def test_deleted_generic_resource_is_gone_and_leaves_search(client: Any) -> None:
    created = post(client, BASE + "Practitioner", rich.practitioner()).json()
    assert client.delete(BASE + f"Practitioner/{created['id']}").status_code == 204
    assert client.get(BASE + f"Practitioner/{created['id']}").status_code == 410
    bundle = client.get(BASE + f"Practitioner?_id={created['id']}").json()
    assert bundle["total"] == 0


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        ({"gender": "woman"}, "Patient.gender"),
        ({"telecom": [{"system": "cell", "value": "1"}]}, "Patient.telecom[0].system"),
        ({"address": [{"use": "residence", "city": "X"}]}, "Patient.address[0].use"),
    ],
)
def test_codes_outside_a_required_binding_are_refused_not_coerced(
    client: Any, resource: dict[str, Any], element: str
) -> None:
    response = post(client, BASE + "Patient", {**rich.patient(), **resource})
    assert response.status_code == 422, response.content
    expressions = [e for i in response.json()["issue"] for e in i.get("expression", [])]
    assert element in expressions
    with scopes_disabled():
        from ketaclinic.patients.models import Patient

        assert not Patient.objects.filter(family_name="Lovelace").exists()


def test_condition_verification_status_outside_its_value_set_is_refused(
    client: Any, patient_id: str
) -> None:
    sent = rich.condition(patient_id)
    sent["verificationStatus"]["coding"][0]["code"] = "probable"
    response = post(client, BASE + "Condition", sent)
    assert response.status_code == 422
    assert "Condition.verificationStatus.coding[0].code" in response.content.decode()


def _gad7_items() -> list[str]:
    from ketaclinic.measures.definitions import current_instruments

    gad7 = next(i for i in current_instruments() if i.loinc.panel == "69737-5")
    return [str(item.loinc_code()) for item in gad7.items]


@pytest.mark.parametrize("style", ["{}", "/{}"])
def test_gad7_by_its_loinc_canonical_with_loinc_link_ids_is_scored(
    client: Any, patient_id: str, style: str
) -> None:
    codes = _gad7_items()
    assert "69725-0" in codes
    response = post(
        client,
        BASE + "QuestionnaireResponse",
        {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "http://loinc.org/q/69737-5",
            "status": "completed",
            "subject": {"reference": f"Patient/{patient_id}"},
            "authored": "2024-05-02T10:00:00-05:00",
            "item": [
                {"linkId": style.format(code), "answer": [{"valueInteger": 2}]} for code in codes
            ],
        },
    )
    assert response.status_code == 201, response.content
    observations = client.get(BASE + f"Observation?patient={patient_id}&code=70274-6").json()
    assert observations["total"] == 1
    assert observations["entry"][0]["resource"]["valueQuantity"]["value"] == 2 * len(codes)


def test_us_core_phq9_questionnaire_response_round_trips(client: Any, patient_id: str) -> None:
    sent = load("fhir-r4-examples", "us-core", "QuestionnaireResponse-phq-9-example.json")
    sent["subject"] = {"reference": f"Patient/{patient_id}"}
    sent.pop("author", None)
    sent.pop("id", None)
    response = post(client, BASE + "QuestionnaireResponse", sent)
    assert response.status_code == 201, response.content
    read = client.get(BASE + f"QuestionnaireResponse/{response.json()['id']}").json()
    assert_same(sent, read)


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def spravato_transaction() -> dict[str, Any]:
    """What an EHR sends for a patient starting SPRAVATO: the patient, the prescriber and the
    practice, the diagnosis (SNOMED and ICD-10-CM), the prescription and the medication history,
    two PHQ-9s, a blood pressure with components and two past visits (fullUrl references)."""
    from ketaclinic.fhir.tests.test_questionnaires import lforms_phq9

    pat = "urn:uuid:9d6f8b5e-0000-4000-8000-000000000001"
    doc = "urn:uuid:9d6f8b5e-0000-4000-8000-000000000002"
    org = "urn:uuid:9d6f8b5e-0000-4000-8000-000000000003"
    patient_resource = rich.patient()
    patient_resource["generalPractitioner"] = [{"reference": doc}]
    patient_resource["managingOrganization"] = {"reference": org}
    entries = [
        _entry(pat, patient_resource),
        _entry(doc, rich.practitioner()),
        _entry(org, rich.organization()),
    ]
    placeholder = "PATIENT"
    condition = rich.condition(placeholder)
    condition["identifier"][0]["value"] = "cond-ehr"
    request = rich.medication_request(placeholder)
    request["requester"] = {"reference": doc}
    history = rich.medication_statement(placeholder)
    older = rich.medication_statement(placeholder)
    older["identifier"][0]["value"] = "ms-older"
    older["effectivePeriod"] = {"start": "2021-02-01", "end": "2021-05"}
    visits = []
    for index, day in enumerate(("2023-11-02", "2023-12-07")):
        visit = rich.encounter(placeholder)
        visit["identifier"][0]["value"] = f"enc-ehr-{index}"
        visit["period"] = {"start": f"{day}T10:00:00-06:00", "end": f"{day}T10:50:00-06:00"}
        visit["participant"][0]["individual"] = {"reference": doc}
        visit["serviceProvider"] = {"reference": org}
        visits.append(visit)
    phq9s = [
        lforms_phq9(placeholder, [2, 2, 2, 2, 1, 1, 1, 1, 0]),
        lforms_phq9(placeholder, [1] * 9),
    ]
    phq9s[1]["authored"] = "2024-05-16T10:00:00-05:00"
    clinical = [
        condition,
        request,
        history,
        older,
        rich.blood_pressure(placeholder),
        *visits,
        *phq9s,
    ]
    for resource in clinical:
        text = json.dumps(resource).replace("Patient/PATIENT", pat)
        entries.append(
            {
                "resource": json.loads(text),
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_ehr_transaction_of_a_spravato_patient_imports_whole(client: Any) -> None:
    bundle = spravato_transaction()
    response = post(client, BASE, bundle)
    assert response.status_code == 200, response.content
    result = response.json()
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created"] * len(bundle["entry"])
    # Each location names the version created (Type/id/_history/vid); references use Type/id.
    locations = [e["response"]["location"].split("/_history/")[0] for e in result["entry"]]
    patient_id = locations[0].split("/")[1]
    practitioner = locations[1]
    # Every resource reads back as sent, with the fullUrl references now pointing at this server.
    for sent, location in zip(bundle["entry"], locations, strict=True):
        text = json.dumps(sent["resource"])
        for entry, ours in zip(bundle["entry"][:3], locations[:3], strict=True):
            text = text.replace(entry["fullUrl"], ours)
        read = client.get(BASE + location)
        assert read.status_code == 200, (location, read.content)
        assert_same(json.loads(text), read.json())
    visits = client.get(BASE + f"Encounter?patient={patient_id}").json()
    assert visits["total"] == 2
    assert {
        e["resource"]["participant"][0]["individual"]["reference"] for e in visits["entry"]
    } == {practitioner}
    scores = client.get(BASE + f"Observation?patient={patient_id}&code=44261-6").json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in scores["entry"]) == [9, 12]


def test_kept_resources_are_found_by_each_declared_parameter(client: Any, patient_id: str) -> None:
    """Every search parameter a kept-as-received type declares filters (MedicationRequest)."""
    from ketaclinic.fhir.registry import HANDLERS

    mine = post(client, BASE + "MedicationRequest", rich.medication_request(patient_id)).json()
    other = rich.medication_request(patient_id)
    other.update(
        identifier=[{"system": "urn:oid:1.2.3.4.9", "value": "rx-2"}],
        status="stopped",
        authoredOn="2020-05-01",
        category=[{"coding": [{"system": "urn:example", "code": "community"}]}],
        medicationCodeableConcept={"coding": [{"system": RXNORM_SYSTEM, "code": "6130"}]},
    )
    assert post(client, BASE + "MedicationRequest", other).status_code == 201
    queries = {
        "_id": mine["id"],
        "identifier": "urn:oid:1.2.3.4.9|rx-1",
        "patient": patient_id,
        "subject": f"Patient/{patient_id}",
        "code": "http://hl7.org/fhir/sid/ndc|50458-028",
        "category": "outpatient",
        "date": "ge2024-01-01",
        "status": "active",
        "_lastUpdated": "ge2000-01-01",  # both were written now
    }
    assert set(HANDLERS["MedicationRequest"].search_params) == set(queries)
    for name, value in queries.items():
        bundle = client.get(BASE + f"MedicationRequest?{name}={value}").json()
        ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
        if name in ("patient", "subject", "_lastUpdated"):
            assert len(ids) == 2, name
        else:
            assert ids == [mine["id"]], name


def _conditional(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same transaction with every create conditional (If-None-Exist) on its identifier, and
    for the PHQ-9s (no identifier search) on the patient and the time."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        identifier = resource.get("identifier")
        if isinstance(identifier, list) and identifier:
            criteria = f"identifier={identifier[0]['system']}|{identifier[0]['value']}"
        else:
            patient = resource["subject"]["reference"]
            criteria = f"patient={patient}&authored={resource['authored']}"
        entry["request"]["ifNoneExist"] = criteria
    return bundle


def _row_counts() -> dict[str, int]:
    from django.apps import apps

    with scopes_disabled():
        return {
            model._meta.label: model._base_manager.count()
            for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy
        }


def test_repeated_ehr_transaction_with_conditional_creates_changes_nothing(client: Any) -> None:
    """Sent twice with If-None-Exist, the second Spravato transaction matches every resource the
    first created (200, the same ids) and writes no row in any table but the audit trail."""
    first = post(client, BASE, _conditional(spravato_transaction()))
    assert first.status_code == 200, first.content
    created = [e["response"]["location"].split("/_history/")[0] for e in first.json()["entry"]]
    assert {e["response"]["status"] for e in first.json()["entry"]} == {"201 Created"}
    before = _row_counts()
    second = post(client, BASE, _conditional(spravato_transaction()))
    assert second.status_code == 200, second.content
    assert [e["response"]["status"] for e in second.json()["entry"]] == ["200 OK"] * len(created)
    assert [e["response"]["location"].split("/_history/")[0] for e in second.json()["entry"]] == (
        created
    )
    after = _row_counts()
    audit = {"accounts.AuditEvent"}
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k] and k not in audit}
    assert changed == {}


# --- workflow resources the clinic drives: kept beside their rows --------------------------------


def assert_kept(sent: Any, got: Any, path: str = "") -> None:
    """Every sent element back unchanged, at every depth; the clinic may add keys (and codings
    in other systems) inside what was sent, never change a value. id and meta's server fields
    aside."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path} changed shape"
        for key, value in sent.items():
            if path == "" and key == "id":
                continue
            if path == "" and key == "meta":
                for meta_key, meta_value in value.items():
                    assert got["meta"].get(meta_key) == meta_value, f"meta.{meta_key}"
                continue
            assert key in got, f"{path}.{key} was dropped"
            if key in ("coding", "extension"):  # the clinic's own may follow the sent ones
                assert got[key][: len(value)] == value, f"{path}.{key} changed"
                continue
            assert_kept(value, got[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(got, list), f"{path} changed shape"
        assert len(got) == len(sent), f"{path}: sent {len(sent)}, got {len(got)}"
        for index, (a, b) in enumerate(zip(sent, got, strict=True)):
            assert_kept(a, b, f"{path}[{index}]")
    else:
        assert json.dumps(got) == json.dumps(sent), f"{path} changed: sent {sent!r}, got {got!r}"


def _workflow_round_trip(client: Any, sent: dict[str, Any], patient_id: str) -> dict[str, Any]:
    kind = sent["resourceType"]
    response = post(client, BASE + kind, sent)
    assert response.status_code == 201, response.content
    created = valid(response.json())
    assert_kept(sent, created)
    read = client.get(BASE + f"{kind}/{created['id']}")
    assert read.status_code == 200, read.content
    assert valid(read.json()) == created
    bundle = valid(client.get(BASE + f"{kind}?patient={patient_id}").json())
    assert [e["resource"] for e in bundle["entry"]] == [created]
    return created


def test_a_session_its_dose_and_its_adverse_event_round_trip(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """Encounter, MedicationAdministration and AdverseEvent sent as an EHR would, with elements
    the session's rows do not hold: all come back as sent, beside what the clinic adds."""
    from django_scopes import scope

    from ketaclinic.fhir.tests.test_sessions_fhir import NORMAL, checklist_of, treatable_with_plan

    plan, _ = treatable_with_plan(prescriber, patient_a, "iv-ketamine-induction")
    nurse, doctor = api_client(members["nurse"]), api_client(members["prescriber"])
    pid = str(patient_a.public_id)
    start = "2026-03-02T09:00:00-06:00"  # the session day's 15:00 UTC, in Chicago
    encounter = _workflow_round_trip(
        nurse, rich.session_encounter(pid, str(plan.public_id), start), pid
    )
    sid = encounter["id"]
    assert encounter["serviceType"]["coding"][0]["code"].startswith("iv-ketamine-induction")
    assert nurse.post(f"/api/v1/sessions/{sid}/check-in").status_code == 200
    pre = nurse.post(
        f"/api/v1/sessions/{sid}/prechecks",
        {"checklist": checklist_of(sid, prescriber), "vitals": NORMAL},
        content_type="application/json",
    )
    assert pre.status_code == 201, pre.content
    order = doctor.post(f"/api/v1/sessions/{sid}/dose-orders", {}, content_type="application/json")
    assert order.json()["dose_mg"] == "40.0"
    dose = _workflow_round_trip(nurse, rich.administration(pid, sid, start, start), pid)
    assert "medicationCodeableConcept" not in dose  # one medication[x]: the one sent
    assert dose["dosage"]["route"]["coding"][0]["code"] == "47625008"
    event = _workflow_round_trip(nurse, rich.adverse_event(pid, sid, start), pid)
    assert [c["code"] for c in event["severity"]["coding"]] == ["1", "mild"]  # the clinic adds
    with scope(organization=prescriber.organization):
        from ketaclinic.sessions.models import DoseAdministration

        given = DoseAdministration.objects.get(public_id=dose["id"])
        assert (given.dose_mg, given.route) == (40, "intravenous")


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("status", "in-progress"),  # it ended: the clinic records it completed
        ("medication[x]", {"coding": [{"system": RXNORM_SYSTEM, "code": "2057856"}]}),
        ("dosage", {"dose": {"value": 40, "unit": "mg", "system": "http://unitsofmeasure.org",
                             "code": "mg"},
                    "route": {"coding": [{"system": "http://snomed.info/sct",
                                          "code": "26643006"}]}}),
    ],
)  # fmt: skip
def test_a_dose_saying_otherwise_than_what_is_recorded_is_refused_naming_the_element(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any, element: str, value: Any
) -> None:
    from django_scopes import scope

    from ketaclinic.sessions import services as sessions
    from ketaclinic.sessions.models import DoseAdministration
    from ketaclinic.sessions.tests.builders import session_prechecked

    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        sessions.dose_order_sign(actor=prescriber, session=session)
    start = "2026-03-02T09:00:00-06:00"
    sent = rich.administration(str(patient_a.public_id), str(session.public_id), start, start)
    if element == "medication[x]":
        sent["contained"][0]["code"] = value  # esketamine, in a ketamine session
    else:
        sent[element] = value
    response = post(api_client(members["nurse"]), BASE + "MedicationAdministration", sent)
    assert response.status_code == 422, response.content
    where = response.json()["issue"][0]["expression"][0]
    assert where.startswith(f"MedicationAdministration.{element}")
    with scope(organization=prescriber.organization):
        assert not DoseAdministration.objects.filter(session=session).exists()


def test_an_appointment_round_trips(members: Any, org_a: Any, prescriber: Any) -> None:
    import time_machine
    from django_scopes import scope

    from conftest import actor_for, make_patient
    from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

    with time_machine.travel(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), tick=False):
        with scope(organization=org_a):
            open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
            types(org_a)
        seat = chair(org_a, 1)
        client = api_client(members["front_desk"])
        slots = client.get(BASE + f"Slot?schedule=Schedule/{seat.public_id}&start=2026-03-03")
        slot = slots.json()["entry"][0]["resource"]
        chicago = timezone(timedelta(hours=-6))
        start = datetime.fromisoformat(slot["start"]).astimezone(chicago)
        end = datetime.fromisoformat(slot["end"]).astimezone(chicago)
        minutes = int((end - start).total_seconds() // 60)
        patient = make_patient(prescriber)
        pid = str(patient.public_id)
        sent = rich.appointment(
            pid, str(seat.public_id), start.isoformat(), end.isoformat(), minutes
        )
        sent["serviceType"] = slot["serviceType"]
        created = _workflow_round_trip(client, sent, pid)
        cancelled = {**created, "status": "cancelled", "cancelationReason": {"text": "ill"}}
        response = put(client, BASE + f"Appointment/{created['id']}", cancelled)
        assert response.status_code == 200, response.content
        assert_kept({k: v for k, v in cancelled.items() if k != "meta"}, response.json())


def test_a_consent_round_trips(members: Any, org_a: Any, prescriber: Any) -> None:
    from django_scopes import scope

    from conftest import make_patient
    from ketaclinic.consent import services as consent
    from ketaclinic.fhir.tests.test_consent_fhir import consent_json

    with scope(organization=org_a):
        published = consent.consent_templates_seed_defaults(organization=org_a)
    version = next(v for v in published if v.template.route == "intravenous")
    patient = make_patient(prescriber)
    sent = consent_json(patient, version)
    sent.update(
        identifier=[{"system": "urn:oid:1.2.3.4.11", "value": "consent-4"}],
        dateTime="2026-03-01T10:00:00-06:00",
        extension=[{"url": rich.EXT + "signed-on", "valueString": "tablet 3"}],
        organization=[{"display": "A Main"}],
    )
    created = _workflow_round_trip(api_client(members["nurse"]), sent, str(patient.public_id))
    assert created["provision"]["code"]  # the route and setting the clinic records, added
