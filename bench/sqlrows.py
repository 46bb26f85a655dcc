"""The rows one "record a weight" API call writes, written with the sqlite3 module and no Django.

Both baselines use this: the raw insert rate (a loop over one connection) and the bare WSGI
handler. One call is the same transaction the service runs: look the patient up, insert the
weight, append the audit event with one INSERT (sealed into the hash chain later by the worker,
as ketaclinic does), in one IMMEDIATE transaction with the production PRAGMAs (synchronous=FULL).

Rows are built from a template row of the same table (the newest one), so a column someone adds
later is filled with a plausible value instead of breaking the baseline.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.settings.database import SQLITE_INIT_COMMAND


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection configured like Django's: same PRAGMAs, autocommit, explicit BEGIN."""
    conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
    conn.executescript(SQLITE_INIT_COMMAND)
    return conn


def _now() -> str:
    # Django's SQLite backend stores aware datetimes as naive UTC text with microseconds.
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _template(conn: sqlite3.Connection, table: str, where: str = "", args: tuple = ()) -> dict:
    cursor = conn.execute(f"SELECT * FROM {table} {where} ORDER BY id DESC LIMIT 1", args)  # noqa: S608
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError(f"{table} is empty: build the demo clinic first")
    return dict(zip([c[0] for c in cursor.description], row, strict=True))


class WeightWriter:
    """Records weights for one staff member of one organization, like `weights` POST does."""

    def __init__(self, conn: sqlite3.Connection, username: str = "prescriber") -> None:
        self.conn = conn
        member = conn.execute(
            "SELECT u.id, u.username, m.role, o.id, o.public_id FROM accounts_membership m"
            " JOIN accounts_user u ON u.id = m.user_id"
            " JOIN accounts_organization o ON o.id = m.organization_id"
            " WHERE u.username = ? AND m.is_active ORDER BY m.id LIMIT 1",
            (username,),
        ).fetchone()
        if member is None:
            raise RuntimeError(f"no active member {username!r}")
        self.user_id, self.username, self.role, self.organization_id, org_hex = member
        self.chain_key = str(uuid.UUID(org_hex))
        weight = _template(conn, "patients_bodyweight")
        event = _template(conn, "accounts_auditevent")
        for row in (weight, event):
            row.pop("id")
        if "entered_in_error" in weight:  # the newest row may be one withdrawn; a new one is not
            weight["entered_in_error"] = 0
        self.weight_template = weight
        self.event_template = event
        self.weight_sql = self._insert_sql("patients_bodyweight", weight)
        self.event_sql = self._insert_sql("accounts_auditevent", event)

    @staticmethod
    def _insert_sql(table: str, template: dict) -> str:
        columns = ", ".join(f'"{name}"' for name in template)
        marks = ", ".join(f":{name}" for name in template)
        return f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608

    def write(self, patient_public_id: str, value_kg: Decimal, client_address: str = "") -> dict:
        """One transaction. Returns the new weight (as the API would), or raises LookupError."""
        patient_hex = uuid.UUID(patient_public_id).hex
        weight_id = uuid.uuid4()
        now = _now()
        kg = str(value_kg.quantize(Decimal("0.01")))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute(
                "SELECT id FROM patients_patient WHERE public_id = ? AND organization_id = ?",
                (patient_hex, self.organization_id),
            ).fetchone()
            if found is None:
                raise LookupError("No such patient.")
            weight = dict(self.weight_template)
            weight.update(
                created_at=now,
                updated_at=now,
                public_id=weight_id.hex,
                source="clinic",
                external_id="",
                weight_kg=kg,
                entered_value=kg,
                entered_unit="kg",
                measured_at=now,
                organization_id=self.organization_id,
                recorded_by_id=self.user_id,
                patient_id=found[0],
            )
            conn.execute(self.weight_sql, weight)
            # The audit append as ketaclinic does it (accounts.audit): one INSERT, no chain-head
            # lock; the worker seals it into the hash chain later, outside the request.
            fields: dict[str, Any] = {
                "chain_key": self.chain_key,
                "seq": None,
                "occurred_at": now,
                "organization_id": self.organization_id,
                "actor_id": self.user_id,
                "actor_username": self.username,
                "role": self.role,
                "action": "patients.weight.recorded",
                "outcome": "success",
                "patient_id": patient_hex,
                "object_type": "BodyWeight",
                "object_id": str(weight_id),
                "client_address": client_address,
                "channel": "api",
                "detail": json.dumps({"weight_kg": kg}),
            }
            event = dict(self.event_template)
            event.update(fields, prev_hash="", hash="")
            conn.execute(self.event_sql, event)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {
            "id": str(weight_id),
            "weight_kg": kg,
            "entered_value": kg,
            "entered_unit": "kg",
            "measured_at": now,
            "source": "clinic",
        }
