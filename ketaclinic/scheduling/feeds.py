"""A clinician's calendar feed (ICS): a secret URL a calendar app subscribes to, revocable.

Minimum necessary: events name the visit type and chair, never the patient, since subscribed
calendars sync to phones and third-party servers; staff see names in ketaclinic.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django_scopes import scope, scopes_disabled
from icalendar import Calendar, Event

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import NotFound
from ketaclinic.scheduling.ics import PRODID
from ketaclinic.scheduling.models import Appointment, CalendarFeed

PAST = timedelta(days=7)
AHEAD = timedelta(days=90)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_feed_issue(*, actor: Actor) -> str:
    """A new feed token for the acting clinician (shown once); any earlier feed stops working."""
    actor.require(Cap.SCHEDULE_VIEW)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        CalendarFeed.objects.filter(membership=actor.membership, revoked_at__isnull=True).update(
            revoked_at=now
        )
        feed = CalendarFeed.objects.create(
            organization=actor.organization, membership=actor.membership, token_hash=_hash(token)
        )
        audit_record(actor=actor, action="scheduling.feed.issued", obj=feed)
    return token


def calendar_feed_revoke(*, actor: Actor) -> int:
    actor.require(Cap.SCHEDULE_VIEW)
    with transaction.atomic():
        count = CalendarFeed.objects.filter(
            membership=actor.membership, revoked_at__isnull=True
        ).update(revoked_at=clock.now())
        audit_record(actor=actor, action="scheduling.feed.revoked", detail={"feeds": count})
    return count


def calendar_feed_ics(token: str) -> str:
    """The feed's calendar, or NotFound for an unknown or revoked token."""
    with scopes_disabled():
        feed = (
            CalendarFeed.objects.select_related("organization", "membership")
            .filter(token_hash=_hash(token), revoked_at__isnull=True)
            .first()
        )
    if feed is None:
        raise NotFound("No such calendar feed.")
    now = clock.now()
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "ketaclinic")
    with scope(organization=feed.organization):
        visits = (
            Appointment.objects.filter(
                clinician=feed.membership,
                status__in=Appointment.HOLDING,
                starts_at__gte=now - PAST,
                starts_at__lte=now + AHEAD,
            )
            .select_related("appointment_type", "chair", "clinic")
            .order_by("starts_at")
        )
        for visit in visits:
            event = Event()
            event.add("uid", f"{visit.public_id}@ketaclinic")
            event.add("dtstamp", now)
            event.add("dtstart", visit.starts_at)
            event.add("dtend", visit.ends_at)
            where = visit.chair.label if visit.chair else visit.clinic.name
            event.add("summary", f"{visit.appointment_type.name} ({where})")
            calendar.add_component(event)
    return calendar.to_ical().decode()
