"""The kinds of message the clinic sends, and what each may say.

Minimum necessary: no diagnosis, drug, instrument or score in any message, since e-mail and SMS
are read on lock screens and shared devices. A patient message names the clinic and what to do;
a staff message says that something needs attention and links into ketaclinic, where the login
shows the rest. Texts live in templates/messaging/kinds/<kind>.{subject,email,sms}.txt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MessageKind:
    id: str
    label: str  # what staff read on the patient's page
    to_staff: bool = False


KINDS = {
    kind.id: kind
    for kind in (
        MessageKind("measure_link", "Questionnaire link"),
        MessageKind("portal_invite", "Portal invitation (consent forms)"),
        MessageKind("portal_sign_in", "Portal sign-in link (asked for by the patient)"),
        MessageKind("appointment_confirmation", "Appointment confirmation"),
        MessageKind("appointment_reminder", "Appointment reminder"),
        MessageKind("appointment_cancelled", "Appointment cancellation"),
        MessageKind("alert_escalation", "Safety alert escalation", to_staff=True),
    )
}


def kind_label(kind_id: str) -> str:
    kind = KINDS.get(kind_id)
    return kind.label if kind else kind_id.replace("_", " ")
