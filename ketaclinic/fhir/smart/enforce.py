"""The SMART scopes of a request's token, enforced on top of the membership's role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_scopes import scopes_disabled

from ketaclinic.accounts.services import token_hash
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.smart import scopes
from ketaclinic.fhir.smart.models import SmartGrant
from ketaclinic.fhir.smart.server import SMART_TOKEN_PREFIX


def granted_scope(request: HttpRequest) -> str | None:
    """The SMART scope of the request's bearer token; None for a classic API token."""
    # From META, as TenantMiddleware reads it: `request.headers` builds a dict of every header.
    authorization = str(request.META.get("HTTP_AUTHORIZATION", ""))
    secret = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    if not secret.startswith(SMART_TOKEN_PREFIX):
        return None
    with scopes_disabled():
        grant = SmartGrant.objects.filter(token__key_hash=token_hash(secret)).first()
    return grant.scope if grant is not None else ""


def interactions(request: HttpRequest, view_name: str, kwargs: dict[str, Any]) -> tuple[str, str]:
    """(resource type or '*', the letters of c r u d s the request needs)."""
    resource_type = kwargs.get("resource_type", "*")
    method = request.method or "GET"
    if view_name == "patient_everything":
        return "*", "rs"
    if view_name == "root":
        return "*", "cud"  # a transaction or batch may write any type
    if view_name == "search_post" or (
        method in ("GET", "HEAD") and view_name in ("type_level", "type_history", "system_history")
    ):
        return resource_type, "s"
    if method in ("GET", "HEAD"):
        return resource_type, "r"
    if method == "POST":
        return resource_type, "c"
    if method == "PUT":
        return resource_type, "cu" if not kwargs.get("resource_id") else "u"
    if method == "DELETE":
        return resource_type, "d"
    return resource_type, "r"


def enforce(request: HttpRequest, view_name: str, kwargs: dict[str, Any]) -> None:
    granted = granted_scope(request)
    if granted is None:
        return
    resource_type, needed = interactions(request, view_name, kwargs)
    missing = [p for p in needed if not scopes.permits(granted, resource_type, p)]
    if missing:
        raise FhirError(
            403,
            f"The token's scopes ({granted or 'none'}) do not allow this request on "
            f"{resource_type if resource_type != '*' else 'every type'} (it needs "
            f"{''.join(missing)}).",
        )
