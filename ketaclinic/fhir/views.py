"""HTTP for /fhir/r4/: content negotiation, bearer auth, errors as OperationOutcome. Each view is
parse, look up through a handler, call a service, render."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import get_script_prefix, reverse
from django.views.decorators.csrf import csrf_exempt

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import DomainError
from ketaclinic.core.input_limits import (
    MAX_BUNDLE_BYTES,
    MAX_RESOURCE_BYTES,
    InputProblem,
    check_text,
)
from ketaclinic.fhir import conditional, history
from ketaclinic.fhir import everything as everything_op
from ketaclinic.fhir.bundles import process_bundle
from ketaclinic.fhir.capability import capability_statement
from ketaclinic.fhir.outcome import FhirError, from_domain_error, information, operation_outcome
from ketaclinic.fhir.received import overlay
from ketaclinic.fhir.registry import HANDLERS, Handler, run_search
from ketaclinic.fhir.smart.enforce import enforce as enforce_scopes
from ketaclinic.fhir.validation import check_limits, parse_received
from ketaclinic.fhir.versioning import check_version, parse_if_match

logger = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
ACCEPTED_BODY_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")


def respond(data: dict[str, Any] | None, status: int = 200, **headers: str) -> HttpResponse:
    body = orjson.dumps(data) if data is not None else b""
    response = HttpResponse(body, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def base_url(request: HttpRequest) -> str:
    # reverse() walks the URL resolver on each call (about 0.15 ms of every create and search
    # under load); the root's path depends only on the script prefix and the URLconf. The
    # absolute URL depends only on the scheme and the META entries get_host() reads (and the
    # settings, which clear this): build_absolute_uri validated the host anew on every request.
    prefix = get_script_prefix()
    meta = request.META
    key = (
        prefix,
        request.scheme,
        meta.get("HTTP_HOST"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
    )
    url = _base_urls.get(key)
    if url is None:
        path = _root_paths.get(prefix)
        if path is None:
            path = _root_paths[prefix] = reverse("fhir:root")
        url = request.build_absolute_uri(path)  # raises DisallowedHost: nothing is kept
        if len(_base_urls) < 1000:  # hosts a deployment answers to: few; a flood stops here
            _base_urls[key] = url
    return url


_root_paths: dict[str, str] = {}
_base_urls: dict[tuple[str | None, ...], str] = {}


@receiver(setting_changed)
def _forget_root_paths(setting: str, **_: object) -> None:
    # Any setting may change what get_host() accepts or builds (ALLOWED_HOSTS, proxies...).
    _base_urls.clear()
    if setting == "ROOT_URLCONF":
        _root_paths.clear()


def header(request: HttpRequest, name: str, default: str = "") -> str:
    """One request header, read from META: `request.headers` builds a dict of every header."""
    return str(request.META.get("HTTP_" + name.upper().replace("-", "_"), default))


# A view keeps its own signature (and its request type) through the decorator.
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def fhir_view(*, auth: bool = True) -> Callable[[View], View]:
    """Map every failure to an OperationOutcome; require a bearer token unless `auth` is False."""

    def decorate(view: View) -> View:
        @csrf_exempt  # bearer tokens only: no cookie identifies the caller on /fhir/
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if auth and getattr(request, "actor", None) is None:
                    raise FhirError(
                        401,
                        "A valid, unexpired bearer token is required (Authorization: Bearer <token>).",
                    )
                negotiate(request)
                if auth:
                    enforce_scopes(request, view.__name__, kwargs)
                _check_query(request)
                return view(request, *args, **kwargs)
            except DomainError as exc:
                error = from_domain_error(exc)
            except FhirError as exc:
                error = exc
            except Exception:  # the promise is an OperationOutcome, never an HTML error page
                logger.exception("FHIR request failed: %s %s", request.method, request.path)
                error = FhirError(500, "The server could not process the request.")
            headers = {"WWW_Authenticate": "Bearer"} if error.status == 401 else {}
            return respond(error.outcome(), error.status, **headers)

        return cast(View, wrapper)

    return decorate


# What a client may ask for (Accept or _format): JSON only. XML is refused with 406 for every
# interaction, before anything is read or written, rather than answered in JSON it did not ask for.
JSON_MEDIA = {
    "*/*",
    "application/*",
    FHIR_JSON,
    "application/json",
    "application/json+fhir",
    "application/fhir+ndjson",
    "application/ndjson",
}
JSON_FORMATS = {"json", "application/json", FHIR_JSON, "application/json+fhir"}


def negotiate(request: HttpRequest) -> None:
    """406 unless the response can be JSON (the only format served)."""
    fmt = request.GET.get("_format")
    if fmt is not None and fmt.replace(" ", "+") not in JSON_FORMATS:
        raise FhirError(406, f"Only JSON is served (_format=json), not {fmt!r}.")
    accept = header(request, "Accept").strip()
    if not accept or accept in JSON_MEDIA:  # one JSON media type, no parameters: the usual
        return
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        if quality.strip() not in ("0", "0.0", "0.00", "0.000"):
            ranges.append(media.lower())
    if not any(media in JSON_MEDIA for media in ranges):
        raise FhirError(
            406, f"Only {FHIR_JSON} is served; the request accepts only {accept[:100]!r}."
        )


def _actor(request: ActorRequest) -> Actor:
    return request.actor


def _body(request: HttpRequest, *, limit: int = MAX_RESOURCE_BYTES, checked: bool = True) -> Any:
    """The parsed JSON body, within the size limit and the input limits (core.input_limits;
    `checked` False: the caller checks them, see validation.parse_received).

    The size is checked before reading, from Content-Length, and the stream is read directly
    rather than through `request.body`, whose DATA_UPLOAD_MAX_MEMORY_SIZE check (meant for forms)
    would otherwise answer every FHIR body above 2.5 MB with a 500.
    """
    content_type = request.content_type or ""
    if content_type not in ACCEPTED_BODY_TYPES:
        raise FhirError(
            415, f"Send {FHIR_JSON} (or application/json), not {content_type or 'nothing'}."
        )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _too_large(limit)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, f"The body is not valid JSON: {exc}") from None
    if checked:
        check_limits(data)
    return data


def _check_query(request: HttpRequest) -> None:
    try:
        for key, values in request.GET.lists():
            check_text(key, key)
            for value in values:
                check_text(value, key)
    except InputProblem as problem:
        raise FhirError(
            400, f"Search parameter {problem}", expressions=[(problem.path, problem.message)]
        ) from None


def _too_large(limit: int) -> FhirError:
    return FhirError(
        413,
        f"The request body is larger than {limit // (1024 * 1024)} MB, the limit for this "
        f"endpoint ({MAX_BUNDLE_BYTES // (1024 * 1024)} MB for a Bundle posted to the base, "
        f"{MAX_RESOURCE_BYTES // (1024 * 1024)} MB for one resource).",
    )


def _handler(resource_type: str, interaction: str) -> Handler:
    handler = HANDLERS.get(resource_type)
    if handler is None:
        raise FhirError(404, f"Resource type {resource_type!r} is not supported by this server.")
    if interaction not in handler.interactions:
        raise FhirError(405, f"{resource_type} does not support {interaction}.")
    return handler


@fhir_view(auth=False)
def metadata(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET for the CapabilityStatement.")
    return respond(capability_statement(base_url(request)))


@fhir_view()
def root(request: ActorRequest) -> HttpResponse:
    if request.method != "POST":
        raise FhirError(405, "POST a transaction or batch Bundle to the base URL.")
    body = _body(request, limit=MAX_BUNDLE_BYTES)
    return respond(process_bundle(_actor(request), body, base_url(request)))


def _prefer(request: HttpRequest) -> dict[str, str]:
    """The Prefer header's settings, e.g. {"return": "minimal", "handling": "strict"}."""
    out = {}
    for part in header(request, "Prefer").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key:
                out[key.lower()] = value.strip().strip('"').lower()
    return out


def _written(
    request: HttpRequest, data: dict[str, Any], status: int, obj: Any = None
) -> HttpResponse:
    """A create or update's answer as the client prefers: the resource (default), nothing
    (return=minimal) or an OperationOutcome; always with the version's headers."""
    headers = history.version_headers(base_url(request), data, location=status == 201)
    wanted = _prefer(request).get("return", "representation")
    if wanted == "minimal":
        return respond(None, status, **headers)
    if wanted == "operationoutcome":
        # Warnings a write produced (e.g. a stated total that disagrees with the answers).
        verb = "Created" if status == 201 else "Updated"
        issues = [information(f"{verb} {data['resourceType']}/{data['id']}.")["issue"][0]]
        issues += getattr(obj, "fhir_issues", [])
        return respond(operation_outcome(issues), status, **headers)
    return respond(data, status, **headers)


@fhir_view()
def type_level(request: ActorRequest, resource_type: str) -> HttpResponse:
    actor = _actor(request)
    if request.method == "GET":
        handler = _handler(resource_type, "search-type")
        strict = _prefer(request).get("handling") == "strict"
        return respond(run_search(actor, handler, request.GET, base_url(request), strict=strict))
    if request.method == "POST":
        handler = _handler(resource_type, "create")
        raw = _body(request, checked=False)
        resource = parse_received(raw, expected=resource_type)  # the input limits too
        condition = header(request, "If-None-Exist")
        # On SQLite the transaction holds the database's one write lock from start to commit:
        # what can be looked up and checked before it (Handler.stage_create) is, so that
        # concurrent creates queue for the lock only while their rows are written (issue 13).
        # A conditional create decides on its match inside the transaction.
        staged = (
            handler.stage_create(actor, resource, raw)
            if not condition and handler.stages(resource)
            else None
        )
        with transaction.atomic():
            existing = (
                conditional.match_one(actor, handler, condition, base_url(request))
                if condition
                else None
            )
            if existing is not None:  # nothing is created: the match answers 200
                return _written(request, existing, 200)
            obj = staged() if staged is not None else handler.create_from(actor, resource, raw)
            data = history.written(actor, handler, obj, raw, history.Method.CREATE)
        return _written(request, data, 201, obj)
    if request.method == "PUT" and request.GET:
        # Conditional update: the one match is updated; no match creates; several: 412.
        handler = _handler(resource_type, "update")
        raw = _body(request, checked=False)
        resource = parse_received(raw, expected=resource_type)  # the input limits too
        with transaction.atomic():
            target = conditional.match_for_update(actor, handler, request.GET, base_url(request))
            if target is None:
                _handler(resource_type, "create")
                if resource.id is not None:
                    raise FhirError(
                        400, "A conditional update that matches nothing creates: send no id."
                    )
                obj = handler.create_from(actor, resource, raw)
                data = history.written(actor, handler, obj, raw, history.Method.CREATE)
                return _written(request, data, 201, obj)
            if resource.id not in (None, target):
                raise FhirError(
                    400, f"The resource id ({resource.id!r}) is not the matched one ({target!r})."
                )
            resource.id = target
            raw = {**raw, "id": target}
            obj = handler.update_from(actor, target, resource, raw)
            data = history.written(actor, handler, obj, raw, history.Method.UPDATE)
        return _written(request, data, 200, obj)
    raise FhirError(405, f"{request.method} is not allowed on {resource_type}.")


@fhir_view()
def search_post(request: ActorRequest, resource_type: str) -> HttpResponse:
    """POST Type/_search: the parameters in a form body (and the URL), as a GET search."""
    if request.method != "POST":
        raise FhirError(405, "POST a form (application/x-www-form-urlencoded) to _search.")
    if request.content_type != "application/x-www-form-urlencoded":
        raise FhirError(415, "Send the search parameters as application/x-www-form-urlencoded.")
    handler = _handler(resource_type, "search-type")
    query = request.GET.copy()
    for key, values in request.POST.lists():
        for value in values:
            query.appendlist(key, value)
    strict = _prefer(request).get("handling") == "strict"
    return respond(run_search(_actor(request), handler, query, base_url(request), strict=strict))


@fhir_view()
def instance_level(request: ActorRequest, resource_type: str, resource_id: str) -> HttpResponse:
    actor = _actor(request)
    if request.method == "GET":
        handler = _handler(resource_type, "read")
        if "delete" in handler.interactions and history.is_deleted(resource_type, resource_id):
            actor.require(Cap.CLINICAL_VIEW)
            raise history.gone(resource_type, resource_id)
        data = overlay([handler.read(actor, resource_id)])[0]
        return respond(data, 200, **history.version_headers(base_url(request), data))
    if request.method == "PUT":
        handler = _handler(resource_type, "update")
        raw = _body(request, checked=False)
        resource = parse_received(raw, expected=resource_type)  # the input limits too
        if resource.id != resource_id:
            raise FhirError(
                400,
                f"The resource id ({resource.id!r}) must match the URL ({resource_id!r}).",
                expressions=[(f"{resource_type}.id", "must match the URL")],
            )
        expected = parse_if_match(request.headers.get("If-Match"))
        with transaction.atomic():
            if "delete" in handler.interactions and history.is_deleted(resource_type, resource_id):
                raise history.gone(resource_type, resource_id)
            check_version(handler, actor, resource_id, expected)
            obj = handler.update_from(actor, resource_id, resource, raw)
            data = history.written(actor, handler, obj, raw, history.Method.UPDATE)
        return _written(request, data, 200, obj)
    if request.method == "DELETE":
        handler = _handler(resource_type, "delete")
        expected = parse_if_match(request.headers.get("If-Match"))
        with transaction.atomic():
            if history.is_deleted(resource_type, resource_id):
                actor.require(Cap.CLINICAL_EDIT)
                return respond(None, 204)  # deleting again changes nothing
            check_version(handler, actor, resource_id, expected)
            handler.delete(actor, resource_id)
            history.record_delete(actor, resource_type, resource_id)
        return respond(None, 204)
    raise FhirError(405, f"{request.method} is not allowed on a {resource_type}.")


@fhir_view()
def instance_history(request: ActorRequest, resource_type: str, resource_id: str) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET for _history.")
    handler = _handler(resource_type, "read")
    return respond(
        history.history_bundle(
            _actor(request),
            base_url(request),
            request.GET,
            handler=handler,
            resource_id=resource_id,
        )
    )


@fhir_view()
def vread(request: ActorRequest, resource_type: str, resource_id: str, vid: str) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET to read a version.")
    handler = _handler(resource_type, "read")
    data, _ = history.vread(_actor(request), handler, resource_id, vid)
    return respond(data, 200, **history.version_headers(base_url(request), data))


@fhir_view()
def type_history(request: ActorRequest, resource_type: str) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET for _history.")
    handler = _handler(resource_type, "read")
    return respond(
        history.history_bundle(_actor(request), base_url(request), request.GET, handler=handler)
    )


@fhir_view()
def system_history(request: ActorRequest) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET for _history.")
    return respond(
        history.history_bundle(
            _actor(request), base_url(request), request.GET, types=list(HANDLERS)
        )
    )


@fhir_view()
def patient_everything(request: ActorRequest, resource_id: str) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Use GET for $everything.")
    return respond(
        everything_op.patient_everything(_actor(request), resource_id, base_url(request))
    )


@fhir_view()
def unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise FhirError(404, f"No FHIR endpoint at {request.path}.")


__all__ = ["audit_record", "metadata", "root", "type_level", "instance_level", "patient_everything"]
