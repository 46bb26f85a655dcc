"""One audit event for every request that reads or is refused patient data, on every interface.

Each route records its own, precise event (a chart read, a search, a denied patient lookup). This
middleware is the net under them: a request to a patient-data path that wrote no audit event at
all gets one generic event here, so a route added without its audit call still leaves a trace,
and a lookup of an id the organization does not have (404) is recorded as denied wherever the
lookup happened. tests/test_route_ids.py and tests/test_phi_audit.py hold every route to exactly
one event per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from ketaclinic.accounts.audit import audit_record, events_in_request

# Paths that carry patient data (UI, JSON API, FHIR)...
PHI_PREFIXES = ("/api/v1/", "/fhir/r4/", "/patients/", "/sessions/", "/floor/", "/screening/")
# ...except these, which hold none (each with its reason).
NOT_PHI_PREFIXES = (
    "/api/v1/inventory/",  # controlled-substance stock; the ledger is its own audit trail
    "/api/v1/consent/templates",  # the clinic's consent documents
    "/api/v1/consent/versions",
    "/api/v1/setup/",  # staff, clinics, chairs, products
    "/api/v1/audit-events",  # the audit trail itself
    "/api/v1/tokens",  # API tokens: no patient data (changes are audited by their service)
    "/api/v1/research/",  # de-identified exports, accounted as disclosures
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/fhir/r4/metadata",
    "/screening/policy",  # the clinic's screening thresholds
)
_PATIENT_IN_PATH = re.compile(
    r"/patients?/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


def is_phi_path(path: str) -> bool:
    return path.startswith(PHI_PREFIXES) and not path.startswith(NOT_PHI_PREFIXES)


class PhiAuditMiddleware:
    """After TenantMiddleware (it needs `request.actor` and the organization's scope)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = events_in_request.set(0)
        try:
            response = self.get_response(request)
            actor = getattr(request, "actor", None)
            if actor is not None and is_phi_path(request.path) and events_in_request.get() == 0:
                self._record(request, response, actor)
            return response
        finally:
            events_in_request.reset(token)

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, actor: object) -> None:
        status = response.status_code
        if status == 404:
            action, outcome = "phi.lookup_denied", "denied"
        elif request.method in ("GET", "HEAD") and status == 200:
            action, outcome = "phi.read", "success"
        else:
            return
        match = _PATIENT_IN_PATH.search(request.path)
        with transaction.atomic():
            audit_record(
                actor=actor,  # type: ignore[arg-type]
                action=action,
                outcome=outcome,
                patient_id=match.group(1) if match and outcome == "success" else None,  # type: ignore[arg-type]
                detail={
                    "path": request.path[:200],
                    "query": request.META.get("QUERY_STRING", "")[:300],
                },
            )
