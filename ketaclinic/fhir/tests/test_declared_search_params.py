"""Every search parameter, _include and _revinclude the CapabilityStatement declares filters (issue
14): for each resource type and each declared name, a search that must find a known resource of
one small shared clinic and one that must not. The cases are a table keyed by (type, parameter);
a declared parameter without a case fails, so the statement can never claim what is not tested.

The clinic: two patients; the first with a chart (weight, condition, allergy, medication), one
dosed treatment session (flowsheet vitals, dose, adverse event, its therapy visit and note), a
PHQ-9, consents, an appointment, a saved cohort, and one resource of every type kept as received
(a lab Observation, a historical Encounter, a letter, a site Location, ...), and a Provenance
whose targets are all of these. It is built once, through the services and the FHIR API, and
every case runs against it in one test (one build instead of one per parameter).

Where the CapabilityStatement merges the clinic's own rows of a type with resources received from
other systems (Observation, Encounter, DocumentReference, Location, MedicationAdministration), a
parameter only received ones carry is documented as such, and its cases find a received one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django_scopes import scope

from conftest import SESSION_DAY, actor_for, api_client, make_patient
from ketaclinic.fhir.capability import capability_statement
from ketaclinic.fhir.received import GENERIC
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.helpers import post, weight_json
from ketaclinic.fhir.tests.test_everything import history
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

BASE = "/fhir/r4/"
STRICT = {"Prefer": "handling=strict"}
NOBODY = "00000000-0000-4000-8000-000000000000"
CODE = "urn:test:code"
CAT = "urn:test:category"
ID = "urn:test:id"


# What every generic resource below carries, so each generic parameter has a value to find it by.
WHEN = "2024-05-06"
# A valid status of each generic type (and another valid one that is not it).
STATUS = {
    "Practitioner": None,
    "PractitionerRole": None,
    "Organization": None,
    "Provenance": None,
    "Location": ("active", "inactive"),
    "Medication": ("active", "inactive"),
    "MedicationRequest": ("active", "stopped"),
    "Encounter": ("finished", "cancelled"),
    "Observation": ("final", "preliminary"),
    "DocumentReference": ("current", "superseded"),
    "Procedure": ("completed", "stopped"),
    "Immunization": ("completed", "not-done"),
    "DiagnosticReport": ("final", "preliminary"),
    "CarePlan": ("active", "completed"),
    "CareTeam": ("active", "inactive"),
    "Goal": ("active", "completed"),
    "Claim": ("active", "cancelled"),
    "ExplanationOfBenefit": ("active", "cancelled"),
    "ImagingStudy": ("available", "registered"),
    "Device": ("active", "inactive"),
    "SupplyDelivery": ("completed", "abandoned"),
    "MedicationAdministration": ("completed", "stopped"),
}
# Elements R4 requires of some generic types, beside those set from their Spec.
REQUIRED: dict[str, dict[str, Any]] = {
    "MedicationRequest": {"intent": "order"},
    "CarePlan": {"intent": "plan"},
    "DocumentReference": {
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]
    },
    "Provenance": {"agent": [{"who": {"display": "Outside EHR"}}]},
    "Claim": {
        "use": "claim",
        "provider": {"display": "Springfield Behavioral Health"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Plan A"}}],
    },
    "ExplanationOfBenefit": {
        "use": "claim",
        "insurer": {"display": "Insurer"},
        "provider": {"display": "Springfield Behavioral Health"},
        "outcome": "complete",
        "insurance": [{"focal": True, "coverage": {"display": "Plan A"}}],
    },
}
# Elements that hold one CodeableConcept (the others a list of them; Encounter.class a Coding).
SINGLE = {
    "MedicationRequest.medicationCodeableConcept",
    "Medication.code",
    "Observation.code",
    "DocumentReference.type",
    "Provenance.activity",
    "Procedure.code",
    "Procedure.category",
    "Immunization.vaccineCode",
    "DiagnosticReport.code",
    "Goal.description",
    "Claim.type",
    "ExplanationOfBenefit.type",
    "Device.type",
    "SupplyDelivery.type",
    "MedicationAdministration.medicationCodeableConcept",
}


def _coded(resource_type: str, element: str, system: str, code: str) -> Any:
    if f"{resource_type}.{element}" == "Encounter.class":
        return {"system": system, "code": code}
    concept = {"coding": [{"system": system, "code": code}]}
    return concept if f"{resource_type}.{element}" in SINGLE else [concept]


def _set(resource: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _set(resource.setdefault(head, {}), rest, value)
    else:
        resource[head] = value


def generic_resource(resource_type: str, patient_id: str, target: str = "") -> dict[str, Any]:
    """One resource of a type kept as received, with an identifier, a code, a category, a date,
    a status and a patient wherever its Spec searches them."""
    spec = GENERIC[resource_type]
    resource: dict[str, Any] = {"resourceType": resource_type, **REQUIRED.get(resource_type, {})}
    if spec.identifier:
        resource["identifier"] = [{"system": ID, "value": resource_type}]
    status = STATUS[resource_type]
    if status:
        key = "lifecycleStatus" if resource_type == "Goal" else "status"
        resource[key] = status[0]
    if spec.patient:
        resource[spec.patient] = {"reference": f"Patient/{patient_id}"}
    if spec.code:
        resource[spec.code] = _coded(resource_type, spec.code, CODE, resource_type)
    if spec.category:
        resource[spec.category] = _coded(resource_type, spec.category, CAT, resource_type)
    if spec.dates:
        _set(
            resource,
            spec.dates[0],
            WHEN if spec.dates[0] == "startDate" else WHEN + "T10:00:00Z",
        )
    if spec.targets:
        resource[spec.targets] = [{"reference": target or f"Patient/{patient_id}"}]
    if resource_type == "Provenance":
        resource["recorded"] = WHEN + "T10:00:00Z"
    return resource


@dataclass
class Clinic:
    """The shared clinic: "Type/id" of each known resource by name, and the resources as read."""

    ref: dict[str, str]
    read: dict[str, dict[str, Any]]
    values: dict[str, str]

    def id(self, name: str) -> str:
        return self.ref[name].split("/", 1)[1]


@pytest.fixture
def clinic(traveller: Any, members: dict[str, Any], org_a: Any) -> Clinic:
    prescriber = actor_for(members["prescriber"])
    nurse = actor_for(members["nurse"])
    ref: dict[str, str] = {}
    p = make_patient(
        prescriber, given_name="José", family_name="Núñez", mrn="P-1", sex_at_birth="male"
    )
    q = make_patient(
        prescriber, given_name="Marie", family_name="Curie", mrn="Q-2",
        birth_date=SESSION_DAY.date().replace(year=1990),
    )  # fmt: skip
    ref["Patient"], ref["Patient/q"] = f"Patient/{p.public_id}", f"Patient/{q.public_id}"
    history(prescriber, nurse, p, sessions_=1, responses=1)
    with scope(organization=org_a):
        open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
        types(org_a)
        seat = chair(org_a, 1)
        from ketaclinic.outcomes.filters import CohortFilters
        from ketaclinic.outcomes.groups import patient_group_create

        admin = actor_for(members["clinic_admin"])
        group = patient_group_create(actor=admin, name="Spring cohort", filters=CohortFilters())
    ref["Group"] = f"Group/{group.public_id}"
    ref["Questionnaire"] = "Questionnaire/phq9"
    ref["Location"] = f"Location/{seat.public_id}"
    client = api_client(members["prescriber"])
    read: dict[str, dict[str, Any]] = {}

    def first(name: str, resource_type: str, **params: Any) -> None:
        bundle = client.get(BASE + resource_type, {"_count": 200, **params}).json()
        [resource] = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"][:1]
        ref[name], read[name] = f"{resource_type}/{resource['id']}", resource

    pid = p.public_id
    for resource_type in ("Condition", "AllergyIntolerance", "MedicationStatement",
                          "QuestionnaireResponse", "Consent", "AdverseEvent",
                          "MedicationAdministration"):  # fmt: skip
        first(resource_type, resource_type, patient=pid)
    session = read["MedicationAdministration"]["context"]["reference"]  # the dose's session
    first("Encounter", "Encounter", _id=session.split("/")[1])
    first("DocumentReference", "DocumentReference", patient=pid)  # the therapy visit's note
    first(
        "Observation/bp", "Observation", encounter=ref["Encounter"], code="85354-9"
    )  # the flowsheet's
    first("Observation/survey", "Observation", patient=pid, category="survey")

    def create(name: str, resource: dict[str, Any]) -> None:
        response = post(client, BASE + resource["resourceType"], resource)
        assert response.status_code == 201, (name, response.content)
        ref[name] = f"{resource['resourceType']}/{response.json()['id']}"
        read[name] = response.json()

    create("Observation/weight", {
        **weight_json(str(pid), 70, "kg"),
        "identifier": [{"system": ID, "value": "weight-1"}],
    })  # fmt: skip
    create("Condition/rich", rich.condition(str(pid)))
    create("AllergyIntolerance/rich", rich.allergy(str(pid)))
    create("MedicationStatement/rich", rich.medication_statement(str(pid)))
    for resource_type in GENERIC:
        resource = generic_resource(resource_type, str(pid), target=ref["Patient/q"])
        create(f"{resource_type}/received", resource)
    with scope(organization=org_a):
        ref["Schedule/2"] = f"Schedule/{chair(org_a, 2).public_id}"
    return Clinic(ref, read, {})


def _finish(clinic: Clinic, members: dict[str, Any], org_a: Any) -> None:
    """The appointment, an audit event about the first patient, and the Provenance about every
    known resource (made last, so it can name them all)."""
    client = api_client(members["front_desk"])
    seat = clinic.id("Location")
    slots = client.get(
        BASE + "Slot", {"schedule": f"Schedule/{seat}", "start": "2026-03-03", "status": "free"}
    ).json()
    slot, free = slots["entry"][0]["resource"], slots["entry"][-1]["resource"]
    with scope(organization=org_a):  # a visit type the chair does not offer that day
        from ketaclinic.scheduling.models import AppointmentType

        kind = free["serviceType"][0]["coding"][0]["code"]
        other_type = AppointmentType.objects.exclude(kind=kind).values_list("kind", flat=True)[0]
    clinic.ref["Slot"], clinic.read["Slot"] = f"Slot/{free['id']}", free
    clinic.ref["Schedule"] = f"Schedule/{seat}"
    booked = post(client, BASE + "Appointment", {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "participant": [
            {"actor": {"reference": clinic.ref["Patient"]}, "status": "accepted"},
            {"actor": {"reference": f"Location/{seat}"}, "status": "accepted"},
        ],
    })  # fmt: skip
    assert booked.status_code == 201, booked.content
    clinic.ref["Appointment"] = f"Appointment/{booked.json()['id']}"
    clinic.read["Appointment"] = booked.json()
    auditor = api_client(members["compliance"])
    events = auditor.get(
        BASE + "AuditEvent", {"patient": clinic.id("Patient"), "_count": "1", "_sort": "date"}
    )
    event = events.json()["entry"][0]["resource"]
    clinic.ref["AuditEvent"], clinic.read["AuditEvent"] = f"AuditEvent/{event['id']}", event
    clinic.values.update(
        {
            "agent": event["agent"][0]["who"]["identifier"]["value"],
            "type": f"{event['type']['system']}|{event['type']['code']}",
            "outcome": event["outcome"],
            "no-outcome": "4" if event["outcome"] == "0" else "0",
            "service-type": "{system}|{code}".format(**slot["serviceType"][0]["coding"][0]),
            "other-service-type": "{system}|%s".format(**slot["serviceType"][0]["coding"][0])
            % other_type,
        }
    )
    about = sorted({ref for name, ref in clinic.ref.items() if name != "Patient/q"})
    response = post(api_client(members["prescriber"]), BASE + "Provenance", {
        **generic_resource("Provenance", clinic.id("Patient")),
        "target": [{"reference": ref} for ref in about],
    })  # fmt: skip
    assert response.status_code == 201, response.content
    clinic.ref["Provenance/all"] = f"Provenance/{response.json()['id']}"


# --- the cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    """`find` must return the resource named `target` (as a match, or as an _include/_revinclude
    when `mode` is include); `miss` must not."""

    target: str
    find: dict[str, str]
    miss: dict[str, str]
    mode: str = "match"


Cases = Callable[[Clinic], list[Case]]


def _fill(c: Clinic, value: str) -> str:
    for name, text in c.values.items():
        value = value.replace("{" + name + "}", text)
    for name, ref in c.ref.items():
        value = value.replace("{" + name + ":ref}", ref).replace(
            "{" + name + "}", ref.split("/", 1)[1]
        )
    return value


def p(target: str, hit: str, miss: str, **also: str) -> Cases:
    """Search `param=hit` finds `target`, `param=miss` does not (the parameter is the key)."""
    return lambda c: [
        Case(
            target,
            {"?": _fill(c, hit), **{k: _fill(c, v) for k, v in also.items()}},
            {"?": _fill(c, miss), **{k: _fill(c, v) for k, v in also.items()}},
        )
    ]


def both(*makers: Cases) -> Cases:
    return lambda c: [case for make in makers for case in make(c)]


ON_P = "{Patient}"
ON_Q = "{Patient/q}"
SPECIFIC: dict[tuple[str, str], Cases] = {
    # Patient
    ("Patient", "_id"): p("Patient", ON_P, ON_Q),
    ("Patient", "_lastUpdated"): p("Patient", "ge2026-03-01", "lt2026-03-01"),
    ("Patient", "identifier"): p("Patient", "P-1", "Q-2"),
    ("Patient", "name"): p("Patient", "nunez", "curie"),
    ("Patient", "family"): p("Patient", "NÚÑ", "Cur"),
    ("Patient", "given"): p("Patient", "jose", "marie"),
    ("Patient", "birthdate"): p("Patient", "1985-12-10", "1990"),
    ("Patient", "gender"): p("Patient", "male", "female"),
    # Observation: the chart's weight, the flowsheet's BP, the PHQ-9 score, a received lab
    ("Observation", "_id"): both(
        p("Observation/weight", "{Observation/weight}", "{Observation/bp}"),
        p("Observation/bp", "{Observation/bp}", "{Observation/weight}"),
        p("Observation/survey", "{Observation/survey}", "{Observation/weight}"),
    ),
    ("Observation", "_lastUpdated"): both(
        p("Observation/weight", "ge2026-03-01", "lt2026-03-01"),
    ),
    ("Observation", "identifier"): both(
        p("Observation/weight", f"{ID}|weight-1", f"{ID}|Observation"),
    ),
    ("Observation", "patient"): both(
        p("Observation/weight", ON_P, ON_Q),
        p("Observation/bp", ON_P, ON_Q),
        p("Observation/survey", ON_P, ON_Q),
    ),
    ("Observation", "subject"): both(
        p("Observation/weight", "{Patient:ref}", "{Patient/q:ref}"),
    ),
    ("Observation", "date"): both(
        p("Observation/weight", "2024-03-01", "ge2024-03-02"),
        p("Observation/bp", "ge2026-03-01", "lt2026-03-01"),
    ),
    ("Observation", "code"): both(
        p("Observation/weight", "http://loinc.org|29463-7", "http://loinc.org|8302-2"),
        p("Observation/bp", "85354-9", "29463-7"),
        p("Observation/survey", "http://loinc.org|44261-6", "http://loinc.org|29463-7"),
    ),
    ("Observation", "category"): both(
        p("Observation/weight", "vital-signs", "survey"),
        p("Observation/survey", "survey", "vital-signs"),
    ),
    ("Observation", "value-quantity"): p(
        "Observation/weight", "70|http://unitsofmeasure.org|kg", "gt71"
    ),
    ("Observation", "encounter"): p("Observation/bp", "{Encounter:ref}", f"Encounter/{NOBODY}"),
}
SPECIFIC.update(
    {
        # Condition, MedicationStatement, AllergyIntolerance: the rich ones received over FHIR
        ("Condition", "_id"): p("Condition/rich", "{Condition/rich}", "{Condition}"),
        ("Condition", "_lastUpdated"): p("Condition/rich", "ge2026-03-01", "lt2026-03-01"),
        ("Condition", "identifier"): p("Condition/rich", "urn:oid:1.2.3.4.5|cond-77", "cond-78"),
        ("Condition", "patient"): p("Condition/rich", ON_P, ON_Q),
        ("Condition", "subject"): p("Condition/rich", "{Patient:ref}", "{Patient/q:ref}"),
        ("Condition", "date"): p("Condition/rich", "2019-03", "ge2020"),
        ("Condition", "onset-date"): p("Condition/rich", "ge2019-03-01", "lt2019-03"),
        ("Condition", "code"): both(
            p("Condition/rich", "http://snomed.info/sct|370143000", "F33.1"),
            p("Condition", "http://hl7.org/fhir/sid/icd-10-cm|F33.1", "F33.2"),
        ),
        ("Condition", "category"): p("Condition/rich", "problem-list-item", "encounter-diagnosis"),
        ("Condition", "clinical-status"): p("Condition/rich", "active", "resolved"),
        ("MedicationStatement", "_id"): p(
            "MedicationStatement/rich", "{MedicationStatement/rich}", "{MedicationStatement}"
        ),
        ("MedicationStatement", "_lastUpdated"): p(
            "MedicationStatement/rich", "ge2026-03-01", "lt2026-03-01"
        ),
        ("MedicationStatement", "identifier"): p(
            "MedicationStatement/rich", "urn:oid:1.2.3.4.8|ms-3", "ms-4"
        ),
        ("MedicationStatement", "patient"): p("MedicationStatement/rich", ON_P, ON_Q),
        ("MedicationStatement", "subject"): p(
            "MedicationStatement/rich", "{Patient:ref}", "{Patient/q:ref}"
        ),
        ("MedicationStatement", "date"): p("MedicationStatement/rich", "2022-01", "ge2023"),
        ("MedicationStatement", "effective"): p(
            "MedicationStatement/rich", "lt2022-02", "gt2022-02"
        ),
        ("MedicationStatement", "code"): p(
            "MedicationStatement/rich", "http://www.nlm.nih.gov/research/umls/rxnorm|6130", "6131"
        ),
        ("AllergyIntolerance", "_id"): p(
            "AllergyIntolerance/rich", "{AllergyIntolerance/rich}", "{AllergyIntolerance}"
        ),
        ("AllergyIntolerance", "_lastUpdated"): p(
            "AllergyIntolerance/rich", "ge2026-03-01", "lt2026-03-01"
        ),
        ("AllergyIntolerance", "identifier"): p(
            "AllergyIntolerance/rich", "urn:oid:1.2.3.4.6|alg-9", "alg-8"
        ),
        ("AllergyIntolerance", "patient"): p("AllergyIntolerance/rich", ON_P, ON_Q),
        ("AllergyIntolerance", "clinical-status"): p(
            "AllergyIntolerance/rich", "active", "resolved"
        ),
        # The treatment session and its record
        ("Encounter", "_id"): p("Encounter", "{Encounter}", "{Encounter/received}"),
        ("Encounter", "patient"): p("Encounter", ON_P, ON_Q),
        ("Encounter", "subject"): p("Encounter", "{Patient:ref}", "{Patient/q:ref}"),
        ("Encounter", "date"): p("Encounter", "2026-03-02", "ge2026-03-03"),
        ("Encounter", "status"): p("Encounter", "finished", "planned"),
        ("MedicationAdministration", "_id"): p(
            "MedicationAdministration", "{MedicationAdministration}", NOBODY
        ),
        ("MedicationAdministration", "patient"): p("MedicationAdministration", ON_P, ON_Q),
        ("MedicationAdministration", "subject"): p(
            "MedicationAdministration", "{Patient:ref}", "{Patient/q:ref}"
        ),
        ("MedicationAdministration", "context"): p(
            "MedicationAdministration", "{Encounter:ref}", "{Encounter/received:ref}"
        ),
        ("MedicationAdministration", "date"): p(
            "MedicationAdministration", "2026-03-02", "ge2026-03-03"
        ),
        ("AdverseEvent", "_id"): p("AdverseEvent", "{AdverseEvent}", NOBODY),
        ("AdverseEvent", "patient"): p("AdverseEvent", ON_P, ON_Q),
        ("AdverseEvent", "subject"): p("AdverseEvent", "{Patient:ref}", "{Patient/q:ref}"),
        ("AdverseEvent", "date"): p("AdverseEvent", "2026-03-02", "ge2026-03-03"),
        ("AdverseEvent", "encounter"): p(
            "AdverseEvent", "{Encounter:ref}", "{Encounter/received:ref}"
        ),
        ("Questionnaire", "_id"): p("Questionnaire", "phq9", "gad7"),
        ("Questionnaire", "url"): p(
            "Questionnaire",
            "https://ketaclinic.org/fhir/Questionnaire/phq9",
            "https://ketaclinic.org/fhir/Questionnaire/gad7",
        ),  # fmt: skip
        ("Questionnaire", "code"): p("Questionnaire", "http://loinc.org|44249-1", "69737-5"),
        ("Questionnaire", "version"): p("Questionnaire", "1", "99"),
        ("QuestionnaireResponse", "_id"): p(
            "QuestionnaireResponse", "{QuestionnaireResponse}", NOBODY
        ),
        ("QuestionnaireResponse", "patient"): p("QuestionnaireResponse", ON_P, ON_Q),
        ("QuestionnaireResponse", "subject"): p(
            "QuestionnaireResponse", "{Patient:ref}", "{Patient/q:ref}"
        ),
        ("QuestionnaireResponse", "questionnaire"): p(
            "QuestionnaireResponse",
            "http://loinc.org/q/44249-1",
            "https://ketaclinic.org/fhir/Questionnaire/gad7",
        ),  # fmt: skip
        ("QuestionnaireResponse", "authored"): p(
            "QuestionnaireResponse", "2026-03-01", "ge2026-03-02"
        ),
        ("QuestionnaireResponse", "status"): p("QuestionnaireResponse", "completed", "amended"),
        ("Consent", "_id"): p("Consent", "{Consent}", NOBODY),
        ("Consent", "patient"): p("Consent", ON_P, ON_Q),
        ("Consent", "status"): p("Consent", "active", "inactive"),
        ("Consent", "date"): p("Consent", "ge2026-03-01", "lt2026-03-01"),
        ("DocumentReference", "_id"): p(
            "DocumentReference", "{DocumentReference}", "{DocumentReference/received}"
        ),
        ("DocumentReference", "patient"): p("DocumentReference", ON_P, ON_Q),
        ("DocumentReference", "subject"): p(
            "DocumentReference", "{Patient:ref}", "{Patient/q:ref}"
        ),
        ("DocumentReference", "encounter"): p(
            "DocumentReference", "Encounter/{DocumentReference}", "{Encounter:ref}"
        ),
        ("DocumentReference", "date"): p("DocumentReference", "ge2026-03-01", "lt2026-03-01"),
        ("AuditEvent", "_id"): p("AuditEvent", "{AuditEvent}", "0"),
        ("AuditEvent", "date"): p("AuditEvent", "ge2026-03-01", "lt2026-03-01"),
        ("AuditEvent", "patient"): p("AuditEvent", ON_P, ON_Q),
        ("AuditEvent", "entity"): p("AuditEvent", "{Patient:ref}", "{Patient/q:ref}"),
        ("AuditEvent", "agent-name"): p("AuditEvent", "{agent}", "nobody"),
        ("AuditEvent", "type"): p("AuditEvent", "{type}", "{type}.never"),
        ("AuditEvent", "outcome"): p("AuditEvent", "{outcome}", "{no-outcome}"),
        # The calendar: the first chair, its schedule, a free slot, the appointment, the cohort
        ("Location", "_id"): p("Location", "{Location}", "{Location/received}"),
        ("Schedule", "actor"): p("Schedule", "{Location:ref}", "{Location/received:ref}"),
        ("Slot", "schedule"): p("Slot", "{Schedule:ref}", "{Schedule/2:ref}", start="2026-03-03"),
        ("Slot", "start"): p("Slot", "2026-03-03", "2026-03-04", schedule="{Schedule:ref}"),
        ("Slot", "status"): p(
            "Slot", "free", "busy", schedule="{Schedule:ref}", start="2026-03-03"
        ),
        ("Slot", "service-type"): p(
            "Slot",
            "{service-type}",
            "{other-service-type}",
            schedule="{Schedule:ref}",
            start="2026-03-03",
        ),  # fmt: skip
        ("Appointment", "patient"): p("Appointment", ON_P, ON_Q),
        ("Appointment", "date"): p("Appointment", "2026-03-03", "2026-03-04"),
        ("Appointment", "status"): p("Appointment", "booked", "cancelled"),
        ("Group", "_id"): p("Group", "{Group}", NOBODY),
        ("Group", "name"): p("Group", "spring", "autumn"),
    }
)


def generic_cases(resource_type: str, param: str) -> Cases | None:
    """The received resource of that type (generic_resource) by each parameter kept ones have."""
    name = f"{resource_type}/received"
    status = STATUS.get(resource_type)
    table: dict[str, Cases] = {
        "_id": p(name, "{" + name + "}", NOBODY),
        "identifier": both(
            p(name, f"{ID}|{resource_type}", f"{ID}|other"), p(name, resource_type, "other")
        ),
        "patient": p(name, ON_P, ON_Q),
        "subject": p(name, "{Patient:ref}", "{Patient/q:ref}"),
        "code": both(
            p(name, f"{CODE}|{resource_type}", f"{CODE}|other"), p(name, f"{CODE}|", f"{CAT}|")
        ),
        "category": p(name, f"{CAT}|{resource_type}", f"{CAT}|other"),
        "date": p(name, WHEN, "lt" + WHEN),
        "_lastUpdated": p(name, "ge2026-03-01", "lt2026-03-01"),
        "target": p(name, "{Patient/q:ref}", "{Patient:ref}"),
    }
    if status:
        table["status"] = p(name, status[0], status[1])
    return table.get(param)


def known(resource_type: str, c: Clinic) -> str:
    """The name of the known resource of a type (the clinic's own where it has one)."""
    for name in (resource_type, f"{resource_type}/weight", f"{resource_type}/received"):
        if name in c.ref:
            return name
    raise KeyError(resource_type)


# How to find the known resource of each type, for _include and _revinclude (its `_id`, else:)
FIND = {
    "Schedule": {"actor": "{Location:ref}"},
    "Slot": {"schedule": "{Schedule:ref}", "start": "2026-03-03"},
    "Appointment": {"patient": ON_P},
    "Questionnaire": {"_id": "phq9"},
}


def include_cases(resource_type: str, include: str, revinclude: bool) -> Cases:
    source, _, param = include.partition(":")

    def cases(c: Clinic) -> list[Case]:
        key = "_revinclude" if revinclude else "_include"
        if not revinclude and param in ("patient", "subject"):
            value = ON_P if param == "patient" else "{Patient:ref}"
            other = ON_Q if param == "patient" else "{Patient/q:ref}"
            return [
                Case(
                    "Patient",
                    {param: _fill(c, value), key: include},
                    {param: _fill(c, other), key: include},
                    mode="include",
                )
            ]
        if not revinclude:  # Provenance:target: what the Provenance about everything names
            return [
                Case(
                    target,
                    {"_id": c.id("Provenance/all"), key: include},
                    {"_id": c.id("Provenance/received"), key: include},
                    mode="include",
                )
                for target in ("Patient", "Observation/weight", "Encounter", "Condition/rich")
            ]
        if resource_type == "Patient":  # what points to the first patient, not the second
            target = "Provenance/all" if source == "Provenance" else known(source, c)
            return [
                Case(
                    target,
                    {"_id": c.id("Patient"), key: include},
                    {"_id": c.id("Patient/q"), key: include},
                    mode="include",
                )
            ]
        # Provenance:target on any type: the Provenance about everything
        find = {k: _fill(c, v) for k, v in FIND.get(resource_type, {}).items()}
        find = find or {"_id": c.id(known(resource_type, c))}
        miss = {**find, "_id": NOBODY} if "_id" in find else {**find, "_count": "0"}
        if resource_type == "Provenance":  # the Provenance about everything is itself a match
            find, miss = {"_id": c.id("Provenance/received")}, {"_id": NOBODY}
            return [
                Case("Provenance/all", {**find, key: include}, {**miss, key: include}, "include")
            ]
        return [Case("Provenance/all", {**find, key: include}, {**miss, key: include}, "include")]

    return cases


def declared() -> dict[tuple[str, str], Cases | None]:
    """Every (type, parameter) the CapabilityStatement declares, _include and _revinclude as
    ("_include:Type:param"), with its cases (None: none written)."""
    statement = capability_statement("http://testserver/fhir/r4/")
    out: dict[tuple[str, str], Cases | None] = {}
    for resource in statement["rest"][0]["resource"]:
        kind = resource["type"]
        for param in resource.get("searchParam", []):
            name = param["name"]
            if name in ("_count", "_sort"):  # paging and order, not filters
                continue
            cases = [c for c in (SPECIFIC.get((kind, name)), _generic_of(kind, name)) if c]
            out[(kind, name)] = both(*cases) if cases else None
        for include in resource.get("searchInclude", []):
            out[(kind, f"_include:{include}")] = include_cases(kind, include, revinclude=False)
        for include in resource.get("searchRevInclude", []):
            out[(kind, f"_revinclude:{include}")] = include_cases(kind, include, revinclude=True)
    return out


def _generic_of(resource_type: str, param: str) -> Cases | None:
    return generic_cases(resource_type, param) if resource_type in GENERIC else None


def test_every_declared_parameter_has_cases() -> None:
    """The table covers the CapabilityStatement exactly: a parameter declared without a case
    fails here (write its cases, or stop declaring it); a case for one no longer declared too."""
    table = declared()
    missing = sorted(key for key, cases in table.items() if cases is None)
    assert missing == [], f"declared without a case: {missing}"
    stale = sorted(set(SPECIFIC) - set(table))
    assert stale == [], f"cases for parameters no longer declared: {stale}"


def _refs(client: Client, resource_type: str, params: dict[str, str], mode: str) -> set[str] | str:
    response = client.get(BASE + resource_type, params, headers=STRICT)
    if response.status_code == 404 and mode == "match":
        return set()  # e.g. Slot?schedule=<a schedule that does not exist>
    if response.status_code != 200:
        return f"{response.status_code} {response.content[:300]!r}"
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in response.json().get("entry", [])
        if e["search"]["mode"] == mode
    }


@pytest.mark.django_db
def test_every_declared_parameter_filters(
    clinic: Clinic, members: dict[str, Any], org_a: Any
) -> None:
    _finish(clinic, members, org_a)
    clients = {"AuditEvent": api_client(members["compliance"])}
    default = api_client(members["prescriber"])
    failures = []
    for (resource_type, param), make in declared().items():
        assert make is not None
        source = param.split(":")[1] if param.startswith("_") and ":" in param else ""
        client = clients.get(resource_type, clients.get(source, default))
        for case in make(clinic):
            target = clinic.ref[case.target]
            for params, wanted in ((case.find, True), (case.miss, False)):
                query = {(param if k == "?" else k): v for k, v in params.items()}
                if resource_type == "AuditEvent":  # the oldest first: searches add more
                    query.setdefault("_sort", "date")
                found = _refs(client, resource_type, query, case.mode)
                if isinstance(found, str) or (target in found) != wanted:
                    failures.append(
                        f"{resource_type}?{urlencode(query)} "
                        f"{'should' if wanted else 'should not'} {case.mode} {case.target}: {found}"
                    )
    assert failures == [], f"{len(failures)} failures:\n" + "\n".join(failures)
