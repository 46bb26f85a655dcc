"""Consent through the JSON API: list and publish templates and versions, sign in clinic, revoke,
invite to the portal; the same services and rules as the staff screens (regression: these were
UI-only, so an integrator could not find the version id a FHIR Consent needs, nor revoke)."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import api_client, make_patient
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.consent import services
from ketaclinic.consent.models import ConsentSignature

pytestmark = pytest.mark.django_db
JSON = "application/json"


@pytest.fixture
def seeded(org_a: Any, members: Any) -> dict[str, Any]:
    with scope(organization=org_a):
        versions = services.consent_templates_seed_defaults(organization=org_a)
    return {v.template.route or v.template.kind: v for v in versions}


def test_versions_list_the_current_form_of_each_template_for_staff_who_see_consents(
    seeded: Any, members: Any
) -> None:
    nurse = api_client(members["nurse"])
    listed = nurse.get("/api/v1/consent/versions?route=intravenous")
    assert listed.status_code == 200, listed.json()
    [version] = listed.json()
    assert version["id"] == str(seeded["intravenous"].public_id)
    assert version["version"] == 1
    assert version["content_hash"] == seeded["intravenous"].content_hash
    assert {a["key"] for a in version["acknowledgements"]} >= {"dissociation", "withdraw"}
    assert len(nurse.get("/api/v1/consent/versions").json()) == len(seeded)
    assert nurse.get(f"/api/v1/consent/versions/{version['id']}").json()["title"]
    # Drafts and authoring are for the clinic admin only.
    assert nurse.get("/api/v1/consent/templates").status_code == 403


def test_admin_edits_a_draft_and_publishes_it_as_the_next_version(
    seeded: Any, members: Any
) -> None:
    admin = api_client(members["clinic_admin"])
    template_id = str(seeded["intravenous"].template.public_id)
    unchanged = admin.post(f"/api/v1/consent/templates/{template_id}/publish")
    assert unchanged.status_code == 409  # nothing changed since version 1
    draft = admin.patch(
        f"/api/v1/consent/templates/{template_id}",
        {"title": "IV ketamine consent (2027)"},
        content_type=JSON,
    )
    assert draft.status_code == 200, draft.json()
    assert draft.json()["draft_differs_from_current"] is True
    assert draft.json()["current_version"] == 1
    # Until published, patients keep signing version 1.
    nurse = api_client(members["nurse"])
    assert nurse.get("/api/v1/consent/versions?route=intravenous").json()[0]["version"] == 1
    published = admin.post(f"/api/v1/consent/templates/{template_id}/publish")
    assert published.status_code == 201, published.json()
    assert published.json()["version"] == 2
    assert published.json()["title"] == "IV ketamine consent (2027)"
    versions = admin.get(f"/api/v1/consent/templates/{template_id}/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert nurse.get("/api/v1/consent/versions?route=intravenous").json()[0]["version"] == 2
    bad = admin.patch(
        f"/api/v1/consent/templates/{template_id}",
        {"acknowledgements": [{"key": "Bad Key", "text": "x"}]},
        content_type=JSON,
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "acknowledgements"


def test_admin_creates_a_template_and_seeds_missing_defaults(org_a: Any, members: Any) -> None:
    admin = api_client(members["clinic_admin"])
    seeded = admin.post("/api/v1/consent/templates/defaults")
    assert seeded.status_code == 201
    assert len(seeded.json()) == 7
    assert admin.post("/api/v1/consent/templates/defaults").json() == []
    duplicate = admin.post(
        "/api/v1/consent/templates",
        {
            "kind": "research",
            "setting": "any",
            "title": "Research",
            "body": "Text",
            "acknowledgements": [{"key": "data_use", "text": "I agree."}],
        },
        content_type=JSON,
    )
    assert duplicate.status_code == 409


def test_sign_in_clinic_then_revoke_over_the_api(
    seeded: Any, members: Any, prescriber: Any
) -> None:
    patient = make_patient(prescriber)
    nurse = api_client(members["nurse"])
    version = seeded["intravenous"]
    incomplete = nurse.post(
        f"/api/v1/patients/{patient.public_id}/consents",
        {
            "template_version": str(version.public_id),
            "printed_name": "Someone Else",
            "acknowledged": [],
        },
        content_type=JSON,
    )
    assert incomplete.status_code == 400
    fields = {e["field"] for e in incomplete.json()["errors"]}
    assert fields == {"acknowledged", "printed_name"}
    signed = nurse.post(
        f"/api/v1/patients/{patient.public_id}/consents",
        {
            "template_version": str(version.public_id),
            "printed_name": patient.full_name,
            "acknowledged": [a["key"] for a in version.acknowledgements],
        },
        content_type=JSON,
    )
    assert signed.status_code == 201, signed.json()
    body = signed.json()
    assert body["channel"] == "clinic"
    assert body["witness"] == members["nurse"].user.username
    assert body["revoked_at"] is None
    listed = nurse.get(f"/api/v1/patients/{patient.public_id}/consents").json()
    assert [s["id"] for s in listed] == [body["id"]]

    no_reason = nurse.post(f"/api/v1/consents/{body['id']}/revoke", {}, content_type=JSON)
    assert no_reason.status_code == 422
    revoked = nurse.post(
        f"/api/v1/consents/{body['id']}/revoke",
        {"reason": "Patient phoned: no longer wishes treatment."},
        content_type=JSON,
    )
    assert revoked.status_code == 200, revoked.json()
    assert revoked.json()["revoked_at"] is not None
    again = nurse.post(
        f"/api/v1/consents/{body['id']}/revoke", {"reason": "twice"}, content_type=JSON
    )
    assert again.status_code == 409
    with scopes_disabled():
        assert ConsentSignature.objects.get(public_id=body["id"]).is_revoked
        event = AuditEvent.objects.get(action="consent.revoked")
    assert event.channel == "api"
    assert event.detail["reason"] == "Patient phoned: no longer wishes treatment."


def test_roles_and_tenancy(seeded: Any, members: Any, outsider: Any, prescriber: Any) -> None:
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        signature = services.consent_sign(
            actor=prescriber,
            patient=patient,
            template_version=seeded["intravenous"],
            witness=prescriber.user,
            signature=services.SignatureInput(
                printed_name=patient.full_name,
                acknowledged=[a["key"] for a in seeded["intravenous"].acknowledgements],
            ),
        )
    stranger = api_client(outsider)
    assert stranger.get(f"/api/v1/consents/{signature.public_id}").status_code == 404
    revoke = stranger.post(
        f"/api/v1/consents/{signature.public_id}/revoke", {"reason": "x"}, content_type=JSON
    )
    assert revoke.status_code == 404
    researcher = api_client(members["researcher"])
    assert researcher.get(f"/api/v1/patients/{patient.public_id}/consents").status_code == 403
    invite = api_client(members["front_desk"]).post(
        f"/api/v1/patients/{patient.public_id}/portal-invitations"
    )
    assert invite.status_code == 201, invite.json()
    assert invite.json()["invitation_path"].startswith("/portal/invite/")
    assert invite.json()["new_account"] is True
