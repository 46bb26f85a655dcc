"""Roles and what each may do: the one table that drives the UI, the JSON API, FHIR and admin.

Pure module: no Django. A capability is a dotted string; views and services ask
`role_can(role, capability)` and never test role names themselves.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PRESCRIBER = "prescriber"
    NURSE = "nurse"
    THERAPIST = "therapist"
    FRONT_DESK = "front_desk"
    CLINIC_ADMIN = "clinic_admin"
    COMPLIANCE = "compliance"
    RESEARCHER = "researcher"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.PRESCRIBER: "Prescriber",
    Role.NURSE: "Nurse / monitor",
    Role.THERAPIST: "Therapist",
    Role.FRONT_DESK: "Front desk",
    Role.CLINIC_ADMIN: "Clinic admin",
    Role.COMPLIANCE: "Compliance",
    Role.RESEARCHER: "Researcher",
}


class Cap(StrEnum):
    """Capabilities. Later modules add theirs here so the matrix stays in one place."""

    PATIENT_LIST = "patients.list"
    PATIENT_VIEW = "patients.view"  # the identified chart (demographics and clinical summary)
    PATIENT_CREATE = "patients.create"
    PATIENT_EDIT_DEMOGRAPHICS = "patients.demographics.edit"
    CLINICAL_VIEW = "clinical.view"  # conditions, medications, allergies, measurements
    CLINICAL_EDIT = "clinical.edit"  # conditions, medication history, allergies
    MEASUREMENT_RECORD = "clinical.measurement.record"  # weights, heights
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    ADMIN_ACCESS = "admin.access"
    API_TOKEN_OWN = "tokens.own"  # issue, list and revoke one's own API tokens
    API_TOKEN_MANAGE = "tokens.manage"  # the organization's tokens: list, revoke, issue for others
    RESEARCH_EXPORT = "research.export"
    MEASURE_VIEW = "measures.view"  # questionnaire responses, trajectories, outcomes, alerts
    MEASURE_RECORD = "measures.record"  # enter a measure, send a one-time link, schedules
    ALERT_ACKNOWLEDGE = "measures.alert.acknowledge"
    # Send an unanswered questionnaire link again (a fresh link; the old one stops working): the
    # front desk chases forms for today's arrivals without entering measures itself.
    MEASURE_LINK_RESEND = "measures.link.resend"
    MEASURE_POLICY_EDIT = "measures.policy.edit"  # alert thresholds, escalation time
    SCREENING_RECORD = "screening.record"  # intake history, run the eligibility rules
    SCREENING_DECIDE = "screening.decide"  # record the eligibility decision per route
    SCREENING_POLICY_EDIT = "screening.policy.edit"  # publish a screening policy version
    CONSENT_VIEW = "consent.view"  # consents on file, signed copies (PDF)
    CONSENT_RECORD = "consent.record"  # in-clinic signing, revocation, portal invitations
    CONSENT_WITNESS = "consent.witness"
    CONSENT_TEMPLATE_MANAGE = "consent.template.manage"  # author and publish consent texts
    PROTOCOL_MANAGE = "protocols.manage"  # clone, edit and publish protocol versions
    SAFETY_POLICY_EDIT = "sessions.policy.edit"  # publish a session safety policy version
    PLAN_PRESCRIBE = "protocols.plan.prescribe"  # treatment plans, titration, phase changes
    SESSION_VIEW = "sessions.view"  # session flowsheets, REMS forms
    SESSION_RUN = "sessions.run"  # schedule, check in, prechecks, vitals, AEs, discharge, notes
    DOSE_ORDER = "sessions.dose.order"  # sign a dose order; override the pre-dose BP gate
    DOSE_ADMINISTER = "sessions.dose.administer"
    FLOOR_VIEW = "sessions.floor.view"  # the clinic floor board
    INVENTORY_VIEW = "inventory.view"  # stock by location, the ledger
    INVENTORY_RECEIVE = "inventory.receive"  # receipts, transfers between locations
    INVENTORY_DRAW = "inventory.draw"  # draw, return and waste for an administration
    INVENTORY_WITNESS = "inventory.witness"  # witness a waste or destruction
    INVENTORY_COUNT = "inventory.count"  # shift/daily counts; destruction, loss and theft reports
    INVENTORY_ADJUST_APPROVE = "inventory.adjust.approve"  # approve adjustments, resolve cases
    INVENTORY_REPORT = "inventory.report"  # DEA logs, inventories, CSV and PDF
    # Ketamine-assisted psychotherapy (therapy app, issue 16)
    THERAPY_VIEW = "therapy.view"  # therapy visits and progress notes, the team, risk flags
    THERAPY_RECORD = "therapy.record"  # write and sign progress notes, flag risk
    THERAPY_TEAM_ASSIGN = "therapy.team.assign"  # put a therapist on a plan or a session
    THERAPY_PROCESS_NOTE = "therapy.process_note.write"  # own psychotherapy (process) notes
    THERAPY_BREAK_GLASS = "therapy.process_note.break_glass"  # read another's, audited
    TEAM_MESSAGE = "therapy.message"  # handoff messages between team members
    # Messaging and scheduling (issue 11).
    MESSAGE_VIEW = "messaging.view"  # messages sent to a patient and their delivery
    CONTACT_EDIT = "messaging.contact.edit"  # a patient's consent to contact per channel
    MESSAGING_POLICY_EDIT = "messaging.policy.edit"  # contact defaults, on-call addresses
    SCHEDULE_VIEW = "scheduling.view"  # calendars, appointments
    SCHEDULE_BOOK = "scheduling.book"  # book, move, cancel, no-show, waitlist, series
    SCHEDULE_MANAGE = "scheduling.manage"  # appointment types, hours, time off, ratio policy
    # outcomes (issue 17): aggregates only, never a patient's identified chart
    OUTCOMES_ANALYZE = "outcomes.analyze"  # dashboard, durability curves, ad-hoc survival stats
    OUTCOMES_REPORT = "outcomes.report"  # a patient's progress report (identified, as a PDF)
    BULK_EXPORT = "fhir.bulk.export"  # FHIR Bulk Data $export of identified records
    # Set-up (issue 10 item 4, issue 12 item 1): clinics, chairs, products, locations, on-call,
    # and staff accounts. Staff changes obey separation of duties (accounts.staffing).
    SETUP_MANAGE = "setup.manage"
    STAFF_MANAGE = "accounts.staff.manage"
    # Access outside one's assignment (issue 12 item 2): open a patient's chart one is not on the
    # care team of, with a reason and a time limit, reported to compliance.
    PATIENT_BREAK_GLASS = "patients.break_glass"
    CARE_TEAM_MANAGE = "patients.care_team.manage"  # put clinicians on a patient's care team
    BREAK_GLASS_REVIEW = "patients.break_glass.review"  # compliance reviews each access


_CLINICAL_READ = {Cap.PATIENT_LIST, Cap.PATIENT_VIEW, Cap.CLINICAL_VIEW}
# Messaging and scheduling (issue 11): everyone who sees patients at the desk or the chair books,
# sees what was sent and records consent to contact.
_DESK = {
    Cap.MESSAGE_VIEW,
    Cap.CONTACT_EDIT,
    Cap.SCHEDULE_VIEW,
    Cap.SCHEDULE_BOOK,
    Cap.MEASURE_LINK_RESEND,
}
# Clinicians who see the patient enter measures and answer safety alerts.
_MEASURES_CARE = {Cap.MEASURE_VIEW, Cap.MEASURE_RECORD, Cap.ALERT_ACKNOWLEDGE}
# Everyone who takes a patient through consent in clinic (and may witness it).
_CONSENT_DESK = {Cap.CONSENT_VIEW, Cap.CONSENT_RECORD, Cap.CONSENT_WITNESS}
# Nurses and prescribers run the monitored session at the chair.
_SESSION_CARE = {Cap.SESSION_VIEW, Cap.SESSION_RUN, Cap.DOSE_ADMINISTER, Cap.FLOOR_VIEW}
# Nurses and prescribers handle the controlled-substance stock at the chair and the safe.
# Therapy (issue 16): who reads the progress notes, who writes them, who messages the team.
_THERAPY_READ = {Cap.THERAPY_VIEW, Cap.TEAM_MESSAGE}
_THERAPY_WRITE = {Cap.THERAPY_RECORD, Cap.THERAPY_PROCESS_NOTE, Cap.THERAPY_BREAK_GLASS}
# The clinical roles kept to their care team when the organization asks for it; each may break
# the glass for a patient outside it.
CARE_TEAM_ROLES = frozenset({"prescriber", "nurse", "therapist"})
_INVENTORY_CARE = {
    Cap.INVENTORY_VIEW,
    Cap.INVENTORY_RECEIVE,
    Cap.INVENTORY_DRAW,
    Cap.INVENTORY_WITNESS,
    Cap.INVENTORY_COUNT,
}

# outcomes (issue 17): who may read clinic outcome aggregates, print progress reports, and take
# identified records out in bulk.
_OUTCOMES_AGGREGATES = {Cap.OUTCOMES_ANALYZE}
_OUTCOMES_CLINICIAN = {Cap.OUTCOMES_ANALYZE, Cap.OUTCOMES_REPORT}

CAPABILITIES: dict[Role, frozenset[Cap]] = {
    Role.PRESCRIBER: frozenset(
        _CLINICAL_READ
        | {
            Cap.PATIENT_CREATE,
            Cap.PATIENT_EDIT_DEMOGRAPHICS,
            Cap.CLINICAL_EDIT,
            Cap.MEASUREMENT_RECORD,
            Cap.API_TOKEN_OWN,
            Cap.SCREENING_RECORD,
            Cap.SCREENING_DECIDE,
            Cap.PROTOCOL_MANAGE,
            Cap.PLAN_PRESCRIBE,
            Cap.DOSE_ORDER,
            Cap.THERAPY_TEAM_ASSIGN,
            Cap.PATIENT_BREAK_GLASS,
            Cap.CARE_TEAM_MANAGE,
        }
        | _THERAPY_READ
        | _THERAPY_WRITE
        | _MEASURES_CARE
        | _CONSENT_DESK
        | _SESSION_CARE
        | _INVENTORY_CARE
        | _DESK
        | _OUTCOMES_CLINICIAN
    ),
    Role.NURSE: frozenset(
        _CLINICAL_READ
        | {
            Cap.PATIENT_EDIT_DEMOGRAPHICS,
            Cap.CLINICAL_EDIT,
            Cap.MEASUREMENT_RECORD,
            Cap.API_TOKEN_OWN,
            Cap.SCREENING_RECORD,
            Cap.PATIENT_BREAK_GLASS,
        }
        | _THERAPY_READ
        | _MEASURES_CARE
        | _CONSENT_DESK
        | _SESSION_CARE
        | _INVENTORY_CARE
        | _DESK
    ),
    Role.THERAPIST: frozenset(
        _CLINICAL_READ
        | _MEASURES_CARE
        | _THERAPY_READ
        | _THERAPY_WRITE
        | _DESK
        | {
            Cap.API_TOKEN_OWN,
            Cap.CONSENT_VIEW,
            Cap.SESSION_VIEW,
            Cap.FLOOR_VIEW,
            Cap.PATIENT_BREAK_GLASS,
        }
    ),
    # Front desk registers patients and keeps demographics current; no clinical record.
    Role.FRONT_DESK: frozenset(
        {Cap.PATIENT_LIST, Cap.PATIENT_VIEW, Cap.PATIENT_CREATE, Cap.PATIENT_EDIT_DEMOGRAPHICS}
        | _CONSENT_DESK
        | _DESK
    ),
    Role.CLINIC_ADMIN: frozenset(
        _DESK
        | {Cap.MESSAGING_POLICY_EDIT, Cap.SCHEDULE_MANAGE}
        | {
            Cap.PATIENT_LIST,
            Cap.PATIENT_VIEW,
            Cap.PATIENT_CREATE,
            Cap.PATIENT_EDIT_DEMOGRAPHICS,
            Cap.AUDIT_VIEW,
            Cap.ADMIN_ACCESS,
            Cap.API_TOKEN_OWN,
            Cap.MEASURE_POLICY_EDIT,
            Cap.SCREENING_POLICY_EDIT,
            Cap.CONSENT_VIEW,
            Cap.CONSENT_TEMPLATE_MANAGE,
            Cap.PROTOCOL_MANAGE,
            Cap.SAFETY_POLICY_EDIT,
            Cap.INVENTORY_VIEW,
            Cap.INVENTORY_REPORT,
            Cap.RESEARCH_EXPORT,
            # set-up
            Cap.SETUP_MANAGE,
            Cap.STAFF_MANAGE,
            Cap.API_TOKEN_MANAGE,
            Cap.CARE_TEAM_MANAGE,
        }
        | _OUTCOMES_AGGREGATES
    ),
    # Compliance reviews records and the audit trail; it changes nothing clinical.
    Role.COMPLIANCE: frozenset(
        _CLINICAL_READ
        | {
            Cap.AUDIT_VIEW,
            Cap.AUDIT_EXPORT,
            Cap.API_TOKEN_OWN,
            Cap.MEASURE_VIEW,
            Cap.CONSENT_VIEW,
            Cap.SESSION_VIEW,
            Cap.INVENTORY_VIEW,
            Cap.INVENTORY_WITNESS,
            Cap.INVENTORY_COUNT,
            Cap.INVENTORY_ADJUST_APPROVE,
            Cap.INVENTORY_REPORT,
            Cap.THERAPY_VIEW,
            Cap.THERAPY_BREAK_GLASS,
            Cap.TEAM_MESSAGE,
            # outcomes (issue 17): compliance reads every record type, so it may take them out
            # in bulk (FHIR $export); each export is logged as a disclosure.
            Cap.BULK_EXPORT,
            Cap.BREAK_GLASS_REVIEW,
        }
    ),
    # Researchers see de-identified aggregates only: no identified chart.
    Role.RESEARCHER: frozenset({Cap.RESEARCH_EXPORT, Cap.API_TOKEN_OWN} | _OUTCOMES_AGGREGATES),
}


# Roles whose grant needs a second clinic admin's approval (issue 12 item 1): they order doses,
# approve controlled-substance adjustments, or approve other grants.
PRIVILEGED_ROLES = frozenset({Role.PRESCRIBER, Role.COMPLIANCE, Role.CLINIC_ADMIN})


def role_can(role: str | Role, capability: str | Cap) -> bool:
    # Role and Cap are StrEnums: a plain string hashes and compares equal to its member, so the
    # table answers for either without building the enums (Role(...) and Cap(...) took about a
    # microsecond each, three times per JSON write: issue 13). An unknown value matches nothing.
    try:
        granted = CAPABILITIES.get(role)  # type: ignore[arg-type]  # a str is a Role's key
        return granted is not None and capability in granted
    except TypeError:  # unhashable: no role or capability at all
        return False


def capabilities_of(role: str | Role) -> frozenset[Cap]:
    try:
        return CAPABILITIES[Role(role)]
    except ValueError:
        return frozenset()
