"""Issue 15: a patient signs in to the portal with a link e-mailed on request, where the clinic
allows it. The e-mail really goes to a local SMTP server; the link works once, for 15 minutes,
answers the same for any address, is limited per address and audited at every step."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import actor_for, audit_count, make_member, make_patient
from ketaclinic.consent import services as consent
from ketaclinic.consent import sign_in_links
from ketaclinic.consent.models import SignInLinkRequest
from ketaclinic.core.models import OneTimeLink
from ketaclinic.measures import services as measures
from ketaclinic.messaging import services as messaging
from ketaclinic.messaging.models import Message
from ketaclinic.messaging.patient_pages import patient_pages_policy_publish

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ADDRESS = "ada@example.org"
URL = re.compile(r"http://\S+/portal/sign-in/(\S+)/")


def allow_links(admin, allowed=True, **numbers):
    with scope(organization=admin.organization):
        messaging.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
        return patient_pages_policy_publish(
            actor=admin,
            sign_in_links_allowed=allowed,
            crisis_line_number=numbers.get("line", "988"),
            crisis_line_name="Suicide & Crisis Lifeline",
            crisis_line_takes_texts=True,
            emergency_number=numbers.get("emergency", "911"),
        )


@pytest.fixture(autouse=True)
def no_answer_floor(settings):
    """The answer's time floor is tested once, below; elsewhere it would only slow the tests."""
    settings.PORTAL_SIGN_IN_ANSWER_MS = 0


@pytest.fixture
def admin(members):
    return actor_for(members["clinic_admin"])


@pytest.fixture
def account(prescriber, admin):
    """Ada, with an activated portal account and e-mail on file; her clinic allows links."""
    allow_links(admin)
    patient = make_patient(prescriber, email=ADDRESS)
    with scope(organization=prescriber.organization):
        account, _ = consent.portal_invite(actor=prescriber, patient=patient)
    return account


def ask(client, address, capture):
    with capture(execute=True):
        return client.post("/portal/login/link/", {"link-email": address})


def link_paths(inbox, address=ADDRESS):
    """The sign-in path of each e-mail sent to `address`, oldest first."""
    paths = []
    for mail in inbox.to(address):
        found = URL.search(mail.get_content())
        assert found, mail.get_content()
        paths.append(f"/portal/sign-in/{found.group(1)}/")
    return paths


def link_path(inbox, address=ADDRESS):
    paths = link_paths(inbox, address)
    assert paths, "no e-mail arrived"
    return paths[-1]


def test_the_login_page_offers_links_only_where_a_clinic_allows_them(prescriber, admin):
    assert b"E-mail me a sign-in link" not in Client().get("/portal/login/").content
    allow_links(admin)
    page = Client().get("/portal/login/").content.decode()
    assert "E-mail me a sign-in link" in page
    assert "It works once, for 15 minutes." in page
    # A clinic that turns them off again publishes a new version; the option goes.
    allow_links(admin, allowed=False)
    assert b"E-mail me a sign-in link" not in Client().get("/portal/login/").content


def test_a_requested_link_arrives_by_email_and_signs_the_patient_in_once(
    account, smtp_inbox, django_capture_on_commit_callbacks
):
    client = Client()
    sent = ask(client, "Ada@Example.org ", django_capture_on_commit_callbacks)
    assert sent.status_code == 200
    assert b"Check your e-mail" in sent.content
    path = link_path(smtp_inbox)
    body = smtp_inbox.to(ADDRESS)[0].get_content()
    assert "works once" in body
    assert "ketamine" not in body.lower()  # minimum necessary on a lock screen
    # Opening the link (or a mail scanner prefetching it) does not use it.
    page = client.get(path)
    assert page.status_code == 200
    assert b"Sign in to your patient portal" in page.content
    assert b"Ada" not in page.content  # the link's holder is not yet known to be Ada
    signed_in = client.post(path)
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    # Single use: a second tap, in any browser, is refused and audited.
    again = Client().post(path)
    assert again.status_code == 410
    assert b"already been used" in again.content
    assert audit_count(action="portal.sign_in_link.requested", outcome="success") == 1
    assert audit_count(action="portal.sign_in_link.used", outcome="success") == 1
    assert audit_count(action="portal.sign_in_link.reused", outcome="denied") == 1
    # Only the hash is stored: the token appears nowhere in the link table or the outbox.
    token = path.split("/")[-2]
    with scopes_disabled():
        assert not OneTimeLink.objects.filter(token_hash__contains=token.split(":")[0]).exists()
        assert all(token not in f"{m.context}{m.sealed_secret}" for m in Message.objects.all())


def test_a_link_expires_after_15_minutes_and_the_expiry_is_audited(
    account, smtp_inbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(START, tick=False) as traveller:
        ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
        ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
        first, second = link_paths(smtp_inbox)
        traveller.shift(timedelta(minutes=14, seconds=59))
        assert Client().post(first).status_code == 302
        traveller.shift(timedelta(seconds=2))
        late = Client().post(second)
    assert late.status_code == 410
    assert b"expired" in late.content
    assert b"15 minutes" in late.content
    assert audit_count(action="portal.sign_in_link.expired", outcome="denied") == 1


def test_an_unknown_address_gets_the_same_answer_and_nothing_is_sent(
    account, smtp_inbox, django_capture_on_commit_callbacks
):
    known = ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
    unknown = ask(Client(), "nobody@example.org", django_capture_on_commit_callbacks)
    assert unknown.status_code == known.status_code == 200
    assert unknown.content == known.content
    assert len(smtp_inbox.messages) == 1
    assert smtp_inbox.to("nobody@example.org") == []
    assert (
        audit_count(
            action="portal.sign_in_link.requested",
            outcome="denied",
            detail__result="no portal account has this address",
        )
        == 1
    )
    # The address is never stored, only a hash of it.
    with scopes_disabled():
        stored = list(SignInLinkRequest.objects.values_list("address_hash", flat=True))
    assert sign_in_links.address_hash("NOBODY@example.org") in stored
    assert all("@" not in h for h in stored)


def test_a_clinic_that_does_not_offer_links_sends_none_and_answers_the_same(
    account, admin, smtp_inbox, django_capture_on_commit_callbacks
):
    known = ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
    path = link_path(smtp_inbox)
    allow_links(admin, allowed=False)
    refused = ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
    assert refused.content == known.content
    assert len(smtp_inbox.messages) == 1
    # A link sent before the clinic turned them off no longer signs anyone in.
    late = Client().post(path)
    assert late.status_code == 403
    assert b"does not offer sign-in links" in late.content
    assert audit_count(action="portal.sign_in_link.refused", outcome="denied") == 1


def test_a_link_opens_only_its_own_clinic_and_purpose(
    account, prescriber, org_b, smtp_inbox, django_capture_on_commit_callbacks
):
    # The same address at clinic B, which does not offer links: only clinic A's account gets one.
    other_admin = actor_for(make_member(org_b, "clinic_admin"))
    other_prescriber = actor_for(make_member(org_b, "prescriber"))
    with scope(organization=org_b):
        messaging.contact_policy_set(
            actor=other_admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
    patient_b = make_patient(other_prescriber, email=ADDRESS, given_name="Bea")
    with scope(organization=org_b):
        consent.portal_invite(actor=other_prescriber, patient=patient_b)
    before = len(smtp_inbox.messages)  # the invitation e-mail to clinic B's patient
    ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
    assert len(smtp_inbox.messages) == before + 1
    path = link_path(smtp_inbox)
    client = Client()
    assert b"Clinic A" in client.get(path).content
    client.post(path)
    assert b"Hello, Ada" in client.get("/portal/").content
    # A sign-in token is no questionnaire link, and a questionnaire link signs nobody in.
    token = path.split("/")[-2]
    assert Client().get(f"/portal/m/{token}/").status_code == 404
    with scope(organization=prescriber.organization):
        issued = measures.measure_link_create(
            actor=prescriber, patient=account.patient, instrument_id="phq9"
        )
    assert Client().post(f"/portal/sign-in/{issued.token}/").status_code == 404


def test_requests_are_limited_per_address(account, smtp_inbox, django_capture_on_commit_callbacks):
    with time_machine.travel(START, tick=False) as traveller:
        answers = [
            ask(Client(), address, django_capture_on_commit_callbacks).content
            for address in (ADDRESS, ADDRESS.upper(), ADDRESS, ADDRESS)
        ]
        assert len(set(answers)) == 1  # the refused fourth looks like the others
        assert len(smtp_inbox.to(ADDRESS)) == sign_in_links.RATE_LIMIT == 3
        assert audit_count(action="portal.sign_in_link.rate_limited", outcome="denied") == 1
        # Another address is not held back by Ada's.
        ask(Client(), "someone@example.org", django_capture_on_commit_callbacks)
        assert audit_count(action="portal.sign_in_link.rate_limited") == 1
        traveller.shift(sign_in_links.RATE_WINDOW + timedelta(seconds=1))
        ask(Client(), ADDRESS, django_capture_on_commit_callbacks)
    assert len(smtp_inbox.to(ADDRESS)) == 4


def test_a_typo_is_explained_next_to_the_field(account):
    page = Client().post("/portal/login/link/", {"link-email": "ada.example.org"})
    assert page.status_code == 400
    assert b"Enter your e-mail address" in page.content
    assert b'value="ada.example.org"' in page.content  # what was typed stays


def test_known_and_unknown_addresses_are_answered_no_sooner_than_the_floor(
    account, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_SIGN_IN_ANSWER_MS = 150
    for address in (ADDRESS, "nobody@example.org"):
        started = time.monotonic()
        assert ask(Client(), address, django_capture_on_commit_callbacks).status_code == 200
        assert time.monotonic() - started >= 0.15
