"""The JSON API's shell: bearer authentication, the error format, pagination.

Errors always have the shape {"detail": str, "errors": [{"field": str, "message": str}]}.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBearer
from pydantic import BaseModel

from ketaclinic.core.errors import DomainError
from ketaclinic.core.input_limits import InputProblem, check_document, check_text


class FieldErrorOut(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut] = []


class InputSchema(BaseModel):
    """A request body's schema on a hot write route: plain pydantic validation. ninja's Schema
    wraps every validation in a model validator that reads the input through DjangoGetter (for
    ORM objects and their managers, which only response schemas are given); for a JSON body,
    a dict, that wrapper is all it adds, and it doubled the body's validation (about 10 us
    -> 3 us per call; issue 13). Same fields, constraints, errors (field and reason) and
    OpenAPI schema."""


class TokenAuth(HttpBearer):
    """The token was resolved (and the tenant scope entered) by TenantMiddleware."""

    def __call__(self, request: HttpRequest) -> Any:
        # TenantMiddleware has read the Authorization header and resolved the token (the actor
        # exists only then); parsing the header again here built `request.headers`, a dict of
        # every header, on each call.
        return getattr(request, "actor", None)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return getattr(request, "actor", None)


class LimitedJsonParser(Parser):
    """Holds every JSON body and query string to the input limits (core.input_limits) before a
    schema or a service sees it: no NUL or control characters (PostgreSQL cannot store U+0000; it
    used to surface as a 500 found by schemathesis), bounded depth, numbers and string lengths.
    """

    def parse_body(self, request: HttpRequest) -> Any:
        data = json_loads(request.body)
        try:
            check_document(data)
        except InputProblem as problem:
            # Ninja answers any error raised here as 400 "Cannot parse request body"; the error
            # handler below finds the real problem on the request and reports it instead.
            request.input_problem = problem  # type: ignore[attr-defined]
            raise
        return data

    def parse_querydict(self, data: Any, list_fields: list[str], request: HttpRequest) -> Any:
        result = super().parse_querydict(data, list_fields, request)
        errors = []
        for key, value in result.items():
            try:
                check_text(str(key), str(key))
                for item in value if isinstance(value, list) else [value]:
                    check_text(str(item), str(key))
            except InputProblem as problem:
                errors.append({"loc": ("query", key), "msg": problem.message})
        if errors:
            raise NinjaValidationError(errors)
        return result


def json_loads(body: bytes) -> Any:
    """`json.loads(body)` (ninja's parser), answered by orjson whenever orjson reads the body: a
    few microseconds less per request (issue 13). orjson refuses what the standard library
    accepts beyond RFC 8259 (NaN, Infinity, 1e400, lone surrogates, a BOM, UTF-16 and UTF-32) and
    every malformed body; json then decides, with the same value or error as before. On the
    documents both read they give the same value, except integers beyond 64 bits, which orjson
    reads as floats: check_document refuses both alike (out of range, same message).
    tests/api/test_json_body.py holds the two to each other."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # json's own error below, not chained to orjson's
    return json.loads(body)


class PlainDecimalEncoder(NinjaJSONEncoder):
    """Decimals as their exact fixed-point text: "35.0" stays "35.0" (that is data), but a
    normalized 100 is "100", never "1E+2" (docs/sources/display.md).

    The values every answer carries (decimals, datetimes, dates, UUIDs) are written here directly,
    as DjangoJSONEncoder writes them: through ninja's and Django's encoders a datetime or a UUID
    first failed a dozen isinstance tests (a pydantic model, URLs, IP addresses, enums), about
    3 us of a JSON write (issue 13). Only these exact types: a subclass, and every other value,
    goes the long way as before."""

    def default(self, o: Any) -> Any:
        kind = type(o)
        if kind is Decimal:
            if o.is_finite():
                return format(o, "f")
        elif kind is datetime:
            return _datetime_text(o)
        elif kind is date or kind is UUID:
            return str(o)
        return super().default(o)


def _datetime_text(value: datetime) -> str:
    """DjangoJSONEncoder's datetime: ECMA-262's format (milliseconds, "Z" for UTC)."""
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return text


class PlainDecimalRenderer(JSONRenderer):
    encoder_class = PlainDecimalEncoder


_ENCODER = PlainDecimalEncoder()


class ClinicAPI(NinjaAPI):
    """ninja's API, with its per-request scratch response made without decoding anything.

    ninja builds one empty response per request before the view runs (a route may take it as a
    parameter to set headers; a route returning data gets its body written into it). Its empty
    body was a str, which HttpResponse encodes in the charset it first parses out of the
    Content-Type header: half of that response's cost, on every API request (issue 13)."""

    def create_temporal_response(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(b"", content_type=self.get_content_type())


def render_json(data: Any, status: int = 200) -> HttpResponse:
    """`data` as the API's renderer writes it (the same text for every value: decimals as fixed
    point, times as Django's encoder writes them), with orjson and without the response schema.

    For the hot write routes (issue 13) whose answer is a handful of values the service has just
    validated and stored: running them through the response schema again and the standard json
    module cost about a tenth of a write. The route still declares its schema (OpenAPI, clients);
    the test suite validates every such answer against it (tests/api/test_rendered_answers.py).
    """
    body = orjson.dumps(data, default=_ENCODER.default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")


def build_api() -> NinjaAPI:
    api = ClinicAPI(
        title="ketaclinic API",
        version="1",
        description="JSON API of ketaclinic. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `ketaclinic create-token`).",
        auth=TokenAuth(),
        urls_namespace="api",
        parser=LimitedJsonParser(),
        renderer=PlainDecimalRenderer(),
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

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return api.create_response(
            request,
            {"detail": f"The request body is larger than {limit:,} bytes.", "errors": []},
            status=413,
        )

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        problem = getattr(request, "input_problem", None)
        if problem is not None:
            return api.create_response(
                request,
                {
                    "detail": str(problem),
                    "errors": [{"field": problem.path or "body", "message": problem.message}],
                },
                status=problem.status,
            )
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
    413: ErrorOut,
    422: ErrorOut,
}
