"""Patient portal accounts: accept an invitation (choose a password), log in with a password (no
TOTP for patients), see consents to sign, sign on a phone, download or revoke a signed copy.

A portal user has no staff membership; every page looks up their one PortalAccount (unscoped, by
user) and then runs in its organization's scope, so a patient only ever sees their own records.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.db.models import F, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.models import Clinic
from ketaclinic.consent import selectors, services
from ketaclinic.consent.forms import SignForm
from ketaclinic.consent.models import PortalAccount
from ketaclinic.consent.views import pdf_response
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import client_address
from ketaclinic.core.links import LinkRefused
from ketaclinic.measures.selectors import pending_questionnaires
from ketaclinic.messaging.patient_pages import sign_in_links_offered
from ketaclinic.scheduling.selectors import upcoming_visits
from ketaclinic.screening.selectors import intake_current
from ketaclinic.sessions.models import TreatmentSession


class PortalLoginForm(forms.Form):
    username = forms.CharField(
        max_length=254,
        label="E-mail or username",
        help_text="The e-mail address your clinic has for you, or the username in your invitation.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class ActivateForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput, label="Choose a password")
    password_again = forms.CharField(widget=forms.PasswordInput, label="Type it again")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") != data.get("password_again"):
            raise forms.ValidationError("The two passwords differ.")
        return data


def _account_for(request: HttpRequest) -> PortalAccount | None:
    if not request.user.is_authenticated:
        return None
    with scopes_disabled():
        return (
            PortalAccount.objects.select_related("patient", "organization", "user")
            .filter(user=request.user, is_active=True)
            .first()
        )


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @never_cache
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        account = _account_for(request)
        if account is None:
            return redirect("portal:login")
        with (
            scope(organization=account.organization),
            timezone.override(patient_time_zone(account.patient)),
        ):
            try:
                return view(request, account, *args, **kwargs)
            except DomainError as error:
                context = {"error": error}
                return TemplateResponse(
                    request, "portal/account_error.html", context, status=error.status
                )

    return wrapper


@never_cache
def portal_login(request: HttpRequest) -> HttpResponse:
    form = PortalLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(
            request,
            username=selectors.portal_username_for_login(form.cleaned_data["username"]),
            password=form.cleaned_data["password"],
        )
        if user is not None and _has_portal_account(user):
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("portal:home")
        form.add_error(None, "E-mail, username or password is not right.")
    return login_page(request, form=form, status=400 if form.errors else 200)


def login_page(
    request: HttpRequest,
    *,
    form: forms.Form | None = None,
    link_form: forms.Form | None = None,
    status: int = 200,
) -> HttpResponse:
    """The login page: the password form, and the sign-in link form where a clinic offers it."""
    from ketaclinic.portal.sign_in_views import TTL_MINUTES, SignInLinkForm

    offered = sign_in_links_offered()
    context = {
        "form": form or PortalLoginForm(),
        "link_form": (link_form or SignInLinkForm(prefix="link")) if offered else None,
        "ttl_minutes": TTL_MINUTES,
    }
    return TemplateResponse(request, "portal/login.html", context, status=status)


def _has_portal_account(user: Any) -> bool:
    with scopes_disabled():
        return PortalAccount.objects.filter(user=user, is_active=True).exists()


@require_POST
def portal_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("portal:login")


@never_cache
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        account = services.portal_invitation_resolve(token)
    except LinkRefused as refused:
        return TemplateResponse(
            request, "portal/account_error.html", {"error": refused}, status=refused.status
        )
    form = ActivateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.portal_activate(
                token=token,
                password=form.cleaned_data["password"],
                client_address=client_address(request),
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Your password is set. Please log in.")
            return redirect("portal:login")
    context = {"form": form, "username": account.user.username, "name": account.patient.given_name}
    return TemplateResponse(
        request, "portal/invite_accept.html", context, status=400 if form.errors else 200
    )


@portal_view
def portal_home(request: HttpRequest, account: PortalAccount) -> HttpResponse:
    rows = selectors.consent_rows(account.patient)
    signatures = selectors.signatures_for_patient(account.patient)
    context = {
        "account": account,
        "organization": account.organization,
        "patient": account.patient,
        "rows": rows,
        "signatures": signatures,
        "intake": intake_current(account.patient),
        "questionnaires": pending_questionnaires(account.patient),
        "visits": upcoming_visits(account.patient)[:3],
        "clinics": list(Clinic.objects.all()),
    }
    return TemplateResponse(request, "portal/home.html", context)


@portal_view
def portal_consent_sign(
    request: HttpRequest, account: PortalAccount, version_id: str
) -> HttpResponse:
    version = selectors.version_get(version_id)
    form = SignForm(request.POST or None, version=version)
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_sign_portal(
                account=account,
                template_version=version,
                signature=services.SignatureInput(
                    printed_name=form.cleaned_data["printed_name"],
                    acknowledged=form.acknowledged(),
                    drawn_signature=form.cleaned_data["drawn_signature"],
                    client_address=client_address(request),
                    user_agent=request.headers.get("User-Agent", ""),
                ),
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Thank you. You signed: {version.title}.")
            return redirect("portal:home")
    context = {"form": form, "version": version, "patient": account.patient}
    return TemplateResponse(
        request, "portal/consent_sign.html", context, status=400 if form.errors else 200
    )


@portal_view
def portal_consent_pdf(
    request: HttpRequest, account: PortalAccount, signature_id: str
) -> HttpResponse:
    return pdf_response(selectors.signature_get(signature_id, patient=account.patient))


@portal_view
def portal_consent_revoke(
    request: HttpRequest, account: PortalAccount, signature_id: str
) -> HttpResponse:
    """GET asks the patient to confirm and says what happens next; POST withdraws. The
    prescribers see the withdrawal on their Today page (consent_withdrawals_panel)."""
    signature = selectors.signature_get(signature_id, patient=account.patient)
    if signature.patient_id != account.patient_id:
        raise NotFound("No such consent.")
    if request.method != "POST":
        context = {"signature": signature, "organization": account.organization}
        return TemplateResponse(request, "portal/consent_revoke.html", context)
    services.consent_revoke(
        account=account, signature=signature, reason=request.POST.get("reason", "")
    )
    messages.success(
        request,
        "Your consent was withdrawn. Your care team sees this on their Today page and will "
        "contact you before any treatment that needs it.",
    )
    return redirect("portal:home")


def patient_time_zone(patient: Any) -> str:
    """A patient reads times in the zone of the clinic that treats them: their latest session's
    clinic, else the organization's first clinic (docs/sources/display.md)."""
    latest_here = (
        TreatmentSession.objects.filter(patient=patient, clinic=OuterRef("pk"))
        .order_by("-scheduled_at")
        .values("scheduled_at")[:1]
    )
    zone = (
        Clinic.objects.annotate(latest=Subquery(latest_here))
        .order_by(F("latest").desc(nulls_last=True), "pk")
        .values_list("time_zone", flat=True)
        .first()
    )  # one query per portal page
    return zone or settings.TIME_ZONE
