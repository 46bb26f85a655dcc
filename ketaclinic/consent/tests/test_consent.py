"""Consent: versions with content hashes, complete signatures with a PDF copy, revocation,
re-consent after a new version, portal accounts; audit with versions; tenancy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_patient, staff_client
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.consent import selectors, services
from ketaclinic.consent.models import ConsentSignature, ConsentTemplate
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed
from tests.pdf import pdf_text

pytestmark = pytest.mark.django_db
PATIENT_PASSWORD = "plum-Harbor-7-quiet"


@pytest.fixture
def seeded(org_a: Any, members: Any) -> dict[str, Any]:
    with scope(organization=org_a):
        versions = services.consent_templates_seed_defaults(organization=org_a)
    return {v.template.route or v.template.kind: v for v in versions}


def sig_input(patient: Any, version: Any, **kw: Any) -> services.SignatureInput:
    data = {
        "printed_name": patient.full_name,
        "acknowledged": [a["key"] for a in version.acknowledgements],
        "client_address": "10.0.0.7",
        "user_agent": "TabletBrowser/1.0",
    }
    data.update(kw)
    return services.SignatureInput(**data)


def test_defaults_cover_every_route_kap_and_research(seeded):
    assert set(seeded) == {
        "intravenous",
        "intramuscular",
        "intranasal_esketamine",
        "sublingual_oral_in_clinic",
        "sublingual_at_home",
        "kap",
        "research",
    }
    iv_keys = {a["key"] for a in seeded["intravenous"].acknowledgements}
    assert {
        "dissociation",
        "blood_pressure",
        "nausea",
        "misuse",
        "bladder",
        "no_driving",
        "off_label",
        "withdraw",
    } <= iv_keys
    assert "rems" in {a["key"] for a in seeded["intranasal_esketamine"].acknowledgements}
    assert seeded["sublingual_at_home"].template.setting == "home"


def test_publishing_freezes_an_immutable_hashed_version(seeded, members, org_a):
    admin = actor_for(members["clinic_admin"])
    v1 = seeded["intravenous"]
    with scope(organization=org_a):
        template = v1.template
        with pytest.raises(Conflict):
            services.consent_template_publish(actor=admin, template=template)
        services.consent_template_update(actor=admin, template=template, data={"title": "IV v2"})
        v2 = services.consent_template_publish(actor=admin, template=template)
        with pytest.raises(Forbidden):
            services.consent_template_publish(actor=actor_for(members["nurse"]), template=template)
    assert v2.version == 2
    assert v2.content_hash != v1.content_hash
    assert len(v2.content_hash) == 64
    v1.refresh_from_db()
    assert v1.title != "IV v2"
    with pytest.raises(PermissionError):
        v1.save()
    with scopes_disabled():
        event = AuditEvent.objects.filter(action="consent.template.published").last()
    assert event.detail["version"] == 2
    assert event.detail["content_hash"] == v2.content_hash


def test_signing_needs_every_acknowledgement_and_the_full_name(seeded, prescriber, org_a):
    patient = make_patient(prescriber)
    version = seeded["intravenous"]
    with scope(organization=org_a):
        with pytest.raises(ValidationFailed) as refused:
            services.consent_sign(
                actor=prescriber,
                patient=patient,
                template_version=version,
                witness=prescriber.user,
                signature=sig_input(
                    patient, version, acknowledged=["dissociation"], printed_name="A L"
                ),
            )
    fields = [e.field for e in refused.value.errors]
    assert fields.count("acknowledged") == len(version.acknowledgements) - 1
    assert "printed_name" in fields


def test_in_clinic_signing_needs_a_witness_who_may_witness(seeded, prescriber, members, org_a):
    patient = make_patient(prescriber)
    version = seeded["intravenous"]
    with scope(organization=org_a):
        with pytest.raises(ValidationFailed) as refused:
            services.consent_sign(
                actor=prescriber,
                patient=patient,
                template_version=version,
                witness=members["researcher"].user,
                signature=sig_input(patient, version),
            )
    assert refused.value.errors[0].field == "witness"


def test_signature_pdf_shows_the_manifestation_and_is_audited(
    seeded, prescriber, members, org_a, tmp_path
):
    patient = make_patient(prescriber)
    version = seeded["intravenous"]
    with scope(organization=org_a):
        signature = services.consent_sign(
            actor=prescriber,
            patient=patient,
            template_version=version,
            witness=prescriber.user,
            signature=sig_input(patient, version),
        )
    assert signature.client_address == "10.0.0.7"
    assert signature.user_agent == "TabletBrowser/1.0"
    response = staff_client(members["nurse"]).get(f"/consent/signatures/{signature.public_id}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Printed name" in text
    assert "Ada Lovelace" in text
    assert "consent to treatment" in text
    # PDFium reads the label column before the value column, so label and time are found apart.
    assert "Signed" in text
    # In the clinic's zone (America/Chicago), to the second, never UTC (issue 10).
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d C[SD]T", text)
    assert "UTC" not in text
    assert f"Version {version.version}" in text
    with scopes_disabled():
        event = AuditEvent.objects.get(action="consent.signed")
    assert event.detail["version"] == 1
    assert event.detail["content_hash"] == version.content_hash
    assert event.detail["witness"] == prescriber.user.username
    assert event.detail["pdf_sha256"] == signature.pdf_sha256


def test_revocation_is_audited_and_a_new_version_needs_re_consent(
    seeded, prescriber, members, org_a
):
    patient = make_patient(prescriber)
    version = seeded["intravenous"]
    admin = actor_for(members["clinic_admin"])
    with scope(organization=org_a):
        signature = services.consent_sign(
            actor=prescriber,
            patient=patient,
            template_version=version,
            witness=prescriber.user,
            signature=sig_input(patient, version),
        )
        row = next(r for r in selectors.consent_rows(patient) if r.template.route == "intravenous")
        assert row.state == "valid"
        services.consent_template_update(
            actor=admin, template=version.template, data={"body": "New text."}
        )
        services.consent_template_publish(actor=admin, template=version.template)
        row = next(r for r in selectors.consent_rows(patient) if r.template.route == "intravenous")
        assert row.state == "outdated"
        assert row.needs_signature
        with pytest.raises(Conflict):  # the old version can no longer be signed
            services.consent_sign(
                actor=prescriber,
                patient=patient,
                template_version=version,
                witness=prescriber.user,
                signature=sig_input(patient, version),
            )
        with pytest.raises(ValidationFailed):
            services.consent_revoke(actor=prescriber, signature=signature, reason="")
        services.consent_revoke(actor=prescriber, signature=signature, reason="Patient withdrew.")
        with pytest.raises(Conflict):
            services.consent_revoke(actor=prescriber, signature=signature, reason="again")
    with scopes_disabled():
        event = AuditEvent.objects.get(action="consent.revoked")
    assert event.detail["version"] == 1
    assert event.detail["content_hash"] == version.content_hash


def test_outsider_gets_404_for_consent_pdf_and_signing(seeded, prescriber, outsider, org_a):
    patient = make_patient(prescriber)
    version = seeded["intravenous"]
    with scope(organization=org_a):
        signature = services.consent_sign(
            actor=prescriber,
            patient=patient,
            template_version=version,
            witness=prescriber.user,
            signature=sig_input(patient, version),
        )
    client = staff_client(outsider)
    assert client.get(f"/consent/signatures/{signature.public_id}/pdf/").status_code == 404
    assert (
        client.get(f"/consent/patients/{patient.public_id}/sign/{version.public_id}/").status_code
        == 404
    )
    assert (
        client.post(
            f"/consent/signatures/{signature.public_id}/revoke/", {"reason": "x"}
        ).status_code
        == 404
    )


def test_chart_consent_section_and_tablet_signing(seeded, prescriber, members, org_a):
    patient = make_patient(prescriber)
    version = seeded["intramuscular"]
    client = staff_client(members["front_desk"])
    page = client.get(f"/patients/{patient.public_id}/consent/")
    assert page.status_code == 200
    assert b"Consent to intramuscular ketamine treatment" in page.content
    url = f"/consent/patients/{patient.public_id}/sign/{version.public_id}/"
    data = {f"ack_{a['key']}": "on" for a in version.acknowledgements}
    data.update(printed_name="ada  lovelace", witnessed="on")
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    with scopes_disabled():
        signature = ConsentSignature.objects.get()
    assert signature.channel == "clinic"
    assert signature.witness == members["front_desk"].user


def portal_patient(prescriber: Any) -> tuple[Any, Client]:
    patient = make_patient(prescriber, email="ada@example.org")
    with scope(organization=prescriber.organization):
        account, token = services.portal_invite(actor=prescriber, patient=patient)
    client = Client()
    page = client.get(f"/portal/invite/{token}/")
    assert page.status_code == 200
    assert account.user.username.encode() in page.content
    done = client.post(
        f"/portal/invite/{token}/",
        {"password": PATIENT_PASSWORD, "password_again": PATIENT_PASSWORD},
    )
    assert done.status_code == 302
    assert client.get(f"/portal/invite/{token}/").status_code == 410  # single use
    logged = client.post(
        "/portal/login/", {"username": account.user.username, "password": PATIENT_PASSWORD}
    )
    assert logged.status_code == 302
    return patient, client


def test_patient_signs_in_the_portal_and_can_revoke(seeded, prescriber, org_a):
    patient, client = portal_patient(prescriber)
    home = client.get("/portal/")
    assert home.status_code == 200
    version = seeded["sublingual_at_home"]
    assert f"/portal/consents/{version.public_id}/sign/".encode() in home.content
    data = {f"ack_{a['key']}": "on" for a in version.acknowledgements}
    data["printed_name"] = "Ada Lovelace"
    response = client.post(
        f"/portal/consents/{version.public_id}/sign/", data, HTTP_USER_AGENT="Phone/1"
    )
    assert response.status_code == 302
    with scopes_disabled():
        signature = ConsentSignature.objects.get()
        event = AuditEvent.objects.get(action="consent.signed")
    assert signature.channel == "portal"
    assert signature.witness is None
    assert signature.user_agent == "Phone/1"
    assert event.channel == "portal"
    assert client.get(f"/portal/consents/signed/{signature.public_id}/pdf/").status_code == 200
    assert client.post(f"/portal/consents/signed/{signature.public_id}/revoke/").status_code == 302
    signature.refresh_from_db()
    assert signature.revoked_at is not None


def test_a_portal_patient_sees_only_their_own_consents(seeded, prescriber, org_a):
    other = make_patient(prescriber, given_name="Grace", family_name="Hopper")
    version = seeded["intravenous"]
    with scope(organization=org_a):
        theirs = services.consent_sign(
            actor=prescriber,
            patient=other,
            template_version=version,
            witness=prescriber.user,
            signature=sig_input(other, version),
        )
    _, client = portal_patient(prescriber)
    assert client.get(f"/portal/consents/signed/{theirs.public_id}/pdf/").status_code == 404
    assert client.post(f"/portal/consents/signed/{theirs.public_id}/revoke/").status_code == 404
    # A portal login opens no staff page.
    assert client.get(f"/patients/{other.public_id}/").status_code == 302


def test_staff_cannot_use_the_portal_login(members):
    from conftest import PASSWORD

    response = Client().post(
        "/portal/login/", {"username": members["prescriber"].user.username, "password": PASSWORD}
    )
    assert response.status_code == 400


def test_template_admin_screens(members, org_a):
    client = staff_client(members["clinic_admin"])
    assert client.post("/consent/templates/").status_code == 302
    with scopes_disabled():
        template = ConsentTemplate.objects.get(route="intravenous")
    page = client.get(f"/consent/templates/{template.public_id}/")
    assert page.status_code == 200
    assert staff_client(members["nurse"]).get("/consent/templates/").status_code == 403


def _home_safety_text(version: Any) -> str:
    return next(a["text"] for a in version.acknowledgements if a["key"] == "home_safety")


def test_the_at_home_consent_names_the_clinics_emergency_number(
    org_a: Any, members: Any, seeded: dict[str, Any]
) -> None:
    # The shipped default (no clinic setting yet) is the US number.
    assert "call 911 in an emergency" in _home_safety_text(seeded["sublingual_at_home"])


def test_a_clinic_outside_the_us_gets_its_own_emergency_number(org_a: Any, members: Any) -> None:
    from ketaclinic.messaging.patient_pages import patient_pages_policy_publish

    admin = actor_for(members["clinic_admin"])
    with scope(organization=org_a):
        patient_pages_policy_publish(
            actor=admin, sign_in_links_allowed=False, crisis_line_number="116123",
            crisis_line_name="Samaritans", crisis_line_takes_texts=False, emergency_number="999",
        )  # fmt: skip
        versions = services.consent_templates_seed_defaults(organization=org_a, actor=admin)
    at_home = next(v for v in versions if v.template.route == "sublingual_at_home")
    text = _home_safety_text(at_home)
    assert "call 999 in an emergency" in text
    assert "911" not in text
