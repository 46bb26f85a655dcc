"""Dashboard and health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static

from ketaclinic.core.decorators import staff_view


def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("core:dashboard")


@staff_view()
def dashboard(request: HttpRequest) -> HttpResponse:
    """Today's clinic at a glance. Later modules add their panels (alerts, sessions, counts)."""
    return TemplateResponse(request, "core/dashboard.html", {})


def favicon(request: HttpRequest) -> HttpResponse:
    """The product's icon for the browser's own /favicon.ico request (resolved per request: the
    static manifest may not exist yet when URLs are loaded)."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
