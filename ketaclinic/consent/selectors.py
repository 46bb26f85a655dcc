"""Consent reads. All run inside the organization's scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django_scopes import scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.consent.models import (
    ConsentSignature,
    ConsentTemplate,
    ConsentTemplateVersion,
    PortalAccount,
)
from ketaclinic.core import clock
from ketaclinic.core.errors import NotFound
from ketaclinic.patients.models import Patient


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def version_latest(template: ConsentTemplate) -> ConsentTemplateVersion | None:
    return template.versions.order_by("-version").first()


def templates_with_versions() -> list[tuple[ConsentTemplate, ConsentTemplateVersion | None]]:
    """Every template with its current (latest) version, in two queries."""
    templates = list(
        ConsentTemplate.objects.prefetch_related(
            # django-stubs 5.2.9 cannot infer a Prefetch's lookup from a string literal.
            Prefetch("versions", queryset=ConsentTemplateVersion.objects.order_by("-version"))  # type: ignore[arg-type]
        )
    )
    return [(t, next(iter(t.versions.all()), None)) for t in templates]


def template_get(actor: Actor, public_id: object) -> ConsentTemplate:
    actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    key = _uuid(public_id)
    template = ConsentTemplate.objects.filter(public_id=key).first() if key else None
    if template is None:
        raise NotFound("No such consent template.")
    return template


def version_get(public_id: object) -> ConsentTemplateVersion:
    key = _uuid(public_id)
    version = (
        ConsentTemplateVersion.objects.select_related("template").filter(public_id=key).first()
        if key
        else None
    )
    if version is None:
        raise NotFound("No such consent form.")
    return version


def signature_get(public_id: object, *, patient: Patient | None = None) -> ConsentSignature:
    key = _uuid(public_id)
    if key is None:
        raise NotFound("No such consent.")
    signatures = ConsentSignature.objects.select_related(
        "template_version", "patient", "witness", "signed_by"
    ).filter(public_id=key)
    if patient is not None:
        signatures = signatures.filter(patient=patient)
    signature = signatures.first()
    if signature is None:
        raise NotFound("No such consent.")
    return signature


def signatures_for_patient(patient: Patient) -> list[ConsentSignature]:
    return list(
        ConsentSignature.objects.filter(patient=patient)
        .select_related("template_version", "witness", "revoked_by")
        .defer("pdf", "drawn_signature")
        .order_by("-signed_at", "-pk")
    )


@dataclass(frozen=True)
class ConsentRow:
    """One template as the patient stands with it: current version and latest signature."""

    template: ConsentTemplate
    current: ConsentTemplateVersion | None
    signature: ConsentSignature | None

    @property
    def state(self) -> str:
        if self.current is None:
            return "unpublished"
        if self.signature is None:
            return "unsigned"
        if self.signature.is_revoked:
            return "revoked"
        if self.signature.template_version_id != self.current.pk:
            return "outdated"
        return "valid"

    @property
    def needs_signature(self) -> bool:
        return self.current is not None and self.state in ("unsigned", "revoked", "outdated")


def consent_rows(patient: Patient) -> list[ConsentRow]:
    """Every active template with the patient's latest signature of it (three queries)."""
    signatures = signatures_for_patient(patient)
    latest: dict[int, ConsentSignature] = {}
    for signature in signatures:
        latest.setdefault(signature.template_version.template_id, signature)
    return [
        ConsentRow(template, current, latest.get(template.pk))
        for template, current in templates_with_versions()
        if template.is_active
    ]


def portal_account_for_patient(patient: Patient) -> PortalAccount | None:
    return PortalAccount.objects.filter(patient=patient).select_related("user").first()


def portal_username_for_login(typed: str) -> str:
    """A patient logs in with the e-mail their clinic has for them or their username: an e-mail
    that names exactly one active portal account stands for its username."""
    typed = (typed or "").strip()
    if "@" not in typed:
        return typed
    with scopes_disabled():
        usernames = list(
            PortalAccount.objects.filter(user__email__iexact=typed, is_active=True).values_list(
                "user__username", flat=True
            )[:2]
        )
    return usernames[0] if len(usernames) == 1 else typed


def portal_username_for(given_name: str, family_name: str) -> str:
    """A username a patient can read and type: "iris.murdoch", "iris.murdoch2", ..."""
    from django.utils.text import slugify

    from ketaclinic.accounts.models import User

    base = ".".join(p for p in (slugify(given_name), slugify(family_name)) if p) or "patient"
    base = base.replace("-", "")[:30]
    taken = set(User.objects.filter(username__startswith=base).values_list("username", flat=True))
    if base not in taken:
        return base
    return next(f"{base}{n}" for n in range(2, len(taken) + 3) if f"{base}{n}" not in taken)


def withdrawals_recent(*, days: int = 14) -> QuerySet[ConsentSignature]:
    """Consents the patient withdrew in the portal recently (prescriber's Today page)."""
    from datetime import timedelta

    return (
        ConsentSignature.objects.filter(
            revoked_at__gte=clock.now() - timedelta(days=days),
            revoked_by__in=PortalAccount.objects.values("user"),
        )
        .select_related("patient", "template_version")
        .order_by("-revoked_at")
    )


def consents_to_sign(wanted: dict[int, set[tuple[str, str]]]) -> dict[int, list[ConsentRow]]:
    """Per patient key, the consents their visits today need and they have not validly signed
    (role homes: forms pending). `wanted` maps a patient key to (kind, route) pairs: a treatment
    route's consent for a dosing visit, ("kap", "") for a therapy visit. In-clinic or any-setting
    templates only. Three queries whatever the number of patients."""
    if not wanted:
        return {}
    templates = [
        (template, current)
        for template, current in templates_with_versions()
        if template.is_active
        and current is not None
        and template.setting in (ConsentTemplate.Setting.CLINIC, ConsentTemplate.Setting.ANY)
    ]
    latest: dict[tuple[int, int], ConsentSignature] = {}
    signatures = (
        ConsentSignature.objects.filter(patient_id__in=list(wanted))
        .select_related("template_version")
        .defer("pdf", "drawn_signature")
        .order_by("-signed_at", "-pk")
    )
    for signature in signatures:
        latest.setdefault((signature.patient_id, signature.template_version.template_id), signature)
    found: dict[int, list[ConsentRow]] = {}
    for patient_id, needs in wanted.items():
        rows = [
            ConsentRow(template, current, latest.get((patient_id, template.pk)))
            for template, current in templates
            if (template.kind, template.route) in needs
        ]
        found[patient_id] = [row for row in rows if row.needs_signature]
    return found


def portal_accounts_for(patient_ids: list[int]) -> dict[int, PortalAccount]:
    """The patients' portal accounts by patient key (one query)."""
    accounts = PortalAccount.objects.filter(patient_id__in=patient_ids, is_active=True)
    return {account.patient_id: account for account in accounts}
