"""FHIR Consent: read, search and create through consent_sign; revocation; bad input; tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import actor_for, api_client, audit_count, make_patient
from ketaclinic.consent import services
from ketaclinic.consent.models import ConsentSignature, ConsentTemplate
from ketaclinic.fhir import consent_resource as cr
from ketaclinic.fhir.tests.helpers import post, valid

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
# Served for every readable type (fhir/history.py), beside the type's own interactions.
HISTORY = {"vread", "history-instance", "history-type"}


@pytest.fixture
def versions(org_a: Any, members: Any) -> dict[str, Any]:
    with scope(organization=org_a):
        published = services.consent_templates_seed_defaults(organization=org_a)
    return {v.template.route or v.template.kind: v for v in published}


@pytest.fixture
def client(members: Any) -> Client:
    return api_client(members["nurse"])


@pytest.fixture
def patient(prescriber: Any) -> Any:
    return make_patient(prescriber)


def consent_json(patient: Any, version: Any, **changes: Any) -> dict[str, Any]:
    """A Consent as a tablet app would send it: every acknowledgement ticked, full name typed."""
    scope_code = "research" if version.template.kind == "research" else "treatment"
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": cr.SCOPE_SYSTEM, "code": scope_code}]},
        "category": [{"coding": [cr.PATIENT_CONSENT]}],
        "patient": {"reference": f"Patient/{patient.public_id}"},
        "performer": [{"reference": f"Patient/{patient.public_id}", "display": patient.full_name}],
        "policy": [{"uri": f"{cr.VERSION_URN}{version.public_id}"}],
        "provision": {
            "type": "permit",
            "provision": [
                {
                    "type": "permit",
                    "code": [{"coding": [{"system": cr.ACK_SYSTEM, "code": item["key"]}]}],
                }
                for item in version.acknowledgements
            ],
        },
    }
    data.update(changes)
    return data


def signed(actor: Any, patient: Any, version: Any) -> ConsentSignature:
    with scope(organization=actor.organization):
        return services.consent_sign(
            actor=actor,
            patient=patient,
            template_version=version,
            witness=actor.user,
            signature=services.SignatureInput(
                printed_name=patient.full_name,
                acknowledged=[a["key"] for a in version.acknowledgements],
            ),
        )


def count_signatures() -> int:
    with scopes_disabled():
        return ConsentSignature.objects.count()


def test_create_through_the_consent_service_then_read(client, versions, patient, members):
    version = versions["intravenous"]
    response = post(client, BASE + "Consent", consent_json(patient, version))
    assert response.status_code == 201, response.content
    created = valid(response.json())
    assert f"/fhir/r4/Consent/{created['id']}" in response["Location"]
    assert created["status"] == "active"
    assert created["scope"]["coding"][0]["code"] == "treatment"
    assert created["category"][0]["coding"][0]["code"] == "59284-0"
    assert created["patient"]["reference"] == f"Patient/{patient.public_id}"
    assert created["performer"][0]["display"] == "Ada Lovelace"
    policy = created["policy"][0]
    assert policy["uri"] == f"{cr.VERSION_URN}{version.public_id}"
    extensions = {e["url"]: e for e in policy["extension"]}
    assert extensions[cr.EXT_CONTENT_HASH]["valueString"] == version.content_hash
    assert extensions[cr.EXT_VERSION]["valueInteger"] == version.version
    codes = {c["coding"][0]["system"]: c["coding"][0]["code"] for c in created["provision"]["code"]}
    assert codes == {cr.ROUTE_SYSTEM: "intravenous", cr.SETTING_SYSTEM: "clinic"}
    acks = {p["code"][0]["coding"][0]["code"] for p in created["provision"]["provision"]}
    assert acks == {a["key"] for a in version.acknowledgements}
    witness = created["verification"][0]["extension"][0]["valueReference"]
    assert witness["identifier"]["value"] == members["nurse"].user.username
    # The same row the clinic tablet writes: witnessed, with a stored PDF, audited with versions.
    with scopes_disabled():
        row = ConsentSignature.objects.get()
    assert (row.channel, row.witness, row.route) == ("clinic", members["nurse"].user, "intravenous")
    assert bytes(row.pdf).startswith(b"%PDF")
    assert audit_count(action="consent.signed", channel="fhir") == 1
    read = client.get(f"{BASE}Consent/{created['id']}")
    assert read.status_code == 200
    assert valid(read.json()) == created
    assert audit_count(action="fhir.consent.read") == 1


def test_the_research_consent_has_research_scope(client, versions, patient):
    version = versions["research"]
    created = post(client, BASE + "Consent", consent_json(patient, version)).json()
    assert created["scope"]["coding"][0]["code"] == "research"
    codes = [c["coding"][0] for c in created["provision"]["code"]]
    assert codes == [{"system": cr.SETTING_SYSTEM, "code": "any"}]  # no route


def test_a_revoked_consent_is_inactive_with_the_end_of_its_period(
    client, versions, patient, prescriber
):
    row = signed(prescriber, patient, versions["intramuscular"])
    with scope(organization=prescriber.organization):
        services.consent_revoke(actor=prescriber, signature=row, reason="Patient changed mind.")
    data = valid(client.get(f"{BASE}Consent/{row.public_id}").json())
    assert data["status"] == "inactive"
    assert "end" in data["provision"]["period"]
    bundle = client.get(BASE + "Consent", {"status": "inactive"}).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(row.public_id)]
    assert client.get(BASE + "Consent", {"status": "active"}).json()["total"] == 0


def test_search_by_patient_status_date_and_id(client, versions, patient, prescriber):
    other = make_patient(prescriber, given_name="Grace", family_name="Hopper")
    mine = signed(prescriber, patient, versions["intravenous"])
    signed(prescriber, other, versions["intravenous"])
    theirs_too = signed(prescriber, other, versions["kap"])

    def ids(**query: str) -> set[str]:
        response = client.get(BASE + "Consent", query)
        assert response.status_code == 200, response.content
        bundle = valid(response.json())
        assert bundle["total"] == len(bundle["entry"])
        return {e["resource"]["id"] for e in bundle["entry"]}

    assert ids(patient=f"Patient/{patient.public_id}") == {str(mine.public_id)}
    assert len(ids(patient=str(other.public_id))) == 2
    assert ids(_id=str(theirs_too.public_id)) == {str(theirs_too.public_id)}
    today = mine.signed_at.date().isoformat()
    assert len(ids(date=today, status="active")) == 3
    assert ids(date="lt2000-01-01") == set()
    strict = {"Prefer": "handling=strict"}
    assert client.get(BASE + "Consent", {"scope": "treatment"}, headers=strict).status_code == 400
    assert audit_count(action="fhir.consent.searched") == 5  # one per answered search


def test_search_query_count_does_not_grow(
    client, versions, patient, prescriber, django_assert_max_num_queries
):
    for route in ("intravenous", "intramuscular", "kap", "research"):
        signed(prescriber, patient, versions[route])
    with django_assert_max_num_queries(9):
        response = client.get(BASE + "Consent", {"patient": str(patient.public_id)})
    assert response.json()["total"] == 4
    with django_assert_max_num_queries(7):
        assert (
            client.get(f"{BASE}Consent/{response.json()['entry'][0]['resource']['id']}").status_code
            == 200
        )


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("change", "status", "expression"),
    [
        (lambda d, p, v: _without(d, "scope"), 400, "Consent.scope"),
        (lambda d, p, v: {**d, "status": "draft"}, 422, "Consent.status"),
        (lambda d, p, v: _without(d, "patient"), 422, "Consent.patient"),
        (lambda d, p, v: {**d, "policy": [{"uri": "urn:x"}]}, 422, "Consent.policy"),
        (
            lambda d, p, v: {
                **d,
                "policy": [{"uri": f"{cr.VERSION_URN}00000000-0000-0000-0000-000000000000"}],
            },
            422,
            "Consent.policy",
        ),
        (
            lambda d, p, v: {**d, "performer": [{**d["performer"][0], "display": "A. Lovelace"}]},
            422,
            "Consent.performer[0].display",
        ),
        (
            lambda d, p, v: {
                **d,
                "provision": {"type": "permit", "provision": d["provision"]["provision"][1:]},
            },
            422,
            "Consent.provision.provision",
        ),
        (
            lambda d, p, v: {
                **d,
                "scope": {"coding": [{"system": cr.SCOPE_SYSTEM, "code": "research"}]},
            },
            422,
            "Consent.scope",
        ),
    ],
    ids=[
        "no-scope",
        "draft",
        "no-patient",
        "foreign-policy",
        "unknown-version",
        "wrong-name",
        "missing-acknowledgement",
        "wrong-scope",
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    client, versions, patient, change, status, expression
):
    version = versions["intravenous"]
    before = audit_count(action="consent.signed")
    response = post(
        client, BASE + "Consent", change(consent_json(patient, version), patient, version)
    )
    assert response.status_code == status, response.content
    outcome = valid(response.json())
    assert outcome["resourceType"] == "OperationOutcome"
    located = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert any(e.startswith(expression) for e in located), outcome
    assert count_signatures() == 0
    assert audit_count(action="consent.signed") == before


def test_an_outdated_version_is_refused(client, versions, patient, members):
    old = versions["intravenous"]
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        template = ConsentTemplate.objects.get(pk=old.template_id)
        services.consent_template_update(actor=admin, template=template, data={"title": "IV v2"})
        services.consent_template_publish(actor=admin, template=template)
    response = post(client, BASE + "Consent", consent_json(patient, old))
    assert response.status_code == 422
    assert "newer version" in response.json()["issue"][0]["diagnostics"]
    assert count_signatures() == 0


def test_roles_another_clinic_and_the_capability_statement(
    versions, patient, prescriber, members, outsider
):
    row = signed(prescriber, patient, versions["intravenous"])
    # Therapists see consents but do not record them; researchers see neither.
    therapist = api_client(members["therapist"])
    assert therapist.get(f"{BASE}Consent/{row.public_id}").status_code == 200
    body = consent_json(patient, versions["intramuscular"])
    assert post(therapist, BASE + "Consent", body).status_code == 403
    assert (
        api_client(members["researcher"]).get(f"{BASE}Consent/{row.public_id}").status_code == 403
    )
    # Another organization: 404 on read and on a create for this clinic's patient; empty search.
    foreign = api_client(outsider)
    assert foreign.get(f"{BASE}Consent/{row.public_id}").status_code == 404
    assert post(foreign, BASE + "Consent", body).status_code == 404
    assert foreign.get(BASE + "Consent", {"patient": str(patient.public_id)}).json()["total"] == 0
    assert count_signatures() == 1
    statement = valid(Client().get(BASE + "metadata").json())
    consent = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Consent")
    assert {i["code"] for i in consent["interaction"]} - HISTORY == {
        "read",
        "create",
        "search-type",
    }
    assert {"patient", "status", "date", "_id"} <= {p["name"] for p in consent["searchParam"]}
