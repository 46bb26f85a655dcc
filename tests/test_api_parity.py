"""API parity: every staff or portal screen that accepts POST (an action a person can take) has a
JSON API operation doing the same through the same service, so an integrator can do it too.

The test walks Django's URL resolver, finds every view that accepts POST, and requires each to
appear in exactly one table below:
- PARITY: the route's name -> the JSON API operation ("METHOD /api/v1/path" as in the OpenAPI
  schema at /api/v1/openapi.json) that does the same;
- NOT_AN_API_ACTION: deliberate exceptions, with the reason (a browser login, a patient's own
  portal page...);
- API_STILL_MISSING: known gaps, each a defect to close (add the operation, then move the row to
  PARITY).
A new POST screen without a row fails with the line to add.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "/api/v1"

# route name -> "METHOD /api/v1/path" of the JSON API operation with the same service.
PARITY: dict[str, str] = {
    # patients
    "patients:create": "POST /api/v1/patients",
    "patients:edit": "PATCH /api/v1/patients/{patient_id}",
    "patients:weight-add": "POST /api/v1/patients/{patient_id}/weights",
    "patients:height-add": "POST /api/v1/patients/{patient_id}/heights",
    "patients:condition-add": "POST /api/v1/patients/{patient_id}/conditions",
    "patients:medication-add": "POST /api/v1/patients/{patient_id}/medications",
    "patients:allergy-add": "POST /api/v1/patients/{patient_id}/allergies",
    "patients:bp-add": "POST /api/v1/patients/{patient_id}/blood-pressures",
    "patients:weight-entered-in-error": "DELETE /api/v1/weights/{entry_id}",
    "patients:height-entered-in-error": "DELETE /api/v1/heights/{entry_id}",
    "patients:vital-entered-in-error": "DELETE /api/v1/vitals/{entry_id}",
    # API tokens
    "accounts:token-create": "POST /api/v1/tokens",
    "accounts:token-revoke": "POST /api/v1/tokens/{token_id}/revoke",
    # break-glass access (patients.access)
    "patients:break-glass": "POST /api/v1/patients/{patient_id}/break-glass",
    "patients:break-glass-review": "POST /api/v1/break-glass/{access_id}/review",
    # measures
    "measures:response-new": "POST /api/v1/patients/{patient_id}/responses",
    "measures:link-new": "POST /api/v1/patients/{patient_id}/measure-links",
    "measures:link-resend": "POST /api/v1/measure-links/{link_id}/resend",
    "measures:alert-detail": "POST /api/v1/alerts/{alert_id}/acknowledge",
    "measures:schedule-new": "POST /api/v1/patients/{patient_id}/measure-schedules",
    # screening
    "screening:intake": "POST /api/v1/patients/{patient_id}/intake",
    "screening:evaluate": "POST /api/v1/patients/{patient_id}/screening",
    "screening:eligibility-check": "POST /api/v1/patients/{patient_id}/treatment-eligibility-check",
    "screening:decide": "POST /api/v1/screening-decisions/{decision_id}/decide",
    "screening:policy-edit": "POST /api/v1/screening/policy",
    # consent
    "consent:templates": "POST /api/v1/consent/templates/defaults",
    "consent:template-edit": "POST /api/v1/consent/templates/{template_id}/publish",
    "consent:sign": "POST /api/v1/patients/{patient_id}/consents",
    "consent:portal-invite": "POST /api/v1/patients/{patient_id}/portal-invitations",
    "consent:revoke": "POST /api/v1/consents/{signature_id}/revoke",
    # sessions
    "sessions:schedule": "POST /api/v1/sessions",
    "sessions:check-in": "POST /api/v1/sessions/{session_id}/check-in",
    "sessions:precheck": "POST /api/v1/sessions/{session_id}/prechecks",
    "sessions:dose-order": "POST /api/v1/sessions/{session_id}/dose-orders",
    "sessions:administer": "POST /api/v1/sessions/{session_id}/administrations",
    "sessions:dose-complete": "POST /api/v1/sessions/{session_id}/dose-complete",
    "sessions:vitals-add": "POST /api/v1/sessions/{session_id}/vitals",
    "sessions:ae-add": "POST /api/v1/sessions/{session_id}/adverse-events",
    "sessions:discharge-check": "POST /api/v1/sessions/{session_id}/discharge-checks",
    "sessions:discharge": "POST /api/v1/sessions/{session_id}/discharge",
    "sessions:abort": "POST /api/v1/sessions/{session_id}/abort",
    "sessions:note-save": "PUT /api/v1/sessions/{session_id}/note",
    "sessions:note-sign": "POST /api/v1/sessions/{session_id}/note/sign",
    "sessions:note-amend": "POST /api/v1/sessions/{session_id}/note/amendments",
    "sessions:observation-add": "POST /api/v1/sessions/{session_id}/observations",
    "sessions:intervention-add": "POST /api/v1/sessions/{session_id}/interventions",
    "sessions:pmf-answers": "PATCH /api/v1/sessions/{session_id}/pmf",
    "sessions:pmf-submitted": "POST /api/v1/sessions/{session_id}/pmf/submitted",
    "sessions:rems-enroll": "POST /api/v1/rems-enrollments",
    "sessions:frequency-override": "POST /api/v1/sessions/{session_id}/frequency-override",
    # protocols
    "protocols:plan-create": "POST /api/v1/plans",
    # outcomes
    "outcomes:exports": "POST /api/v1/research/exports",
    "outcomes:summaries": "POST /api/v1/outcomes/recomputes",
    "outcomes:reports": "POST /api/v1/outcomes/reports",
    "protocols:catalog-seed": "POST /api/v1/protocols/catalog",
    "protocols:clone": "POST /api/v1/protocols/{protocol_id}/clone",
    "protocols:edit": "PATCH /api/v1/protocols/{protocol_id}",
    "protocols:publish": "POST /api/v1/protocols/{protocol_id}/publish",
    "protocols:safety-policy-edit": "POST /api/v1/safety-policy",
    "protocols:plan-phase": "POST /api/v1/plans/{plan_id}/phase",
    "protocols:plan-titrate": "POST /api/v1/plans/{plan_id}/titrations",
    "protocols:plan-extend": "POST /api/v1/plans/{plan_id}/extensions",
    # therapy
    "therapy:visit-new": "POST /api/v1/therapy/visits",
    "therapy:note-save": "PUT /api/v1/therapy/visits/{visit_id}/note",
    "therapy:note-amend": "POST /api/v1/therapy/visits/{visit_id}/amendments",
    "therapy:process-note": "PUT /api/v1/therapy/visits/{visit_id}/process-note",
    "therapy:break-glass": "POST /api/v1/therapy/visits/{visit_id}/process-note/break-glass",
    "therapy:risk-flag": "POST /api/v1/therapy/risk-flags",
    "therapy:assign": "POST /api/v1/therapy/assignments",
    "therapy:unassign": "POST /api/v1/therapy/assignments/{assignment_id}/end",
    "therapy:message-new": "POST /api/v1/therapy/messages",
    "therapy:message-read": "POST /api/v1/therapy/messages/{message_id}/read",
    "therapy:measure-new": "POST /api/v1/plans/{plan_id}/therapy-measures",
    "therapy:break-glass-review": "POST /api/v1/therapy/break-glass-reads/{read_id}/review",
    # setup
    "setup:clinic-add": "POST /api/v1/setup/clinics",
    "setup:clinic-edit": "PATCH /api/v1/setup/clinics/{clinic_id}",
    "setup:chair-add": "POST /api/v1/setup/chairs",
    "setup:chair-edit": "PATCH /api/v1/setup/chairs/{chair_id}",
    "setup:chair-active": "PATCH /api/v1/setup/chairs/{chair_id}",
    "setup:product-add": "POST /api/v1/setup/products",
    "setup:product-active": "PATCH /api/v1/setup/products/{product_id}",
    "setup:location-active": "PATCH /api/v1/setup/locations/{location_id}",
    "setup:location-add": "POST /api/v1/setup/locations",
    "setup:staff-add": "POST /api/v1/setup/staff",
    "setup:staff-role": "POST /api/v1/setup/staff/{user_id}/role",
    "setup:staff-deactivate": "POST /api/v1/setup/staff/{user_id}/deactivate",
    "setup:role-change-decide": "POST /api/v1/setup/role-changes/{change_id}/approve",
    "setup:escalation": "PUT /api/v1/setup/escalation",
    "setup:patient-pages": "PUT /api/v1/setup/patient-portal",
    # messaging
    "messaging:contact-set": "PUT /api/v1/patients/{patient_id}/contact/{channel}",
    "messaging:policy": "PUT /api/v1/messaging/policy",
    # scheduling
    "scheduling:book": "POST /api/v1/scheduling/appointments",
    "scheduling:check-in": "POST /api/v1/scheduling/appointments/{appointment_id}/check-in",
    "scheduling:move": "POST /api/v1/scheduling/appointments/{appointment_id}/reschedule",
    "scheduling:cancel": "POST /api/v1/scheduling/appointments/{appointment_id}/cancel",
    "scheduling:no-show": "POST /api/v1/scheduling/appointments/{appointment_id}/no-show",
    "scheduling:series-new": "POST /api/v1/scheduling/series",
    "scheduling:series": "POST /api/v1/scheduling/series/{series_id}/confirm",
    "scheduling:lead-convert": "POST /api/v1/scheduling/leads/{lead_id}/convert",
    "scheduling:feed-manage": "POST /api/v1/scheduling/calendar-feed",
    "scheduling:capacity": "POST /api/v1/scheduling/capacity",
    "scheduling:hours-edit": "PUT /api/v1/scheduling/hours",
    "scheduling:portal-policy": "PUT /api/v1/scheduling/portal-policy",
    "scheduling:type-edit": "PUT /api/v1/scheduling/types/{kind}",
    "scheduling:waitlist": "POST /api/v1/scheduling/waitlist",
    "scheduling:waitlist-book": "POST /api/v1/scheduling/waitlist/{entry_id}/book",
    "scheduling:waitlist-remove": "POST /api/v1/scheduling/waitlist/{entry_id}/remove",
    # inventory
    "inventory:receive": "POST /api/v1/inventory/receipts",
    "inventory:draw": "POST /api/v1/inventory/draws",
    "inventory:waste": "POST /api/v1/inventory/wastes",
    "inventory:transfer": "POST /api/v1/inventory/transfers",
    "inventory:return": "POST /api/v1/inventory/returns",
    "inventory:destroy": "POST /api/v1/inventory/destructions",
    "inventory:loss": "POST /api/v1/inventory/losses",
    "inventory:adjust": "POST /api/v1/inventory/adjustments",
    "inventory:dea-form": "POST /api/v1/inventory/dea-forms/{form_id}/filed",
    "inventory:count": "POST /api/v1/inventory/counts",
    "inventory:case-resolve": "POST /api/v1/inventory/cases/{case_id}/resolve",
}

# route name -> why it has (and needs) no JSON API operation.
NOT_AN_API_ACTION: dict[str, str] = {
    "accounts:login": "browser login (password + TOTP); the API authenticates with bearer tokens",
    "accounts:logout": "ends a browser session; API tokens are revoked through their own routes",
    "accounts:passkey-login-options": "browser login with a passkey (WebAuthn needs the browser)",
    "accounts:passkey-login-verify": "browser login with a passkey (WebAuthn needs the browser)",
    "accounts:passkey-options": "a passkey is a browser's second factor; tokens have none",
    "accounts:passkey-register": "a passkey is a browser's second factor; tokens have none",
    "accounts:passkey-remove": "a passkey is a browser's second factor; tokens have none",
    "smart-authorize": "a signed-in person lets a SMART app act as them (OAuth 2.0 consent in "
    "the browser); the app then uses the FHIR API with the token",
    "smart-token": "the OAuth 2.0 token endpoint: apps and backend services exchange a code or a "
    "signed assertion for a FHIR API token",
    "portal:login": "the patient's own browser login",
    "portal:appointment-move": "the patient moves their own visit; staff use "
    "POST /api/v1/scheduling/appointments/{appointment_id}/reschedule",
    "portal:appointment-book": "the patient books their own follow-up within the clinic's portal "
    "rules (GET /api/v1/scheduling/portal-policy); staff use POST /api/v1/scheduling/appointments",
    "portal:appointment-cancel": "the patient cancels their own visit; staff use "
    "POST /api/v1/scheduling/appointments/{appointment_id}/cancel",
    "front-door": "the public's consult request (no account, CSRF and honeypot); staff list and "
    "convert the requests through GET/POST /api/v1/scheduling/leads",
    "portal:logout": "ends the patient's browser session",
    "portal:sign-in-link-request": "the patient asks for a sign-in link for their own browser "
    "(no token exists for a patient); the clinic turns the links on with "
    "PUT /api/v1/setup/patient-portal",
    "portal:sign-in": "the patient signs their own browser in with an e-mailed one-time link",
    "portal:invite": "the patient sets a password from an emailed one-time link",
    "portal:measure": "the patient answers a one-time link; staff record answers with "
    "POST /api/v1/patients/{patient_id}/responses",
    "portal:intake": "the patient's own intake; staff record it with "
    "POST /api/v1/patients/{patient_id}/intake",
    "portal:consent-sign": "the patient signs in their own portal; staff record an in-clinic "
    "signature with POST /api/v1/patients/{patient_id}/consents",
    "portal:consent-revoke": "the patient withdraws in their own portal; staff record a "
    "withdrawal with POST /api/v1/consents/{signature_id}/revoke",
}

# route name -> what is missing. Each row is a defect: add the JSON API operation (same service),
# then move the row to PARITY.
API_STILL_MISSING: dict[str, str] = {}

SKIPPED_PREFIXES = ("api/", "fhir/", "admin/")  # the APIs themselves and Django's admin


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[Any]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else str(pattern.name)
            yield prefix + str(pattern.pattern), name, pattern.callback


def _declared_methods(view: Callable[..., Any]) -> list[str] | None:
    """Methods named by require_http_methods/require_POST on the view, if any."""
    current: Any = view
    while current is not None:
        for cell in getattr(current, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if (
                isinstance(value, list | tuple)
                and value
                and all(isinstance(v, str) and v.isupper() for v in value)
            ):
                return list(value)
        current = getattr(current, "__wrapped__", None)
    return None


def _reads_post(function: Callable[..., Any], seen: set[int] | None = None) -> bool:
    """The view, or a helper of its module it calls, reads request.POST or checks for POST."""
    seen = seen if seen is not None else set()
    function = inspect.unwrap(function)
    if id(function) in seen:
        return False
    seen.add(id(function))
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if re.search(r"request\.POST|[\"']POST[\"']", source):
        return True
    module = inspect.getmodule(function)
    for called in set(re.findall(r"\b(_?[a-z][a-z0-9_]*)\(", source)):
        helper = getattr(module, called, None)
        if inspect.isfunction(helper) and helper.__module__ == function.__module__:
            if _reads_post(helper, seen):
                return True
    return False


def accepts_post(view: Callable[..., Any]) -> bool:
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return hasattr(view_class, "post")
    methods = _declared_methods(view)
    if methods is not None:
        return "POST" in methods
    return _reads_post(view)


def ui_post_routes() -> dict[str, str]:
    """Route name -> URL pattern, for every non-API view that accepts POST."""
    found = {}
    for route, name, view in _walk(get_resolver()):
        if route.startswith(SKIPPED_PREFIXES):
            continue
        if accepts_post(view):
            found[name] = route
    return found


def api_operations() -> set[str]:
    from config.urls import api

    schema = api.get_openapi_schema()
    return {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
    }


def test_the_walk_finds_post_screens_and_skips_read_only_ones() -> None:
    routes = ui_post_routes()
    # Known shapes: a function view reading request.POST, one behind require_POST, one whose form
    # helper reads the POST body, and read-only pages that must not be listed.
    assert "patients:create" in routes
    assert "consent:revoke" in routes
    assert "inventory:transfer" in routes
    assert "patients:list" not in routes
    assert "consent:pdf" not in routes
    assert "audit:export" not in routes


def test_every_ui_post_route_has_a_json_api_counterpart() -> None:
    routes = ui_post_routes()
    tables = (PARITY, NOT_AN_API_ACTION, API_STILL_MISSING)
    unlisted = {name: route for name, route in routes.items() if not any(name in t for t in tables)}
    lines = [
        f'    "{name}": "POST {API_PREFIX}/...",  # /{route}'
        for name, route in sorted(unlisted.items())
    ]
    assert not unlisted, (
        "These screens accept POST but are not paired with a JSON API operation. Add the "
        "operation (same service, same rules) and a row to PARITY in tests/test_api_parity.py "
        "(the method and path exactly as in /api/v1/openapi.json):\n" + "\n".join(lines)
    )


def test_every_listed_route_exists_and_is_listed_once() -> None:
    routes = ui_post_routes()
    tables = {"PARITY": PARITY, "NOT_AN_API_ACTION": NOT_AN_API_ACTION}
    tables["API_STILL_MISSING"] = API_STILL_MISSING
    for table_name, table in tables.items():
        stale = sorted(set(table) - set(routes))
        assert not stale, f"{table_name} lists routes that no longer accept POST: {stale}"
    names = [name for table in tables.values() for name in table]
    doubles = sorted({n for n in names if names.count(n) > 1})
    assert not doubles, f"listed in more than one table: {doubles}"


def test_every_paired_operation_is_in_the_openapi_schema() -> None:
    operations = api_operations()
    missing = {name: op for name, op in PARITY.items() if op not in operations}
    assert not missing, (
        "PARITY names operations the JSON API does not have (check method and path against "
        f"/api/v1/openapi.json): {missing}"
    )
