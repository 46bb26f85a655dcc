"""The OAuth 2.0 authorization server (authlib): authorization code + PKCE (S256) for staff apps,
client credentials with a private_key_jwt assertion for backend services.

An issued access token is an ordinary API token (accounts.ApiToken, so every existing check -
expiry, revocation, the organization's scope - applies) with a SmartGrant beside it holding the
granted SMART scopes, which the FHIR views enforce on top of the membership's role.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, cast

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from django.db import IntegrityError, transaction
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import ApiToken
from ketaclinic.accounts.services import TOKEN_PREFIX, token_hash
from ketaclinic.core import clock
from ketaclinic.fhir.smart.models import (
    SmartAssertionUse,
    SmartAuthorizationCode,
    SmartClient,
    SmartGrant,
)

# Staff apps: one hour. Backend services: five minutes, the most SMART Backend Services
# recommends; they ask again with a new assertion.
ACCESS_TOKEN_SECONDS = 3600
BACKEND_TOKEN_SECONDS = 300
CODE_SECONDS = 60
# SMART Backend Services: servers support RS384 and ES384 client assertions.
ASSERTION_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]


# SMART tokens carry a '~' after the prefix (never in a urlsafe secret): the FHIR views look up
# the granted scopes only for these, so classic API tokens cost no extra query.
SMART_TOKEN_PREFIX = TOKEN_PREFIX + "~"


def _access_token(*args: Any, **kwargs: Any) -> str:
    return SMART_TOKEN_PREFIX + secrets.token_urlsafe(32)


class SmartServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(SmartClient, ApiToken)

    def load_config(self, config: dict[str, Any]) -> None:
        super().load_config(
            {
                "access_token_generator": _access_token,
                "refresh_token_generator": False,
                "token_expires_in": {
                    "authorization_code": ACCESS_TOKEN_SECONDS,
                    "client_credentials": BACKEND_TOKEN_SECONDS,
                },
            }
        )

    def query_client(self, client_id: str) -> SmartClient | None:
        with scopes_disabled():
            return (
                SmartClient.objects.select_related("organization", "membership__user")
                .filter(client_id=client_id, is_active=True)
                .first()
            )

    def save_token(self, token: dict[str, Any], request: Any) -> ApiToken:
        client: SmartClient = request.client
        membership = request.user if request.user is not None else client.membership
        if membership is None:
            raise InvalidClientError(description="This client acts as no member.")
        granted = client.get_allowed_scope(token.get("scope") or "")
        if not granted:
            raise InvalidScopeError()
        token["scope"] = granted
        with scope(organization=client.organization), transaction.atomic():
            api_token = ApiToken.objects.create(
                membership=membership,
                name=f"SMART {client.name}"[:100],
                prefix=token["access_token"][:10],
                key_hash=token_hash(token["access_token"]),
                expires_at=clock.now() + timedelta(seconds=int(token["expires_in"])),
            )
            SmartGrant.objects.create(
                organization=client.organization, token=api_token, client=client, scope=granted
            )
            audit_record(
                actor=None,
                organization=client.organization,
                user=membership.user,
                channel="fhir",
                action="fhir.smart.token_issued",
                obj=api_token,
                detail={
                    "client_id": client.client_id,
                    "grant_type": request.payload.grant_type,
                    "scope": granted,
                    "expires_in": token["expires_in"],
                },
            )
        return api_token


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt: the backend service signs an assertion with its key (RS384 or ES384)."""

    CLIENT_AUTH_METHOD = "client_assertion_jwt"

    def __init__(self, audiences: list[str]) -> None:
        super().__init__(validate_jti=True)
        self.audiences = audiences

    def get_audiences(self) -> list[str]:
        return self.audiences

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        """As authlib's, with the algorithms SMART Backend Services names (RS384, ES384)."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as exc:
            raise InvalidClientError(description=exc.description) from exc
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        with scopes_disabled():
            found = SmartClient.objects.filter(client_id=claims["sub"]).first()
            if found is None:
                return False
            now = clock.now()
            SmartAssertionUse.objects.filter(expires_at__lt=now).delete()
            try:
                with transaction.atomic():
                    SmartAssertionUse.objects.create(
                        client=found,
                        jti=str(jti)[:200],
                        expires_at=now + timedelta(minutes=10),
                    )
            except IntegrityError:
                return False  # replayed assertion
        return True

    def resolve_client_public_key(self, client: SmartClient) -> KeySet:
        return KeySet.import_key_set(cast(Any, client.jwks or {"keys": []}))


class S256(CodeChallenge):
    """PKCE with S256 only ("plain" would send the secret it protects)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def save_authorization_code(self, code: str, request: Any) -> SmartAuthorizationCode:
        client: SmartClient = request.client
        data = request.payload.data
        return SmartAuthorizationCode.objects.create(
            organization=client.organization,
            code=code,
            client=client,
            membership=request.user,
            redirect_uri=request.payload.redirect_uri or "",
            scope=client.get_allowed_scope(request.scope or ""),
            code_challenge=data.get("code_challenge", ""),
            code_challenge_method=data.get("code_challenge_method", ""),
            nonce=data.get("nonce", "")[:200],
            expires_at=clock.now() + timedelta(seconds=CODE_SECONDS),
        )

    def query_authorization_code(
        self, code: str, client: SmartClient
    ) -> SmartAuthorizationCode | None:
        with scopes_disabled():
            return (
                SmartAuthorizationCode.objects.select_related("membership__user")
                .filter(code=code, client=client, expires_at__gt=clock.now())
                .first()
            )

    def delete_authorization_code(self, authorization_code: SmartAuthorizationCode) -> None:
        with scopes_disabled():
            SmartAuthorizationCode.objects.filter(pk=authorization_code.pk).delete()

    def authenticate_user(self, authorization_code: SmartAuthorizationCode) -> Any:
        membership = authorization_code.membership
        if not (membership.is_active and membership.user.is_active):
            return None
        return membership


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_assertion_jwt"]


def build_server(request: Any) -> SmartServer:
    """A server for this request: the assertion audience is this server's token URL."""
    server = SmartServer()
    token_url = request.build_absolute_uri(reverse("smart-token"))
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT([token_url]))
    server.register_grant(CodeGrant, [S256(required=True)])
    server.register_grant(ClientCredentials)
    return server
