"""Response headers every dynamic page carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware


def no_store(response: HttpResponseBase) -> None:
    if "no-store" not in response.get("Cache-Control", ""):
        response["Cache-Control"] = "no-store"


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response the application renders (UI, JSON API, FHIR,
    portal): each may hold protected health information, which no browser cache, proxy or shared
    disk may keep. Static files are answered by WhiteNoise, listed before this, and stay cacheable.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        no_store(response)
        return response


class StaticPolicyCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy built once instead of on every response.

    This site's policy has no nonce and no view changes it (no csp_update/csp_replace/csp_exempt
    decorator), so the header is the same string every time; building it cost about 0.1 ms of a
    JSON write. A response or request that does carry a per-request part (a decorator's
    attributes, a nonce someone asked for) still goes through django-csp unchanged."""

    _PER_REQUEST = (
        "_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
        "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro",
    )  # fmt: skip
    _PER_REQUEST_SET = frozenset(_PER_REQUEST)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        # The decorators set their attributes on the response object itself: one set test
        # instead of eight failed attribute lookups (a response class that defines one is
        # looked up as django-csp would).
        if (
            getattr(request, "_csp_nonce", None) is not None
            or not self._PER_REQUEST_SET.isdisjoint(response.__dict__)
            or type(response) not in _PLAIN_RESPONSES
            and any(hasattr(response, name) for name in self._PER_REQUEST)
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        for header, value, excluded in _static_policies():
            if value and header not in response:
                if not excluded or not request.path_info.startswith(excluded):
                    response[header] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


# Response classes known to define none of django-csp's per-request attributes.
_PLAIN_RESPONSES = frozenset({HttpResponse, JsonResponse})
_Policy = tuple[str, str, tuple[str, ...]]  # header, value, path prefixes it is not sent on
_policies: dict[str, tuple[_Policy, _Policy]] = {}


def _static_policies() -> tuple[_Policy, _Policy]:
    if "built" not in _policies:

        def excluded(setting: str) -> tuple[str, ...]:
            return tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())

        _policies["built"] = (
            (HEADER, build_policy(), excluded("CONTENT_SECURITY_POLICY")),
            (
                HEADER_REPORT_ONLY,
                build_policy(report_only=True),
                excluded("CONTENT_SECURITY_POLICY_REPORT_ONLY"),
            ),
        )
    return _policies["built"]


@receiver(setting_changed)
def _forget_policies(setting: str, **_: object) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policies.clear()


class TokenPathMiddleware:
    """The bearer-token chain's (core.routing) one step for what the browser chain does in five
    middlewares: SecurityMiddleware (HTTPS redirect; HSTS, nosniff, Referrer-Policy and
    Cross-Origin-Opener-Policy), CommonMiddleware (host validation, slash redirects,
    Content-Length), X-Frame-Options, the CSP header and `no-store`. Each part is Django's (or
    django-csp's) own method, called in the order the separate middlewares ran; only the layers
    between them are gone (a wrapper and an exception handler each, about a tenth of a
    millisecond of a JSON write, issue 13). Every answer, a refusal raised before the view (a bad
    Host) or a redirect included, gets every header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        self.common = CommonMiddleware(get_response)
        self.frame = XFrameOptionsMiddleware(get_response)
        self.csp = StaticPolicyCSPMiddleware(get_response)
        # An exception before the view (DisallowedHost) becomes its error response here, as the
        # separate middlewares' handler made it, so the headers below are added to it too.
        self.answer = convert_exception_to_response(self._answer)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = cast(HttpResponse, self.answer(request))  # synchronous chain: never awaitable
        response = cast(HttpResponse, self.csp.process_response(request, response))
        response = self.frame.process_response(request, response)
        no_store(response)
        return self.security.process_response(request, response)

    def _answer(self, request: HttpRequest) -> HttpResponseBase:
        early = self.security.process_request(request) or self.common.process_request(request)
        if early is not None:
            return early
        self.csp.process_request(request)
        return self.common.process_response(request, self.get_response(request))
