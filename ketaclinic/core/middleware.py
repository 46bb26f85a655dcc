"""Response headers every dynamic page carries."""

from __future__ import annotations

from collections.abc import Callable

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response the application renders (UI, JSON API, FHIR,
    portal): each may hold protected health information, which no browser cache, proxy or shared
    disk may keep. Static files are answered by WhiteNoise, listed before this, and stay cacheable.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
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

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in self._PER_REQUEST
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        policy, report_only = _static_policies()
        for header, value, setting in (
            (HEADER, policy, "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, report_only, "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            if value and header not in response:
                prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
                if not prefixes or not request.path_info.startswith(tuple(prefixes)):
                    response[header] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


_policies: dict[str, tuple[str, str]] = {}


def _static_policies() -> tuple[str, str]:
    if "built" not in _policies:
        _policies["built"] = (build_policy(), build_policy(report_only=True))
    return _policies["built"]


@receiver(setting_changed)
def _forget_policies(setting: str, **_: object) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policies.clear()
