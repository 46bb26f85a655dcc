"""The treatment gate: may this patient be treated by this route, in this setting, now?

Sessions (create, schedule, start), treatment plans and the eligibility-check endpoints call it.
Two conditions, both required:

1. a current screening decision for the route, decided `eligible` by a prescriber (possibly as
   a justified override), not past its valid-until date, and not invalidated by a change of the
   chart since (compared at gate time: the stored inputs fingerprint and chart rows against the
   chart now);
2. a valid consent for the route and setting: signed, not revoked, of the template's current
   version.

`treatment_gate_check` reads and reports; `treatment_gate_require` raises `SafetyStop` naming
every missing piece in plain language, each also as a FieldError ("route", "screening" or
"consent") so UI, JSON API and FHIR can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketaclinic.core.errors import FieldError, SafetyStop
from ketaclinic.screening.models import ROUTE_LABELS
from ketaclinic.screening.policy import Route

SETTINGS = ("clinic", "home")


@dataclass(frozen=True)
class GateStatus:
    ok: bool
    missing: list[str]
    errors: list[FieldError] = field(default_factory=list)
    decision: Any = None  # the ScreeningDecision relied on, when there is one
    signature: Any = None  # the ConsentSignature relied on, when there is one


def screening_route_for(drug: str, route: str, setting: str) -> Route | None:
    """Map a protocol's (drug, route, setting) (ketaclinic.protocols.catalog values) to the
    screening Route that must be eligible; None when no screening route covers the combination
    (e.g. intravenous at home), which the gate refuses."""
    drug, route, setting = str(drug), str(route), str(setting)
    if drug == "esketamine":
        return Route.INTRANASAL_ESKETAMINE if (route, setting) == ("intranasal", "clinic") else None
    if drug != "racemic-ketamine":
        return None
    if setting == "home":
        return Route.SUBLINGUAL_AT_HOME if route in ("sublingual", "oral") else None
    if setting != "clinic":
        return None
    return {
        "intravenous": Route.INTRAVENOUS,
        "intramuscular": Route.INTRAMUSCULAR,
        "sublingual": Route.SUBLINGUAL_ORAL_IN_CLINIC,
        "oral": Route.SUBLINGUAL_ORAL_IN_CLINIC,
    }.get(route)


def _label(route: str) -> str:
    return ROUTE_LABELS.get(route, route)


def _screening_reasons(patient: Any, route: str, at: datetime) -> tuple[list[str], Any]:
    from ketaclinic.screening import selectors

    label = _label(route)
    decision = selectors.decision_latest_for_route(patient, route)
    if decision is None:
        return [
            f"No screening decision for {label}: screen the patient and have a prescriber decide."
        ], None
    if decision.status != decision.Status.DECIDED:
        return [f"The screening for {label} awaits a prescriber's decision."], decision
    if decision.final_decision != "eligible":
        why = decision.justification or "; ".join(
            f["reason"] for f in decision.findings if f["severity"] == "absolute"
        )
        return [f"{label} is ineligible for this patient" + (f": {why}" if why else ".")], decision
    as_of = selectors.local_date(patient.organization, at)
    if decision.valid_until < as_of:
        return [
            f"The screening decision for {label} expired on "
            f"{decision.valid_until.isoformat()}: screen the patient again."
        ], decision
    snapshot = selectors.screening_snapshot(patient, as_of=as_of)
    changes = selectors.evaluation_changes(decision.evaluation, snapshot, route=route, as_of=as_of)
    if changes:
        return [
            f"The screening decision for {label} no longer applies because "
            + "; ".join(changes)
            + ": screen the patient again."
        ], decision
    return [], decision


def _consent_reasons(patient: Any, route: str, setting: str) -> tuple[list[str], Any]:
    from ketaclinic.consent.models import ConsentSignature, ConsentTemplate

    label = _label(route)
    template = (
        ConsentTemplate.objects.filter(
            kind="treatment", route=route, setting=setting, is_active=True
        )
        .prefetch_related("versions")
        .first()
    )
    current = (
        max(template.versions.all(), key=lambda v: v.version, default=None) if template else None
    )
    if current is None:
        return [f"No consent form for {label} is published: a clinic admin must publish one."], None
    signatures = list(
        ConsentSignature.objects.filter(patient=patient, kind="treatment")
        .select_related("template_version")
        .defer("pdf", "drawn_signature")
        .order_by("-signed_at", "-pk")
    )
    for_route = [s for s in signatures if s.route == route and s.setting == setting]
    if not for_route:
        others = sorted({_label(s.route) for s in signatures if s.revoked_at is None})
        if others:
            return [
                f"No signed consent for {label}: the consent on file is for "
                + ", ".join(others)
                + "."
            ], None
        return [f"No signed consent for {label}."], None
    latest = for_route[0]
    if latest.revoked_at is not None:
        return [f"The consent for {label} was revoked on {latest.revoked_at:%Y-%m-%d}."], latest
    if latest.template_version_id != current.pk:
        return [
            f"The consent for {label} was signed for version "
            f"{latest.template_version.version}; version {current.version} is current, "
            "so the patient must consent again."
        ], latest
    return [], latest


def treatment_gate_check(*, patient: Any, route: str, setting: str, at: datetime) -> GateStatus:
    """Everything that stands between this patient and a treatment by `route` in `setting`."""
    route, setting = str(route), str(setting)
    try:
        route_enum = Route(route)
    except ValueError:
        message = f"Unknown treatment route {route!r}."
        return GateStatus(False, [message], [FieldError("route", message)])
    if setting not in SETTINGS:
        message = f"Unknown setting {setting!r}: choose clinic or home."
        return GateStatus(False, [message], [FieldError("setting", message)])
    expected = "home" if route_enum.is_at_home else "clinic"
    if setting != expected:
        message = f"{_label(route)} is given {'at home' if expected == 'home' else 'in clinic'}."
        return GateStatus(False, [message], [FieldError("setting", message)])
    screening, decision = _screening_reasons(patient, route, at)
    consent, signature = _consent_reasons(patient, route, setting)
    errors = [FieldError("screening", m) for m in screening]
    errors += [FieldError("consent", m) for m in consent]
    missing = screening + consent
    return GateStatus(not missing, missing, errors, decision, signature)


def treatment_gate_require(*, patient: Any, route: str, setting: str, at: datetime) -> None:
    """Raise SafetyStop, saying exactly what is missing, unless treatment may go ahead."""
    status = treatment_gate_check(patient=patient, route=route, setting=setting, at=at)
    if not status.ok:
        raise SafetyStop(
            f"Treatment by {_label(str(route))} cannot go ahead: " + " ".join(status.missing),
            status.errors,
        )
