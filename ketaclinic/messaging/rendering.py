"""Render a message's subject and text from its kind's templates (plain text, no escaping)."""

from __future__ import annotations

from typing import Any

from django.template import Context
from django.template.loader import get_template

from ketaclinic.messaging.channels import Attachment, Outgoing
from ketaclinic.messaging.models import Channel


def _render(name: str, values: dict[str, Any]) -> str:
    # The Django backend's wrapper holds the engine's Template (to turn autoescape off); the
    # engine-neutral type django-stubs gives get_template() does not name it.
    template = get_template(name).template  # type: ignore[attr-defined]
    return template.render(Context(values, autoescape=False)).strip()


def render_outgoing(
    *,
    kind: str,
    channel: str,
    to: str,
    context: dict[str, Any],
    secret: dict[str, Any],
    attachments: list[dict[str, str]],
) -> Outgoing:
    values = {**context, **secret}
    if channel == Channel.SMS:
        return Outgoing(to=to, subject="", body=_render(f"messaging/kinds/{kind}.sms.txt", values))
    return Outgoing(
        to=to,
        subject=_render(f"messaging/kinds/{kind}.subject.txt", values).replace("\n", " "),
        body=_render(f"messaging/kinds/{kind}.email.txt", values) + "\n",
        attachments=tuple(Attachment(**a) for a in attachments),
    )
