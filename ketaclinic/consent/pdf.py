"""The signed copy of a consent as a PDF, rendered by WeasyPrint from a Django template."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string


def render_signature_pdf(context: dict[str, Any]) -> bytes:
    from weasyprint import HTML

    html = render_to_string("consent/signature_pdf.html", context)
    return HTML(string=html).write_pdf()
