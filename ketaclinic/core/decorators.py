"""View decorators: a logged-in staff member with an organization, and optionally a capability."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse

from ketaclinic.core.errors import DomainError

# A view keeps its own signature (and its request type) through the decorator.
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def staff_view(capability: str | None = None) -> Callable[[View], View]:
    """Require a member of an organization; map the application's errors to pages.

    A Forbidden or NotFound raised by a service or selector becomes a 403/404 page here, once,
    instead of in every view.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            actor = getattr(request, "actor", None)
            if not request.user.is_authenticated or actor is None:
                return redirect_to_login(request.get_full_path())
            try:
                if capability is not None:
                    actor.require(capability)
                return view(request, *args, **kwargs)
            except DomainError as error:
                return TemplateResponse(
                    request, "core/error.html", {"error": error}, status=error.status
                )

        return cast(View, wrapper)

    return decorator
