"""Two middleware chains: the staff UI's, and a shorter one for the bearer-token interfaces.

`/api/` and `/fhir/` are called with a bearer token only: no cookie identifies the caller there
(TenantMiddleware ignores the session on those paths), nothing renders a template or a flash
message. Sessions, authentication from the session, django-otp, the 2FA redirect, messages and
htmx cost CPU on every API write and change nothing (issue 13: they were most of what remained
of a JSON write's overhead). `TokenPathRouter`, first in MIDDLEWARE, sends those paths through
`TOKEN_PATH_MIDDLEWARE` instead (a second handler with its own view middleware); every other path
continues down MIDDLEWARE as before.

What the short chain keeps, and why (docs/ARCHITECTURE.md, "Two middleware chains"): security
headers and HTTPS redirect, host validation and slash redirects, X-Frame-Options, CSP and
`no-store` (in one step, core.middleware.TokenPathMiddleware), the tenant scope and the PHI audit
net. CSRF and django-axes are left out: every view there is csrf_exempt but public documents
that change nothing, and no view there logs anyone in (the only requests Axes acts on).
tests/test_token_path_chain.py holds each of these on both chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

TOKEN_PATHS = ("/api/", "/fhir/")


def is_token_path(path: str) -> bool:
    return path.startswith(TOKEN_PATHS)


class _TokenPathHandler(BaseHandler):
    """A handler whose middleware is TOKEN_PATH_MIDDLEWARE (synchronous, like the server)."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = middleware
        self.load_middleware()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; this is the same assembly for
        # another list (every middleware listed is synchronous and always used).
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for path in reversed(self.middleware):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class TokenPathRouter:
    """First in MIDDLEWARE: `/api/` and `/fhir/` go down TOKEN_PATH_MIDDLEWARE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.token_chain = _TokenPathHandler(list(settings.TOKEN_PATH_MIDDLEWARE))._middleware_chain

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_token_path(request.path):
            # Who calls is `request.actor` (the bearer token); no session user on these paths.
            request.user = AnonymousUser()
            return cast(HttpResponse, self.token_chain(request))
        return self.get_response(request)
