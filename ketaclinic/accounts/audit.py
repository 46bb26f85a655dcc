"""The append-only, hash-chained audit trail.

Each organization has its own chain (so clinics in a network do not queue behind each other); each
event stores the previous event's hash, and its own hash covers every recorded field. Appending
locks the chain head row (PostgreSQL) or runs inside SQLite's IMMEDIATE write lock, so sequence
numbers are gap-free and the chain is linear. `audit_chain_verify` recomputes every hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from ketaclinic.accounts.models import AuditChain, AuditEvent, Organization, User
from ketaclinic.core import clock

if TYPE_CHECKING:
    from ketaclinic.accounts.actor import Actor

SYSTEM_CHAIN = "system"
GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "chain_key",
    "seq",
    "occurred_at",
    "organization_id",
    "actor_id",
    "actor_username",
    "role",
    "action",
    "outcome",
    "patient_id",
    "object_type",
    "object_id",
    "client_address",
    "channel",
    "detail",
)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(
        {name: _canonical(fields[name]) for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# Events written while the current request runs (accounts.phi_audit.PhiAuditMiddleware resets
# it per request): a PHI request that recorded none gets one generic event there.
events_in_request: ContextVar[int] = ContextVar("audit_events_in_request", default=0)


def audit_record(
    *,
    actor: Actor | None,
    action: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    patient_id: uuid.UUID | None = None,
    obj: Any = None,
    detail: dict[str, Any] | None = None,
    organization: Organization | None = None,
    user: User | None = None,
    channel: str = "",
    client_address: str = "",
) -> AuditEvent:
    """Append one event. Call inside the transaction of the change it records."""
    if actor is not None:
        organization = organization or actor.organization
        user = user or actor.user
        channel = channel or actor.channel
        client_address = client_address or actor.client_address
    chain_key = str(organization.public_id) if organization else SYSTEM_CHAIN
    with transaction.atomic():
        head = _locked_chain_head(chain_key)
        fields: dict[str, Any] = {
            "chain_key": chain_key,
            "seq": head.last_seq + 1,
            # Truncated to microseconds so the stored value hashes the same after a round trip.
            "occurred_at": clock.now(),
            "organization_id": organization.pk if organization else None,
            "actor_id": user.pk if user else None,
            "actor_username": user.username if user else "",
            "role": actor.role if actor else "",
            "action": action,
            "outcome": str(outcome),
            "patient_id": str(patient_id) if patient_id else None,
            "object_type": type(obj).__name__ if obj is not None else "",
            "object_id": str(getattr(obj, "public_id", getattr(obj, "pk", ""))) if obj else "",
            "client_address": client_address,
            "channel": channel,
            "detail": _storable(detail or {}),
        }
        digest = event_hash(head.last_hash, fields)
        event = AuditEvent.objects.create(prev_hash=head.last_hash, hash=digest, **fields)
        AuditChain.objects.filter(pk=head.pk).update(last_seq=fields["seq"], last_hash=digest)
    events_in_request.set(events_in_request.get() + 1)
    return event


def _storable(value: Any) -> Any:
    """Details often quote what a client sent (a requested id, a user name); PostgreSQL's jsonb
    cannot hold U+0000, so it is recorded as U+FFFD instead of failing the request with a 500."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _locked_chain_head(chain_key: str) -> AuditChain:
    head = AuditChain.objects.select_for_update().filter(key=chain_key).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChain.objects.create(key=chain_key)
    except IntegrityError:
        pass  # another transaction created it first; lock theirs
    return AuditChain.objects.select_for_update().get(key=chain_key)


@dataclass(frozen=True)
class ChainBreak:
    chain_key: str
    seq: int
    event_id: int
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    chains: int
    events: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks


def audit_chain_verify(*, progress: Any = None) -> VerifyReport:
    """Recompute every chain; report the first broken link of each chain."""
    breaks: list[ChainBreak] = []
    events = 0
    chain_keys = list(AuditChain.objects.values_list("key", flat=True).order_by("key"))
    for chain_key in chain_keys:
        expected_prev = GENESIS_HASH
        expected_seq = 1
        for event in _events_of_chain(chain_key):
            events += 1
            if progress is not None:
                progress.update(1)
            reason = ""
            if event.seq != expected_seq:
                reason = f"sequence gap: expected {expected_seq}, found {event.seq}"
            elif event.prev_hash != expected_prev:
                reason = "previous-hash link does not match the preceding event"
            elif event_hash(event.prev_hash, _stored_fields(event)) != event.hash:
                reason = "event content does not match its hash (altered after writing)"
            if reason:
                breaks.append(ChainBreak(chain_key, event.seq, event.pk, reason))
                break
            expected_prev = event.hash
            expected_seq += 1
        else:
            head = AuditChain.objects.get(key=chain_key)
            if head.last_seq != expected_seq - 1:
                breaks.append(
                    ChainBreak(chain_key, expected_seq, 0, "events missing at the end of the chain")
                )
    return VerifyReport(chains=len(chain_keys), events=events, breaks=breaks)


def _events_of_chain(chain_key: str) -> Iterator[AuditEvent]:
    return AuditEvent.objects.filter(chain_key=chain_key).order_by("seq").iterator(chunk_size=2000)


def _stored_fields(event: AuditEvent) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in HASHED_FIELDS}
    values["patient_id"] = str(event.patient_id) if event.patient_id else None
    return values
