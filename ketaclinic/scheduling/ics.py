"""The calendar file attached to confirmations and reminders (RFC 5545, built with icalendar).

Minimum necessary: the event names the clinic, not the treatment, since calendars are shared and
synced to phones. The UID is stable per appointment so a moved visit updates the same event."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

PRODID = "-//ketaclinic//scheduling//EN"


def appointment_ics(
    *,
    uid: str,
    starts_at: datetime,
    ends_at: datetime,
    clinic_name: str,
    address: str,
    sequence: int,
    stamp: datetime,
    cancelled: bool = False,
) -> str:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", f"{uid}@ketaclinic")
    event.add("dtstamp", stamp)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", f"Appointment at {clinic_name}")
    if address:
        event.add("location", address.replace("\n", ", "))
    event.add("sequence", sequence)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical.decode()
