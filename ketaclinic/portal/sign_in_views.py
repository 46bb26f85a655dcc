"""Sign-in by an e-mailed link (consent.sign_in_links), shown on the login page only where a
clinic offers it. Opening the link shows a button; the POST uses it. A GET never uses the link,
because mail scanners and link previews open links before the patient does."""

from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ketaclinic.consent import sign_in_links
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import client_address
from ketaclinic.core.links import LinkRefused

TTL_MINUTES = int(sign_in_links.SIGN_IN_TTL.total_seconds() // 60)


class SignInLinkForm(forms.Form):
    email = forms.CharField(
        max_length=254,
        label="Your e-mail address",
        help_text="The address your clinic has for you.",
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "autocapitalize": "none", "inputmode": "email"}
        ),
    )


@never_cache
@require_POST
def sign_in_link_request(request: HttpRequest) -> HttpResponse:
    """One answer whatever the address (no one learns who is a patient here), in the same
    time: never sooner than PORTAL_SIGN_IN_ANSWER_MS after the request arrived."""
    started = time.monotonic()
    form = SignInLinkForm(request.POST, prefix="link")
    if form.is_valid():
        try:
            sign_in_links.sign_in_link_request(
                address=form.cleaned_data["email"], client_address=client_address(request)
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            floor = settings.PORTAL_SIGN_IN_ANSWER_MS / 1000
            time.sleep(max(0.0, floor - (time.monotonic() - started)))
            context = {"ttl_minutes": TTL_MINUTES}
            return TemplateResponse(request, "portal/sign_in_sent.html", context)
    from ketaclinic.portal.auth_views import login_page

    return login_page(request, link_form=form, status=400)


@never_cache
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    address = client_address(request)
    try:
        if request.method == "POST":
            account = sign_in_links.sign_in_link_use(token, client_address=address)
            login(request, account.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("portal:home")
        account = sign_in_links.sign_in_link_check(token, client_address=address)
    except LinkRefused as refused:
        context = {"error": refused, "ttl_minutes": TTL_MINUTES}
        return TemplateResponse(
            request, "portal/sign_in_refused.html", context, status=refused.status
        )
    context = {"clinic": account.organization.name}
    return TemplateResponse(request, "portal/sign_in.html", context)
