"""SMART endpoints: discovery at the FHIR base, the browser authorization page, the token
endpoint. Thin: authlib (smart/server.py) validates, the models keep codes and grants."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ketaclinic.fhir.smart import scopes
from ketaclinic.fhir.smart.server import build_server

LETTERS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def smart_configuration(request: HttpRequest) -> HttpResponse:
    """GET [base]/.well-known/smart-configuration (SMART App Launch 2.x, section 2.0.8)."""
    if request.method != "GET":
        return JsonResponse({"error": "Use GET."}, status=405)
    root = request.build_absolute_uri("/").rstrip("/")
    return JsonResponse(
        {
            "issuer": root,
            "authorization_endpoint": root + reverse("smart-authorize"),
            "token_endpoint": root + reverse("smart-token"),
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": list(scopes.SUPPORTED),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-public",
                "client-confidential-asymmetric",
                "permission-v2",
                "permission-v1",
                "permission-user",
            ],
        }
    )


def _describe(scope: str) -> list[str]:
    lines = []
    for grant in scopes.parse(scope):
        what = "every record type" if grant.resource_type == "*" else grant.resource_type
        verbs = ", ".join(LETTERS[p] for p in grant.permissions)
        lines.append(f"{verbs}: {what}")
    return lines


@never_cache
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """A signed-in staff member allows (or denies) a staff app: authorization code with PKCE."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    actor = getattr(request, "actor", None)
    if actor is None:
        return HttpResponse("Your account has no active membership.", status=403)
    server = build_server(request)
    membership = actor.membership
    try:
        grant = server.get_consent_grant(request, end_user=membership)
    except OAuth2Error as error:
        return HttpResponse(
            f"This app's request cannot be accepted: {error.error}"
            f"{' (' + error.description + ')' if error.description else ''}.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    client = grant.client
    if client.organization_id != membership.organization_id:
        return HttpResponse("This app is not registered with your organization.", status=403)
    requested = client.get_allowed_scope(grant.request.payload.scope or client.scope)
    if request.method == "GET":
        context: dict[str, Any] = {
            "client_name": client.name,
            "organization": membership.organization.name,
            "permissions": _describe(requested) or ["nothing"],
        }
        return render(request, "smart/authorize.html", context)
    allowed = request.POST.get("decision") == "allow"
    return server.create_authorization_response(
        request, grant_user=membership if allowed else None, grant=grant
    )


@csrf_exempt  # OAuth clients authenticate with PKCE or a signed assertion, not a cookie
@never_cache
@require_http_methods(["POST"])
def token(request: HttpRequest) -> HttpResponse:
    return build_server(request).create_token_response(request)
