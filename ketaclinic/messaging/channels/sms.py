"""SMS providers. One real HTTP implementation (Twilio's Messages API shape: a form-encoded POST
to /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth, answering JSON with a
`sid`) and a console provider for the demo. Configured by SMS_PROVIDER, SMS_PROVIDER_URL,
SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM_NUMBER (see README)."""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Protocol

from django.conf import settings

from ketaclinic.messaging.channels import Outgoing, PermanentFailure, TransientFailure

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


class SmsProvider(Protocol):
    def send(self, message: Outgoing) -> str: ...


class ConsoleSmsProvider:
    """Prints the text to the worker's output: for the demo, never for patients."""

    def send(self, message: Outgoing) -> str:
        sys.stdout.write(f"[sms to {message.to}] {message.body}\n")
        return f"console-{uuid.uuid4().hex[:12]}"


class TwilioSmsProvider:
    def __init__(self, *, base_url: str, account_sid: str, auth_token: str, from_number: str):
        self.endpoint = (
            f"{base_url.rstrip('/')}/2010-04-01/Accounts/{urllib.parse.quote(account_sid)}"
            "/Messages.json"
        )
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.authorization = f"Basic {credentials}"
        self.from_number = from_number

    def send(self, message: Outgoing) -> str:
        form = urllib.parse.urlencode(
            {"To": message.to, "From": self.from_number, "Body": message.body}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's setting)
            self.endpoint,
            data=form,
            method="POST",
            headers={
                "Authorization": self.authorization,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            # 429 (rate limit) and 5xx are the provider's trouble; other 4xx refuse this message.
            if exc.code == 429 or exc.code >= 500:
                raise TransientFailure(f"the SMS provider answered {exc.code}{detail}") from None
            raise PermanentFailure(
                f"the SMS provider refused the message ({exc.code}{detail})"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TransientFailure(
                f"the SMS provider could not be reached ({type(exc).__name__})"
            ) from None
        return str(answer.get("sid", ""))[:100]


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return ""
    message = str(body.get("message", ""))[:120]
    return f": {message}" if message else ""


def sms_provider() -> SmsProvider | None:
    """The configured provider, or None when the clinic has no SMS channel."""
    name = settings.SMS_PROVIDER
    if name == "console":
        return ConsoleSmsProvider()
    if name == "twilio":
        return TwilioSmsProvider(
            base_url=settings.SMS_PROVIDER_URL,
            account_sid=settings.SMS_ACCOUNT_SID,
            auth_token=settings.SMS_AUTH_TOKEN,
            from_number=settings.SMS_FROM_NUMBER,
        )
    return None
