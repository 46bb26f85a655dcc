"""The JSON API's shell: bearer authentication, the error format, pagination.

Errors always have the shape {"detail": str, "errors": [{"field": str, "message": str}]}.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from ketaclinic.core.errors import DomainError


class FieldErrorOut(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut] = []


class TokenAuth(HttpBearer):
    """The token was resolved (and the tenant scope entered) by TenantMiddleware."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return getattr(request, "actor", None)


NUL_MESSAGE = "Text may not contain NUL (U+0000) characters."


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class NulRefusingParser(Parser):
    """Refuses NUL characters in JSON bodies and query strings before they reach a service.

    JSON and URLs can carry U+0000 but PostgreSQL text and jsonb columns cannot store it: it used to
    surface as a 500 (DataError) on PostgreSQL only. Found by schemathesis.
    """

    def parse_body(self, request: HttpRequest) -> Any:
        data = super().parse_body(request)
        if _has_nul(data):
            # Ninja answers 400 "Cannot parse request body" for any error raised here.
            raise ValueError(NUL_MESSAGE)
        return data

    def parse_querydict(self, data: Any, list_fields: list[str], request: HttpRequest) -> Any:
        result = super().parse_querydict(data, list_fields, request)
        bad = [key for key, value in result.items() if _has_nul(key) or _has_nul(value)]
        if bad:
            raise NinjaValidationError([{"loc": ("query", key), "msg": NUL_MESSAGE} for key in bad])
        return result


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="ketaclinic API",
        version="1",
        description="JSON API of ketaclinic. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `ketaclinic create-token`).",
        auth=TokenAuth(),
        urls_namespace="api",
        parser=NulRefusingParser(),
    )

    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return api.create_response(
            request,
            {
                "detail": exc.detail,
                "errors": [{"field": e.field, "message": e.message} for e in exc.errors],
            },
            status=exc.status,
        )

    @api.exception_handler(NinjaValidationError)
    def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = []
        for error in exc.errors:
            location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
            errors.append(
                {
                    "field": ".".join(location[1:] if location[:1] == ["payload"] else location)
                    or "body",
                    "message": error.get("msg", "invalid"),
                }
            )
        return api.create_response(
            request, {"detail": "The request is not valid.", "errors": errors}, status=422
        )

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = api.create_response(
            request,
            {"detail": "A valid, unexpired bearer token is required.", "errors": []},
            status=401,
        )
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return api.create_response(
            request, {"detail": str(exc), "errors": []}, status=exc.status_code
        )

    return api


ERROR_RESPONSES: dict[int, type[Schema]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}
