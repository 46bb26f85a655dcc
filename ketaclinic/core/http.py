"""Small helpers shared by views: client address and htmx-aware partial rendering."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def client_address(request: HttpRequest) -> str:
    # Behind a reverse proxy, configure it to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips);
    # never trust a client-supplied X-Forwarded-For here.
    return request.META.get("REMOTE_ADDR", "")[:45]


def render_page_or_partial(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """One view serves the full page and, for htmx requests, just the named partial."""
    if getattr(request, "htmx", False):
        template = f"{template}#{partial}"
    return TemplateResponse(request, template, context, status=status)
