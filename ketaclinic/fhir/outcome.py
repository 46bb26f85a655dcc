"""FHIR errors: every failure leaves as an OperationOutcome with the status that fits it.

Domain errors (ketaclinic.core.errors) map one to one; FHIR-level problems (malformed JSON, a
resource that fails the R4B model, an unsupported code) raise `FhirError` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from ketaclinic.core.errors import DomainError

# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "business-rule",
    500: "exception",
}


class FhirError(Exception):
    """A problem with a FHIR request, with the issues to report and the HTTP status."""

    def __init__(
        self, status: int, diagnostics: str, *, expressions: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        # (FHIRPath expression, message) pairs, one issue each.
        self.expressions = list(expressions)

    def outcome(self) -> dict[str, Any]:
        issue_type = ISSUE_TYPE.get(self.status, "processing")
        located = [(e, m) for e, m in self.expressions if e or m != self.diagnostics]
        if len(located) == 1:  # one problem: one issue, with both the summary and the location
            expression, message = located[0]
            text = (
                self.diagnostics if message in self.diagnostics else f"{self.diagnostics} {message}"
            )
            return operation_outcome([_issue(issue_type, text, expression)])
        issues = [_issue(issue_type, self.diagnostics)]
        issues += [_issue(issue_type, message, expression) for expression, message in located]
        return operation_outcome(issues)


def _issue(code: str, diagnostics: str, expression: str = "", severity: str = "error") -> dict:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return issue


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


def information(message: str) -> dict[str, Any]:
    return operation_outcome([_issue("informational", message, severity="information")])


def from_domain_error(exc: DomainError, *, prefix: str = "") -> FhirError:
    """A service's error, keeping each field it named as an issue."""
    expressions = [(f"{prefix}{e.field}" if prefix else e.field, e.message) for e in exc.errors]
    return FhirError(exc.status, exc.detail, expressions=expressions)


def from_validation_error(resource_type: str, exc: ValidationError) -> FhirError:
    """The R4B model refused the resource: one issue per problem, located by FHIRPath."""
    expressions = []
    for error in exc.errors()[:50]:
        path = ".".join(str(p) for p in error.get("loc", ()) if not str(p).startswith("function-"))
        expression = f"{resource_type}.{path}" if path else resource_type
        expressions.append((expression, f"{expression}: {error.get('msg', 'invalid')}"))
    return FhirError(
        400, f"The {resource_type} is not a valid FHIR R4 resource.", expressions=expressions
    )
