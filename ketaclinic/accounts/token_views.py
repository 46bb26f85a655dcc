"""The staff page for API tokens: one's own (issue, see, revoke) and, for a clinic admin, every
token of the organization. The same services as the JSON API and the CLI."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts import services
from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="What the token is for, e.g. the lab interface"
    )
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=settings.API_TOKEN_MAX_DAYS,
        initial=settings.API_TOKEN_DEFAULT_DAYS,
        help_text=f"At most {settings.API_TOKEN_MAX_DAYS} days; it stops working after that.",
    )


def _page(request: ActorRequest, form: TokenForm | None = None, status: int = 200, **extra: Any):
    actor = request.actor
    everyone = actor.can(Cap.API_TOKEN_MANAGE)
    now = clock.now()
    tokens = services.token_list(actor=actor, everyone=everyone)
    context = {
        "form": form or TokenForm(),
        "rows": [(token, token.state_at(now)) for token in tokens],
        "everyone": everyone,
        **extra,
    }
    return TemplateResponse(request, "accounts/tokens.html", context, status=status)


@staff_view(Cap.API_TOKEN_OWN)
def token_list(request: ActorRequest) -> HttpResponse:
    return _page(request)


@require_POST
@staff_view(Cap.API_TOKEN_OWN)
def token_create(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        token, secret = services.token_create(
            username=actor.user.username,
            days=form.cleaned_data["days"],
            name=form.cleaned_data["name"],
            actor=actor,
        )
    except DomainError as error:
        add_domain_errors(form, error)
        return _page(request, form, status=error.status)
    # Shown on this answer only: the page is not cached (Cache-Control: no-store) and the
    # secret is stored nowhere.
    return _page(request, new_token=token, secret=secret, status=201)


@require_POST
@staff_view(Cap.API_TOKEN_OWN)
def token_revoke(request: ActorRequest, token_id: str) -> HttpResponse:
    actor = request.actor
    token = services.token_get(actor=actor, public_id=token_id)
    services.token_revoke(token=token, actor=actor)
    messages.success(request, f"Token {token.prefix}… is revoked; it no longer works.")
    return redirect("accounts:tokens")
