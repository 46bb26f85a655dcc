"""The rows one "record a weight" API call writes, on PostgreSQL with psycopg and no Django: the
bare baseline's transaction (bench.sqlrows.WeightWriter's twin).

The same statements as the service: the patient by its public id in the organization, the
weight, the audit event appended with one INSERT (sealed later by the worker), in one
transaction with `synchronous_commit=on` (the server's default, as ketaclinic runs it). Rows are
built from the newest row of each table, so a column added later gets a plausible value.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=False)


def _template(conn: psycopg.Connection, table: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id DESC LIMIT 1")  # noqa: S608
        row = cursor.fetchone()
    conn.rollback()
    if row is None:
        raise RuntimeError(f"{table} is empty: build the demo clinic first")
    row.pop("id")
    return {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in row.items()}


def _insert_sql(table: str, template: dict[str, Any]) -> str:
    columns = ", ".join(f'"{name}"' for name in template)
    marks = ", ".join(f"%({name})s" for name in template)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608


class PgWeightWriter:
    """Records weights for one staff member of one organization, like `weights` POST does."""

    def __init__(self, conn: psycopg.Connection, username: str = "prescriber") -> None:
        self.conn = conn
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT u.id, u.username, m.role, o.id, o.public_id FROM accounts_membership m"
                " JOIN accounts_user u ON u.id = m.user_id"
                " JOIN accounts_organization o ON o.id = m.organization_id"
                " WHERE u.username = %s AND m.is_active ORDER BY m.id LIMIT 1",
                (username,),
            )
            member = cursor.fetchone()
        conn.rollback()
        if member is None:
            raise RuntimeError(f"no active member {username!r}")
        self.user_id, self.username, self.role, self.organization_id, org = member
        self.chain_key = str(org)
        self.weight_template = _template(conn, "patients_bodyweight")
        self.weight_template["entered_in_error"] = False
        self.event_template = _template(conn, "accounts_auditevent")
        self.weight_sql = _insert_sql("patients_bodyweight", self.weight_template)
        self.event_sql = _insert_sql("accounts_auditevent", self.event_template)

    def token_membership(self, key_hash: str) -> int | None:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT membership_id FROM accounts_apitoken"
                " WHERE key_hash = %s AND revoked_at IS NULL AND expires_at > %s",
                (key_hash, datetime.now(UTC)),
            )
            row = cursor.fetchone()
        self.conn.rollback()
        return row[0] if row else None

    def write(self, patient_public_id: str, value_kg: Decimal, client_address: str = "") -> dict:
        """One transaction. Returns the new weight (as the API would), or raises LookupError."""
        patient = uuid.UUID(patient_public_id)
        weight_id = uuid.uuid4()
        now = datetime.now(UTC)
        kg = value_kg.quantize(Decimal("0.01"))
        conn = self.conn
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM patients_patient WHERE public_id = %s AND organization_id = %s",
                    (patient, self.organization_id),
                )
                found = cursor.fetchone()
                if found is None:
                    raise LookupError("No such patient.")
                weight = dict(self.weight_template)
                weight.update(
                    created_at=now, updated_at=now, public_id=weight_id, source="clinic",
                    external_id="", weight_kg=kg, entered_value=kg, entered_unit="kg",
                    measured_at=now, organization_id=self.organization_id,
                    recorded_by_id=self.user_id, patient_id=found[0],
                )  # fmt: skip
                cursor.execute(self.weight_sql, weight)
                event = dict(self.event_template)
                event.update(
                    chain_key=self.chain_key, seq=None, occurred_at=now,
                    organization_id=self.organization_id, actor_id=self.user_id,
                    actor_username=self.username, role=self.role,
                    action="patients.weight.recorded", outcome="success", patient_id=patient,
                    object_type="BodyWeight", object_id=str(weight_id),
                    client_address=client_address, channel="api",
                    detail=Jsonb({"weight_kg": str(kg)}), prev_hash="", hash="",
                )  # fmt: skip
                cursor.execute(self.event_sql, event)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return {
            "id": str(weight_id),
            "weight_kg": str(kg),
            "entered_value": str(kg),
            "entered_unit": "kg",
            "measured_at": now.isoformat(),
            "source": "clinic",
        }


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
