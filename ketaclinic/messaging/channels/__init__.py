"""Delivery channels: e-mail through Django's e-mail backends, SMS through a provider.

A channel either returns the provider's message id or raises: `TransientFailure` (try again
later: a server down, a timeout, a rate limit) or `PermanentFailure` (the address was refused;
retrying cannot help, so the message fails at once, like a bounce).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DeliveryFailure(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail[:300]


class TransientFailure(DeliveryFailure):
    pass


class PermanentFailure(DeliveryFailure):
    pass


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: str


@dataclass(frozen=True)
class Outgoing:
    to: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
