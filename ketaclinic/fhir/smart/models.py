"""SMART clients, authorization codes and the grants behind issued tokens."""

from __future__ import annotations

from typing import Any

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import ApiToken, Membership, Organization


class SmartClient(models.Model):
    """An app registered with one organization: a staff app (public, PKCE) or a backend service
    (asymmetric: it signs a JWT with its private key; we keep only the public JWKS)."""

    class Kind(models.TextChoices):
        PUBLIC = "public", "Staff app (authorization code with PKCE)"
        BACKEND = "backend", "Backend service (client credentials, private_key_jwt)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    client_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    redirect_uris = models.JSONField(default=list, blank=True)
    scope = models.CharField(max_length=500)  # the most this client may be granted
    jwks = models.JSONField(null=True, blank=True)  # backend: public keys
    # Backend services act as this membership (its role bounds what the scopes allow).
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    # authlib ClientMixin ------------------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        from ketaclinic.fhir.smart import scopes

        allowed = set(self.scope.split())
        contexts = ("system",) if self.kind == self.Kind.BACKEND else ("user",)
        return " ".join(s for s in scopes.narrow(scope, contexts).split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no shared secrets: PKCE or a signed assertion

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.kind == self.Kind.BACKEND:
            return method == "client_assertion_jwt"
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return self.kind == self.Kind.PUBLIC and response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        wanted = "client_credentials" if self.kind == self.Kind.BACKEND else "authorization_code"
        return self.is_active and grant_type == wanted


class SmartAuthorizationCode(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=120, unique=True)
    client = models.ForeignKey(SmartClient, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    redirect_uri = models.TextField()
    scope = models.CharField(max_length=500)
    code_challenge = models.CharField(max_length=128)
    code_challenge_method = models.CharField(max_length=10)
    nonce = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"code for {self.client_id}"

    # authlib AuthorizationCodeMixin -------------------------------------------------------------

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.created_at.timestamp())

    def get_acr(self) -> Any:
        return None

    def get_amr(self) -> Any:
        return None


class SmartGrant(models.Model):
    """What an access token issued through SMART may do: its scope and the client it went to."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    token = models.OneToOneField(ApiToken, on_delete=models.CASCADE, related_name="smart_grant")
    client = models.ForeignKey(SmartClient, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=500)

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"{self.client_id}: {self.scope}"


class SmartAssertionUse(models.Model):
    """A client assertion's jti, kept until it expires: an assertion is accepted once."""

    client = models.ForeignKey(SmartClient, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "jti"], name="smart_jti_once"),
        ]

    def __str__(self) -> str:
        return self.jti
