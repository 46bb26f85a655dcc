"""Every form renders through the project's templates (templates/forms/), in the U.S. Web Design
System's markup: labels, hints and errors tied to their field for screen readers."""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class UswdsRenderer(TemplatesSetting):
    form_template_name = "forms/div.html"
    field_template_name = "forms/field.html"
