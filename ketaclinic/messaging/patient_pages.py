"""The clinic's patient-pages policy: e-mailed sign-in links on or off, and the crisis numbers.

Read with `patient_pages_policy(organization)` (the newest version, or the shipped defaults as an
unsaved version 0); change with `patient_pages_policy_publish`, which checks the numbers, writes a
new version and records one audit event naming what changed.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import FieldError, ValidationFailed
from ketaclinic.messaging import crisis
from ketaclinic.messaging.models import PatientPagesPolicy

# The fields a publish sets, with their model names (the form and the JSON API use the same).
FIELDS = (
    "sign_in_links_allowed",
    "crisis_line_number",
    "crisis_line_name",
    "crisis_line_name_es",
    "crisis_line_takes_texts",
    "emergency_number",
)
_CRISIS_FIELD = {
    "line_number": "crisis_line_number",
    "line_name": "crisis_line_name",
    "line_name_es": "crisis_line_name_es",
    "emergency_number": "emergency_number",
}


def patient_pages_policy(organization: Organization) -> PatientPagesPolicy:
    """The newest published version, or the defaults (off, US numbers) as unsaved version 0."""
    with scope(organization=organization):
        policy = (
            PatientPagesPolicy.objects.filter(organization=organization)
            .order_by("-version")
            .first()
        )
    return policy or PatientPagesPolicy(organization=organization, version=0)


def sign_in_links_offered() -> bool:
    """Whether any clinic on this installation offers e-mailed sign-in links (the portal's login
    page names no clinic until the patient is known). One query."""
    with scopes_disabled():
        newest = (
            PatientPagesPolicy.objects.filter(organization=OuterRef("organization"))
            .order_by("-version")
            .values("pk")[:1]
        )
        return PatientPagesPolicy.objects.filter(
            pk=Subquery(newest), sign_in_links_allowed=True
        ).exists()


def crisis_lines(organization: Organization | None) -> crisis.CrisisLines:
    if organization is None:
        return crisis.US_DEFAULTS
    return patient_pages_policy(organization).crisis_lines


def patient_pages_policy_publish(
    *,
    actor: Actor,
    sign_in_links_allowed: bool,
    crisis_line_number: str,
    crisis_line_name: str,
    crisis_line_takes_texts: bool,
    emergency_number: str,
    crisis_line_name_es: str = "",
    note: str = "",
) -> PatientPagesPolicy:
    actor.require(Cap.SETUP_MANAGE)
    lines = crisis.CrisisLines(
        line_number=crisis_line_number.strip(),
        line_name=crisis_line_name.strip(),
        line_name_es=crisis_line_name_es.strip(),
        line_takes_texts=crisis_line_takes_texts,
        emergency_number=emergency_number.strip(),
    )
    found = crisis.problems(lines)
    if found:
        errors = [FieldError(_CRISIS_FIELD[field], message) for field, message in found.items()]
        raise ValidationFailed(errors[0].message, errors)
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=actor.organization_id)
        previous = patient_pages_policy(actor.organization)
        policy = PatientPagesPolicy.objects.create(
            organization=actor.organization,
            version=previous.version + 1,
            sign_in_links_allowed=sign_in_links_allowed,
            crisis_line_number=lines.line_number,
            crisis_line_name=lines.line_name,
            crisis_line_name_es=lines.line_name_es,
            crisis_line_takes_texts=lines.line_takes_texts,
            emergency_number=lines.emergency_number,
            note=note.strip()[:2000],
            created_by=actor.user,
        )
        changed = [f for f in FIELDS if getattr(policy, f) != getattr(previous, f)]
        audit_record(
            actor=actor,
            action="messaging.patient_pages_policy.published",
            obj=policy,
            detail={
                "version": policy.version,
                "changed": changed,
                "sign_in_links_allowed": sign_in_links_allowed,
                "crisis_line_number": lines.line_number,
                "emergency_number": lines.emergency_number,
            },
        )
    return policy
