"""The application's one error family, mapped once to HTTP by each interface (UI, API, FHIR).

Services raise these; they never return half-done work. Each error names the fields at fault so a
form, a JSON client and a FHIR client can all point at the exact input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    """Base of every error a service raises on purpose. Maps to HTTP 400."""

    status = 400
    code = "invalid"

    def __init__(self, detail: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)

    @classmethod
    def for_field(cls, field: str, message: str) -> DomainError:
        return cls(message, [FieldError(field, message)])

    def renamed(self, names: dict[str, str], default: str | None = None) -> DomainError:
        """The same error with its fields named as the caller's interface names them (a field
        not in `names` keeps its name, or takes `default` when given)."""
        fields = [
            FieldError(names.get(e.field, e.field if default is None else default), e.message)
            for e in self.errors
        ]
        return type(self)(self.detail, fields)


class ValidationFailed(DomainError):
    """Input that is malformed or impossible (a birth date in the future, a 900 kg weight)."""

    status = 400
    code = "invalid"


class SafetyStop(DomainError):
    """A clinical safety rule refused the action (dose above cap, no consent, BP above gate)."""

    status = 422
    code = "business-rule"


class Conflict(DomainError):
    """The action collides with the current state (duplicate MRN, a signed note, a race)."""

    status = 409
    code = "conflict"


class NotFound(DomainError):
    """Unknown object, or one in another organization: the two are indistinguishable on purpose."""

    status = 404
    code = "not-found"


class Forbidden(DomainError):
    """The actor's role lacks the capability."""

    status = 403
    code = "forbidden"
