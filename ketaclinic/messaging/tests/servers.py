"""Real local servers for delivery tests: an SMTP server (aiosmtpd) and an HTTP endpoint in the
shape of Twilio's Messages API. Nothing is mocked: ketaclinic connects to them over TCP."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpInbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # addresses answered with 550

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_inbox(settings: Any) -> Iterator[SmtpInbox]:
    inbox = SmtpInbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = inbox.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "clinic@example.org"
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class SmsEndpoint:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this HTTP status

    def bodies_to(self, number: str) -> list[str]:
        return [r["form"]["Body"] for r in self.received if r["form"]["To"] == number]


class _TwilioHandler(BaseHTTPRequestHandler):
    endpoint: SmsEndpoint

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
        auth = self.headers.get("Authorization", "")
        user = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else ""
        self.endpoint.received.append(
            {"path": self.path, "form": form, "auth": user, "type": self.headers["Content-Type"]}
        )
        status = self.endpoint.fail_with or 201
        body = (
            {"sid": f"SM{len(self.endpoint.received):032d}", "status": "queued"}
            if status < 400
            else {"code": 20003 if status < 500 else 20500, "message": "Service unavailable"}
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def sms_endpoint(settings: Any) -> Iterator[SmsEndpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TwilioHandler)
    endpoint = SmsEndpoint(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (_TwilioHandler,), {"endpoint": endpoint})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_PROVIDER = "twilio"
    settings.SMS_PROVIDER_URL = endpoint.url
    settings.SMS_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
    settings.SMS_AUTH_TOKEN = "test-auth-token"
    settings.SMS_FROM_NUMBER = "+15005550006"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
