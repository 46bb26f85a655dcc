"""Design-system helpers (built in, like clinical_format): severity shown as colour + icon + word,
and form widgets given the U.S. Web Design System classes (templates/forms/*.html).

    {% severity "critical" %}                  red, error icon, "Critical"
    {% severity a.severity a.message %}        the word, then the message
    {{ field|uswds }}                          the widget with usa-input / usa-select / ...
"""

from __future__ import annotations

import re
from typing import Any

from django import forms, template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()

USWDS = "vendor/uswds-3.14.0"

# Every severity vocabulary of the product, on three levels a nurse reads from across a room.
LEVELS = {
    "critical": "critical",  # vital-sign alerts, safety alerts
    "high": "warning",  # safety alert below critical
    "warning": "warning",
    "absolute": "critical",  # screening findings
    "relative": "warning",
    "info": "info",
    "not_eligible": "critical",  # screening decisions
    "needs_review": "warning",
    "needs_prescriber_review": "warning",
    "ineligible": "critical",
    "eligible": "ok",
    "ok": "ok",
    "none": "ok",
}
WORDS = {"critical": "Critical", "warning": "Warning", "ok": "OK", "info": "Note"}
ICONS = {"critical": "error", "warning": "warning", "ok": "check_circle", "info": "info"}


def level_of(value: Any) -> str:
    return LEVELS.get(str(value or "none").lower(), "info")


@register.filter
def severity_level(value: Any) -> str:
    return level_of(value)


@register.simple_tag
def icon(name: str, label: str = "") -> str:
    """A USWDS sprite icon; decorative unless given a label."""
    sprite = static(f"{USWDS}/img/sprite.svg")
    if label:
        return format_html(
            '<svg class="usa-icon" role="img" aria-label="{}" focusable="false">'
            '<use href="{}#{}"></use></svg>',
            label,
            sprite,
            name,
        )
    return format_html(
        '<svg class="usa-icon" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        sprite,
        name,
    )


@register.simple_tag
def severity(value: Any, text: str = "", word: str = "") -> str:
    level = level_of(value)
    return format_html(
        '<span class="sev sev--{}">{}<span class="sev__word">{}</span>{}</span>',
        level,
        icon(ICONS[level]),
        word or WORDS[level],
        format_html('<span class="sev__text">{}</span>', text) if text else "",
    )


def widget_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return ""  # a native checkbox, large (app.css .choice-row): USWDS hides the input
    if isinstance(widget, (forms.RadioSelect, forms.CheckboxSelectMultiple)):
        return ""
    if isinstance(widget, forms.Select):
        return "usa-select"
    if isinstance(widget, forms.Textarea):
        return "usa-textarea"
    if isinstance(widget, forms.FileInput):
        return "usa-file-input"
    return "usa-input"


@register.filter
def uswds(field: forms.BoundField) -> str:
    css = " ".join(
        c
        for c in (
            field.field.widget.attrs.get("class", ""),
            widget_class(field.field.widget),
            "usa-input--error" if field.errors else "",
        )
        if c
    )
    attrs: dict[str, str | bool] = {"class": css} if css else {}
    described = described_by(field)
    if described:
        attrs["aria-describedby"] = described
    return field.as_widget(attrs=attrs or None)


@register.filter
def described_by(field: forms.BoundField) -> str:
    """The ids of the hint and the error that forms/field.html renders for this field."""
    if not field.auto_id:
        return ""
    ids = [f"{field.auto_id}_helptext"] if field.help_text else []
    ids += [f"{field.auto_id}-error"] if field.errors else []
    return " ".join(ids)


@register.filter
def is_choice_group(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, (forms.RadioSelect, forms.CheckboxSelectMultiple))


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)


ACRONYMS = {
    "iv": "IV",
    "im": "IM",
    "sc": "SC",
    "rems": "REMS",
    "kap": "KAP",
    "bp": "BP",
    "trd": "TRD",
}


@register.filter
def plain_key(key: Any) -> str:
    """A versioned key as people read it: "iv-ketamine-induction@1" -> "IV ketamine induction".
    The key itself belongs in a <details class="for-audit"> disclosure."""
    name = str(key or "").split("@")[0].replace("_", "-")
    words = [ACRONYMS.get(w, w) for w in name.split("-") if w]
    if not words:
        return ""
    first = words[0] if words[0].isupper() else words[0].capitalize()
    return " ".join([first, *words[1:]])


GATE_WORDS = {
    "proceed": ("ok", "Passed"),
    "proceed-with-override": ("warning", "Passed with a prescriber's override"),
    "needs-override": ("warning", "Needs a prescriber's override"),
    "refuse": ("critical", "Do not dose"),
}


@register.simple_tag
def gate(outcome: Any) -> str:
    level, word = GATE_WORDS.get(str(outcome), ("info", str(outcome)))
    return severity(level, word=word)


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    return (mapping or {}).get(str(key), "")


_VERSIONED_KEY = re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)+@\d+\b")


@register.filter
def plain_keys(text: Any) -> str:
    """Every versioned key inside a sentence in words ("protocol esketamine-trd@1" ->
    "protocol Esketamine TRD")."""
    return _VERSIONED_KEY.sub(lambda m: plain_key(m.group()), str(text or ""))
