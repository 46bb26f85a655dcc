"""The signed copy of a consent as a PDF, rendered by WeasyPrint from a Django template."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone


def render_signature_pdf(context: dict[str, Any], time_zone: str) -> bytes:
    """The stored copy states its times in the clinic's zone, whoever signs from wherever
    (staff screen, portal, API): it is rendered once and kept."""
    from weasyprint import HTML

    with timezone.override(time_zone):
        html = render_to_string("consent/signature_pdf.html", context)
    return HTML(string=html).write_pdf()
