"""The append-only, hash-chained audit trail.

Writing and sealing are two steps (docs/ARCHITECTURE.md, "Audit trail"):

1. `audit_record` appends one row with one INSERT inside the transaction of the change it
   records: no chain-head lock, no SAVEPOINT, no ORM instance. Its primary key comes from the
   database's own sequence, so two writes of one clinic never wait for each other here.
2. `audit_seal` (the worker, every few seconds) takes each organization's chain head under a
   row lock, gives the unsealed rows of that chain the next sequence numbers in primary-key order,
   and hashes them into the chain: each sealed row stores the previous row's hash, and its own
   hash covers every recorded field and its sequence number.

`audit_chain_verify` recomputes every sealed row's hash, finds a gap, an edit or a reordering,
and counts the rows not sealed yet (their tamper evidence starts when they are sealed).
Rows written before this design were sealed when written; their hashes are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction

from ketaclinic.accounts.models import AuditChain, AuditEvent, Organization, User
from ketaclinic.core import clock, rows

if TYPE_CHECKING:
    from ketaclinic.accounts.actor import Actor

SYSTEM_CHAIN = "system"
GENESIS_HASH = "0" * 64
SEAL_BATCH = 5000
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
# What the request writes; the worker adds seq, prev_hash and hash when it seals the row.
_APPENDED = (
    "chain_key",
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
    "prev_hash",
    "hash",
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
# While a request runs (`refusals_kept`): how deep the atomic blocks were when it began, and the
# refusals recorded inside a transaction it opened, with their row values. None outside one.
_Refusals = tuple[int, list[tuple[int, tuple[Any, ...]]]]
_refusals_in_transaction: ContextVar[_Refusals | None] = ContextVar(
    "audit_refusals_in_transaction", default=None
)

_insert_sql: dict[str, str] = {}


def _insert_statement(db: Any) -> str:
    vendor = db.vendor
    if vendor not in _insert_sql:
        table = db.ops.quote_name(AuditEvent._meta.db_table)
        columns = ", ".join(db.ops.quote_name(name) for name in _APPENDED)
        marks = ", ".join("%s::jsonb" if n == "detail" and vendor == "postgresql" else "%s"
                          for n in _APPENDED)  # fmt: skip
        # Built from the model's own table and column names, never from input.
        _insert_sql[vendor] = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
    return _insert_sql[vendor]


def audit_record(
    *,
    actor: Actor | None,
    action: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    patient_id: uuid.UUID | str | None = None,
    obj: Any = None,
    detail: dict[str, Any] | None = None,
    organization: Organization | None = None,
    user: User | None = None,
    channel: str = "",
    client_address: str = "",
) -> int:
    """Append one (unsealed) event with one INSERT; returns its id. Call inside the transaction
    of the change it records, so the event exists exactly when the change does."""
    db = connections[DEFAULT_DB_ALIAS]  # looked up once: `connection` is a context-local proxy
    organization_id = organization.pk if organization is not None else None
    chain_key = str(organization.public_id) if organization is not None else SYSTEM_CHAIN
    user_id, username, role = (user.pk, user.username, "") if user is not None else (None, "", "")
    if actor is not None:
        if organization is None:
            organization_id, chain_key = actor.organization_id, actor.chain_key
        if user is None:
            user_id, username = actor.user_id, actor.username
        role = actor.role
        channel = channel or actor.channel
        client_address = client_address or actor.client_address
    # UUIDs are stored the way the UUIDField stores them (32 hex digits on SQLite).
    patient: uuid.UUID | str | None = None
    if patient_id:
        parsed = patient_id if type(patient_id) is uuid.UUID else uuid.UUID(str(patient_id))
        patient = parsed if db.vendor == "postgresql" else parsed.hex
    values = (
        chain_key,
        _prep_time(clock.now(), db),
        organization_id,
        user_id,
        username,
        role,
        action,
        str(outcome),
        patient,
        type(obj).__name__ if obj is not None else "",
        str(getattr(obj, "public_id", getattr(obj, "pk", ""))) if obj is not None else "",
        client_address,
        channel,
        json.dumps(_storable(detail or {})),
        "",
        "",
    )
    event_id = rows.execute_insert(db, _insert_statement(db), values, "id")
    events_in_request.set(events_in_request.get() + 1)
    if str(outcome) == AuditEvent.Outcome.DENIED:
        kept = _refusals_in_transaction.get()
        if kept is not None and len(db.atomic_blocks) > kept[0]:
            kept[1].append((event_id, values))
    return event_id


@contextmanager
def refusals_kept() -> Iterator[None]:
    """Around a request: a refusal audited inside a transaction (a patient lookup denied in a
    FHIR create, say) is rolled back with it when the refusal's error ends the transaction, yet
    the refusal happened. After the request, each refusal the transaction took with it is
    written again, as it was, in a statement of its own."""
    # Blocks already open (a test's own transaction) are not the request's: a refusal recorded
    # directly in them is not at risk from the request's rollbacks.
    refusals: list[tuple[int, tuple[Any, ...]]] = []
    depth = len(connections[DEFAULT_DB_ALIAS].atomic_blocks)
    token = _refusals_in_transaction.set((depth, refusals))
    try:
        yield
    finally:
        _refusals_in_transaction.reset(token)
    if refusals:
        _write_back(refusals)


def _write_back(refusals: list[tuple[int, tuple[Any, ...]]]) -> None:
    db = connections[DEFAULT_DB_ALIAS]
    table = db.ops.quote_name(AuditEvent._meta.db_table)
    detail = "%s::jsonb" if db.vendor == "postgresql" else "%s"
    # The same row, not merely the same id: an id rolled back may be taken again by a later
    # INSERT on SQLite. Built from the model's own names, never from input.
    sql = (
        f"SELECT 1 FROM {table} WHERE id = %s AND action = %s AND occurred_at = %s"  # noqa: S608
        f" AND actor_username = %s AND detail = {detail}"
    )
    action, occurred_at = _APPENDED.index("action"), _APPENDED.index("occurred_at")
    username, details = _APPENDED.index("actor_username"), _APPENDED.index("detail")
    for event_id, values in refusals:
        kept = rows.execute(
            db,
            sql,
            [event_id, values[action], values[occurred_at], values[username], values[details]],
        )
        if kept is None:
            rows.execute(db, _insert_statement(db), values, fetch=False)


def _prep_time(value: datetime, db: Any) -> Any:
    """The column value the DateTimeField would write (naive UTC text on SQLite)."""
    prepare = _time_preparers.get(db.vendor)
    if prepare is None:
        prepare = _time_preparers[db.vendor] = rows.preparer(_OCCURRED_AT, db)
    return prepare(value)


_OCCURRED_AT = AuditEvent._meta.get_field("occurred_at")
_time_preparers: dict[str, rows.Preparer] = {}


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


# --- sealing (the worker) ---------------------------------------------------------------------


def audit_seal(*, batch: int = SEAL_BATCH) -> int:
    """Seal every chain's unsealed rows into its hash chain; returns how many were sealed."""
    sealed = 0
    keys = (
        AuditEvent.objects.filter(seq__isnull=True)
        .values_list("chain_key", flat=True)
        .distinct()
        .order_by()
    )
    for chain_key in list(keys):
        while True:
            count = _seal_chain(chain_key, batch)
            sealed += count
            if count < batch:
                break
    return sealed


def _seal_chain(chain_key: str, batch: int) -> int:
    with transaction.atomic():
        head = _locked_chain_head(chain_key)
        # Read after the lock: a second worker's seal is committed and visible by now.
        # The hashed columns only, as tuples: a model instance per row cost about a third of
        # the seal's CPU, paid by every audited write (the bench counts the worker's CPU).
        rows = list(
            AuditEvent.objects.filter(chain_key=chain_key, seq__isnull=True)
            .order_by("id")
            .values_list("pk", *_SEALED_READ)[:batch]
        )
        if not rows:
            return 0
        seq, prev = head.last_seq, head.last_hash
        updates = []
        for pk, *values in rows:
            seq += 1
            fields = dict(zip(_SEALED_READ, values, strict=True))
            fields["seq"] = seq
            fields["patient_id"] = str(fields["patient_id"]) if fields["patient_id"] else None
            digest = event_hash(prev, fields)  # the same fields as _stored_fields(row)
            updates.append((seq, prev, digest, pk))
            prev = digest
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with connection.cursor() as cursor:
            # The one place a stored event changes: from unsealed to sealed, never again.
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s"  # noqa: S608
                " WHERE id = %s AND seq IS NULL",
                updates,
            )
        AuditChain.objects.filter(pk=head.pk).update(last_seq=seq, last_hash=prev)
    return len(rows)


_SEALED_READ = tuple(name for name in HASHED_FIELDS if name != "seq")


def _locked_chain_head(chain_key: str) -> AuditChain:
    head = AuditChain.objects.select_for_update().filter(key=chain_key).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChain.objects.create(key=chain_key)
    except IntegrityError:
        pass  # another worker created it first; lock theirs
    return AuditChain.objects.select_for_update().get(key=chain_key)


# --- verification -----------------------------------------------------------------------------


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
    unsealed: int = 0  # appended, not yet hashed into a chain: not covered by this check
    oldest_unsealed_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.breaks


def audit_chain_verify(*, progress: Any = None) -> VerifyReport:
    """Recompute every chain's sealed rows; report the first broken link of each chain, and how
    many rows wait to be sealed."""
    breaks: list[ChainBreak] = []
    events = 0
    heads = dict(AuditChain.objects.values_list("key", "last_seq"))
    sealed_keys = set(
        AuditEvent.objects.filter(seq__isnull=False)
        .values_list("chain_key", flat=True)
        .distinct()
        .order_by()
    )
    chain_keys = sorted(set(heads) | sealed_keys)
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
                breaks.append(ChainBreak(chain_key, event.seq or 0, event.pk, reason))
                break
            expected_prev = event.hash
            expected_seq += 1
        else:
            if chain_key not in heads:
                breaks.append(ChainBreak(chain_key, 0, 0, "the chain head is missing"))
            elif heads[chain_key] != expected_seq - 1:
                breaks.append(
                    ChainBreak(chain_key, expected_seq, 0, "events missing at the end of the chain")
                )
    unsealed = AuditEvent.objects.filter(seq__isnull=True)
    oldest = unsealed.order_by("id").values_list("occurred_at", flat=True).first()
    return VerifyReport(
        chains=len(chain_keys),
        events=events,
        breaks=breaks,
        unsealed=unsealed.count(),
        oldest_unsealed_at=oldest,
    )


def _events_of_chain(chain_key: str) -> Iterator[AuditEvent]:
    return (
        AuditEvent.objects.filter(chain_key=chain_key, seq__isnull=False)
        .order_by("seq")
        .iterator(chunk_size=2000)
    )


def _stored_fields(event: AuditEvent) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in HASHED_FIELDS}
    values["patient_id"] = str(event.patient_id) if event.patient_id else None
    return values
