"""One audit event for every request that reads or is refused patient data, on every interface.

Each route records its own, precise event (a chart read, a search, a denied patient lookup). This
middleware is the net under them: a request by a staff member or a token that wrote no audit
event at all gets one generic event here, so a route added without its audit call still leaves
exactly one trace:

- 404 (any method): `phi.lookup_denied` (denied): an id the organization does not have;
- 401/403: `phi.access_denied` (denied);
- a GET or HEAD answered 2xx/3xx: `phi.read` (success).

A refused write (400, 409, 422: bad input, a safety stop) shows no one's record and writes
nothing, not even an audit row (the house rule); the write itself is audited by its service.

Every path is patient data unless `NOT_PHI` below says why it is not. tests/test_phi_audit_routes.py
enumerates every route of the URL resolver, the JSON API and FHIR and holds each PHI route to
exactly one event per request, allowed or denied; tests/test_route_ids.py holds denied lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from ketaclinic.accounts.audit import audit_record, events_in_request, refusals_kept

# Paths that hold no patient data, each with its reason. Anything else an authenticated staff
# member or token reaches is patient data (the safe default: a new route is audited).
NOT_PHI: dict[str, str] = {
    r"/static/": "static files",
    r"/healthz$": "the load balancer's probe",
    r"/accounts/": "login, logout and one's own API tokens (token changes are audited)",
    r"/audit/": "the audit trail itself: its screens record their own audit.read events",
    r"/portal/": "the patient's own record, seen by that patient (no staff actor)",
    r"/c/": "the clinic's public front door (no login)",
    r"/setup/": "staff, clinics, chairs and products of the clinic",
    r"/inventory/": "controlled-substance stock: its ledger is its own audit trail",
    r"/protocols/(?!plans/)": "protocol templates and the safety policy (no patient)",
    r"/consent/templates": "the clinic's consent documents",
    r"/screening/policy": "the clinic's screening thresholds",
    r"/messaging/policy": "the clinic's contact defaults",
    r"/calendar/feed/": "the calendar feed's own settings and its token-signed .ics",
    r"/outcomes/$": "clinic aggregates only, never a named patient",
    r"/outcomes/exports/": "de-identified research exports, accounted as disclosures",
    r"/outcomes/summaries/": "rewriting the dashboard's summaries: a job's progress, no patient",
    r"/admin/(?!patients/)": "clinics, memberships, role changes, stock (no patient)",
    r"/admin/$": "the admin's index (model names only)",
    r"/api/v1/inventory/": "controlled-substance stock; the ledger is its own audit trail",
    r"/api/v1/consent/(templates|versions)": "the clinic's consent documents",
    r"/api/v1/setup/": "staff, clinics, chairs, products",
    r"/api/v1/audit-events": "the audit trail itself (its routes record audit.read)",
    r"/api/v1/tokens": "API tokens (changes are audited by their service)",
    r"/api/v1/research/": "de-identified exports, accounted as disclosures",
    r"/api/v1/outcomes/(dashboard|durability|survival)": "clinic aggregates only",
    r"/api/v1/outcomes/recomputes": "rewriting the dashboard's summaries: progress, no patient",
    r"/api/v1/(openapi\.json|docs)": "the API's own description",
    r"/fhir/r4/metadata": "the CapabilityStatement",
}
_NOT_PHI = re.compile("|".join(f"(?:{pattern})" for pattern in NOT_PHI))
_PATIENT_IN_PATH = re.compile(
    r"/patients?/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


def is_phi_path(path: str) -> bool:
    return _NOT_PHI.match(path) is None


class PhiAuditMiddleware:
    """After TenantMiddleware (it needs `request.actor` and the organization's scope)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = events_in_request.set(0)
        try:
            with refusals_kept():
                response = self.get_response(request)
            actor = getattr(request, "actor", None)
            if actor is not None and is_phi_path(request.path) and events_in_request.get() == 0:
                self._record(request, response, actor)
            return response
        finally:
            events_in_request.reset(token)

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, actor: object) -> None:
        kind = phi_event_kind(request.method or "GET", response.status_code)
        if kind is None:
            return
        action, outcome = kind
        match = _PATIENT_IN_PATH.search(request.path)
        # One INSERT, atomic by itself: no transaction or savepoint around it.
        audit_record(
            actor=actor,  # type: ignore[arg-type]
            action=action,
            outcome=outcome,
            patient_id=match.group(1) if match and outcome == "success" else None,
            detail={
                "path": request.path[:200],
                "method": (request.method or "")[:10],
                "status": response.status_code,
                "query": request.META.get("QUERY_STRING", "")[:300],
            },
        )


def phi_event_kind(method: str, status: int) -> tuple[str, str] | None:
    """The generic event for a PHI request that recorded none; None when there is nothing to
    record (a refused or failed write shows no record and writes nothing)."""
    if status == 404:
        return "phi.lookup_denied", "denied"
    if status in (401, 403):
        return "phi.access_denied", "denied"
    if method in ("GET", "HEAD") and status < 400:
        return "phi.read", "success"
    return None
