"""SMART v2 scopes (pure): `user/*.rs`, `system/Observation.cruds`, `patient/*.read` (v1 spelling).

A scope grants interactions on resource types; the token's membership (its role) still decides
what the person or service may do: a scope only narrows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# c create, r read (and vread, history), u update, d delete, s search
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
OPEN_SCOPES = frozenset({"openid", "fhirUser", "launch/patient", "offline_access", "launch"})
SUPPORTED = (
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
    "openid",
    "fhirUser",
)


@dataclass(frozen=True)
class Grant:
    context: str
    resource_type: str
    permissions: str


def parse(scope: str) -> list[Grant]:
    grants = []
    for item in scope.split():
        match = _SCOPE.match(item)
        if match is None:
            continue
        context, resource_type, perms = match.groups()
        perms = V1.get(perms, perms)
        if list(perms) != sorted(perms, key="cruds".index) or len(set(perms)) != len(perms):
            continue  # SMART v2: the letters in order, each once
        grants.append(Grant(context, resource_type, perms))
    return grants


def is_valid(scope: str) -> bool:
    """Every item is a scope this server knows."""
    items = scope.split()
    return bool(items) and all(i in OPEN_SCOPES or parse(i) for i in items)


def narrow(scope: str, contexts: tuple[str, ...]) -> str:
    """The requested scopes this kind of client may hold (user/* for staff apps, system/* for
    backend services), in the order asked."""
    kept = [
        item
        for item in scope.split()
        if item in OPEN_SCOPES or any(g.context in contexts for g in parse(item))
    ]
    return " ".join(kept)


def permits(scope: str, resource_type: str, interaction: str) -> bool:
    """Whether the scope allows `interaction` (one of c r u d s) on `resource_type`."""
    return any(
        g.resource_type in ("*", resource_type) and interaction in g.permissions
        for g in parse(scope)
    )
