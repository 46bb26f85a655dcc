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


def _stored_time(text: str) -> str:
    """An ISO time from a client, as the DateTimeField stores it on SQLite (naive UTC)."""
    moment = datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="microseconds")


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


class VitalsWriter:
    """Records one batch of vital signs on a session, like `POST .../vitals` does.

    The same statements as `sessions.services.vitals_record`: the session's key by its public
    id, then in one IMMEDIATE transaction the session re-read with what the service joins (its
    patient, plan, protocol, clinic), the rows (one executemany), the session's latest reading and
    one audit INSERT. Classification is a plain comparison with the default thresholds: the
    readings the bench sends are normal, so no alert is raised on either side.
    """

    def __init__(self, conn: sqlite3.Connection, username: str = "nurse") -> None:
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
        entry = _template(conn, "treatment_sessions_vitalsentry")
        event = _template(conn, "accounts_auditevent")
        for row in (entry, event):
            row.pop("id")
        self.entry_template = entry
        self.event_template = event
        self.entry_sql = WeightWriter._insert_sql("treatment_sessions_vitalsentry", entry)
        self.event_sql = WeightWriter._insert_sql("accounts_auditevent", event)

    def write(self, session_public_id: str, samples: list[dict], client_address: str = "") -> list:
        """One transaction; returns [{"id", "severity"}] per sample, or raises LookupError."""
        session_hex = uuid.UUID(session_public_id).hex
        conn = self.conn
        found = conn.execute(
            "SELECT id, patient_id FROM treatment_sessions_treatmentsession"
            " WHERE public_id = ? AND organization_id = ?",
            (session_hex, self.organization_id),
        ).fetchone()
        if found is None:
            raise LookupError("No such session.")
        now = _now()
        conn.execute("BEGIN IMMEDIATE")
        try:
            session = conn.execute(
                "SELECT s.id, s.state, s.policy_version_id, p.public_id, pl.id, pr.id, c.id"
                " FROM treatment_sessions_treatmentsession s"
                " JOIN patients_patient p ON p.id = s.patient_id"
                " JOIN protocols_treatmentplan pl ON pl.id = s.plan_id"
                " JOIN protocols_protocolversion pr ON pr.id = s.protocol_id"
                " JOIN accounts_clinic c ON c.id = s.clinic_id WHERE s.id = ?",
                (found[0],),
            ).fetchone()
            rows, answer = [], []
            for sample in samples:
                public_id = uuid.uuid4()
                row = dict(self.entry_template)
                row.update(
                    created_at=now,
                    updated_at=now,
                    public_id=public_id.hex,
                    organization_id=self.organization_id,
                    session_id=session[0],
                    recorded_by_id=self.user_id,
                    taken_at=_stored_time(sample["taken_at"]),
                    predose=0,
                    systolic=sample.get("systolic"),
                    diastolic=sample.get("diastolic"),
                    heart_rate=sample.get("heart_rate"),
                    spo2=sample.get("spo2"),
                    respiratory_rate=sample.get("respiratory_rate"),
                    alerts="[]",
                    severity="",
                )
                rows.append(row)
                answer.append({"id": str(public_id), "severity": ""})
            conn.executemany(self.entry_sql, rows)
            last = max(samples, key=lambda s: s["taken_at"])
            conn.execute(
                "UPDATE treatment_sessions_treatmentsession SET last_vitals = ?, last_alert_severity = ?,"
                " state = ?, state_changed_at = state_changed_at, updated_at = ? WHERE id = ?",
                (json.dumps({"taken_at": last["taken_at"], "bp": "", "alerts": []}), "",
                 session[1], now, session[0]),
            )  # fmt: skip
            event = dict(self.event_template)
            event.update(
                chain_key=self.chain_key,
                seq=None,
                occurred_at=now,
                organization_id=self.organization_id,
                actor_id=self.user_id,
                actor_username=self.username,
                role=self.role,
                action="sessions.vitals.recorded",
                outcome="success",
                patient_id=session[3],
                object_type="TreatmentSession",
                object_id=session_public_id,
                client_address=client_address,
                channel="api",
                detail=json.dumps({"session": session_public_id, "count": len(rows)}),
                prev_hash="",
                hash="",
            )
            conn.execute(self.event_sql, event)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return answer
