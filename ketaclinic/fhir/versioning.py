"""If-Match on update and delete: a write based on a stale read is refused (412), not applied.

The version is `meta.versionId` (see `common.version_id`); the server sends it as a weak ETag.
Used by the REST views (the If-Match header) and by Bundle entries (`request.ifMatch`).
"""

from __future__ import annotations

import re

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import Handler

_ETAG = re.compile(r'\s*(?:W/)?"([^"]+)"\s*')


def parse_if_match(raw: str | None) -> str | None:
    """The version an If-Match names, or None when the client sent none."""
    if raw is None:
        return None
    match = _ETAG.fullmatch(raw)
    if match is None:
        raise FhirError(400, 'If-Match must be an ETag as sent by this server, e.g. W/"123".')
    return match.group(1)


def check_version(handler: Handler, actor: Actor, resource_id: str, expected: str | None) -> None:
    """Refuse a write based on a stale read (a lost update), when the client says what it read.

    Call inside the write's transaction: the current version is read under a row lock.
    """
    if expected is None:
        return
    current = handler.current_version(actor, resource_id)
    if current is None:
        raise FhirError(400, f"{handler.type} updates are not version-checked: send no If-Match.")
    if current != expected:
        raise FhirError(
            412,
            f"{handler.type}/{resource_id} has changed since version {expected} (it is now "
            f"{current}): read it again and reapply the change.",
        )
