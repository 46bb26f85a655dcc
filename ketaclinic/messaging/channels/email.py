"""E-mail through Django's configured backend (SMTP in production: EMAIL_HOST, EMAIL_PORT, ...)."""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import make_msgid

from ketaclinic.messaging.channels import Outgoing, PermanentFailure, TransientFailure

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def email_configured() -> bool:
    """An SMTP backend needs a host; any other backend (console, locmem, file) is deliberate."""
    if settings.EMAIL_BACKEND != SMTP_BACKEND:
        return True
    return bool(settings.EMAIL_HOST)


def email_connection() -> Any:
    """One connection for a batch of messages (opened lazily by the first send)."""
    return get_connection(fail_silently=False)


def email_send(message: Outgoing, *, connection: Any = None) -> str:
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        connection=connection or email_connection(),
        headers={"Message-ID": (message_id := make_msgid(domain="ketaclinic"))},
    )
    for attachment in message.attachments:
        email.attach(attachment.filename, attachment.content, attachment.content_type)
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = f"the mail server refused the address ({', '.join(map(str, codes))})"
        if all(code >= 500 for code in codes):
            raise PermanentFailure(detail) from None
        raise TransientFailure(detail) from None
    except smtplib.SMTPResponseException as exc:
        detail = f"the mail server answered {exc.smtp_code}"
        if exc.smtp_code >= 500 and exc.smtp_code != 554:
            raise PermanentFailure(detail) from None
        raise TransientFailure(detail) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientFailure(
            f"the mail server could not be reached ({type(exc).__name__})"
        ) from None
    return message_id[:100]
