"""Encrypted, verifiable backups of the whole database, and their restore.

File format (version 1): the line `KETACLINIC-BACKUP-1`, then records, each a 4-byte big-endian
length and a Fernet token (AES-128-CBC + HMAC-SHA256, key from BACKUP_KEY). The first record is
the manifest (JSON: engine, time, row count of every table, SHA-256 and size of the payload, number
of chunks); the others are the payload in chunks of CHUNK_BYTES: SQLite's database file made with
the online backup API (a consistent copy while the clinic keeps working), or `pg_dump`'s custom
format. Every token is authenticated, so a wrong key fails on the first record; the payload's hash
in the manifest catches a dropped, repeated or reordered chunk.

BACKUP_KEY holds one or more Fernet keys separated by commas: the first encrypts, every one
decrypts (MultiFernet), so a key is rotated by putting the new one first and keeping the old
until the old backups have expired.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

MAGIC = b"KETACLINIC-BACKUP-1\n"
CHUNK_BYTES = 8 * 1024 * 1024
FORMAT_VERSION = 1


class BackupError(Exception):
    """The backup cannot be made or restored; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    engine: str
    created_at: str
    row_counts: dict[str, int]
    payload_sha256: str
    payload_bytes: int
    chunks: int
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupError(f"Unsupported backup format {data.get('format_version')!r}.")
        return cls(**data)


def backup_cipher(keys: str | None = None) -> MultiFernet:
    raw = settings.BACKUP_KEY if keys is None else keys
    parts = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not parts:
        raise ImproperlyConfigured(
            "BACKUP_KEY is not set: generate one with `ketaclinic backup --generate-key` and keep "
            "it apart from the backups (without it no backup can be read)."
        )
    try:
        return MultiFernet([Fernet(part.encode()) for part in parts])
    except ValueError:
        raise ImproperlyConfigured(
            "BACKUP_KEY: each comma-separated key must be a Fernet key (32 url-safe base64 bytes)."
        ) from None


def engine() -> str:
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {vendor}.")
    return vendor


def row_counts() -> dict[str, int]:
    """Rows in every table of the database (Django's and the application's)."""
    counts = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table.startswith("sqlite_"):
                continue
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            counts[table] = int(cursor.fetchone()[0])
    return counts


# --- Making a backup -------------------------------------------------------------------------


def backup_write(output: Path, *, progress: Callable[[int], Any] | None = None) -> Manifest:
    """Write an encrypted backup of the current database to `output` (atomically)."""
    cipher = backup_cipher()
    kind = engine()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ketaclinic-backup-") as work:
        payload = Path(work) / "payload"
        # The counts are taken from the very state the payload holds, so that a restore's
        # comparison is exact even while the clinic keeps writing during the backup.
        counts = _sqlite_dump(payload) if kind == "sqlite" else _pg_dump(payload)
        digest, size = _sha256(payload)
        chunks = max(1, -(-size // CHUNK_BYTES))
        manifest = Manifest(
            engine=kind,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            row_counts=counts,
            payload_sha256=digest,
            payload_bytes=size,
            chunks=chunks,
        )
        partial = output.with_name(output.name + ".partial")
        with partial.open("wb") as out, payload.open("rb") as source:
            out.write(MAGIC)
            _write_record(out, cipher.encrypt(manifest.to_json()))
            for _ in range(chunks):
                chunk = source.read(CHUNK_BYTES)
                _write_record(out, cipher.encrypt(chunk))
                if progress:
                    progress(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        partial.chmod(0o600)
        partial.replace(output)
    return manifest


def _sqlite_dump(target: Path) -> dict[str, int]:
    connection.ensure_connection()
    with sqlite3.connect(target) as copy:
        connection.connection.backup(
            copy
        )  # SQLite's online backup API: consistent while others write
        tables = [
            row[0]
            for row in copy.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {
            table: int(copy.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])  # noqa: S608
            for table in sorted(tables)
        }
    copy.close()
    return counts


def _pg_dump(target: Path) -> dict[str, int]:
    """pg_dump of one exported snapshot, counted inside the same snapshot."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        counts = row_counts()
        command = [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot}",
            "--file",
            str(target),
        ]
        _run_pg(command, with_dbname=True)
    return counts


def _pg_environment() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if db.get(key):
            env[var] = str(db[key])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _run_pg(command: list[str], *, with_dbname: bool) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (the PostgreSQL client tools).")
    if with_dbname:
        command = [*command, "--dbname", str(settings.DATABASES["default"]["NAME"])]
    result = subprocess.run(  # noqa: S603 - fixed program, arguments are ours
        command, env=_pg_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:2000]}")


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while block := source.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _write_record(out: IO[bytes], token: bytes) -> None:
    out.write(struct.pack(">I", len(token)))
    out.write(token)


# --- Reading and restoring -------------------------------------------------------------------


def _records(source: IO[bytes]) -> Iterator[bytes]:
    while header := source.read(4):
        if len(header) != 4:
            raise BackupError("The backup file is truncated.")
        (length,) = struct.unpack(">I", header)
        token = source.read(length)
        if len(token) != length:
            raise BackupError("The backup file is truncated.")
        yield token


def backup_read_manifest(path: Path, cipher: MultiFernet | None = None) -> Manifest:
    cipher = cipher or backup_cipher()
    with path.open("rb") as source:
        if source.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{path} is not a ketaclinic backup.")
        first = next(_records(source), None)
        if first is None:
            raise BackupError("The backup file is truncated.")
        return Manifest.from_json(_decrypt(cipher, first))


def _decrypt(cipher: MultiFernet, token: bytes) -> bytes:
    try:
        return cipher.decrypt(token)
    except InvalidToken:
        raise BackupError(
            "The backup cannot be decrypted: the BACKUP_KEY is wrong or the file was altered."
        ) from None


def backup_extract(
    path: Path, target: Path, *, progress: Callable[[int], Any] | None = None
) -> Manifest:
    """Decrypt and check the whole payload into `target`; nothing is restored on any doubt."""
    cipher = backup_cipher()
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        if source.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{path} is not a ketaclinic backup.")
        records = _records(source)
        first = next(records, None)
        if first is None:
            raise BackupError("The backup file is truncated.")
        manifest = Manifest.from_json(_decrypt(cipher, first))
        chunks = 0
        with target.open("wb") as out:
            for token in records:
                chunk = _decrypt(cipher, token)
                digest.update(chunk)
                size += len(chunk)
                chunks += 1
                out.write(chunk)
                if progress:
                    progress(len(chunk))
    if (chunks, size, digest.hexdigest()) != (
        manifest.chunks,
        manifest.payload_bytes,
        manifest.payload_sha256,
    ):
        raise BackupError("The backup's contents do not match its manifest: the file was altered.")
    return manifest


def database_is_empty() -> bool:
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def restore_payload(manifest: Manifest, payload: Path, *, force: bool) -> None:
    """Load the checked payload into the configured database (empty, or emptied with force)."""
    kind = engine()
    if manifest.engine != kind:
        raise BackupError(
            f"The backup is of a {manifest.engine} database; this server uses {kind}."
        )
    if not database_is_empty():
        if not force:
            raise BackupError(
                "The database is not empty: restore into an empty database, or pass --force to "
                "replace everything in it."
            )
        _empty_database(kind)
    if kind == "sqlite":
        connection.ensure_connection()
        with sqlite3.connect(payload) as source:
            source.backup(connection.connection)
        source.close()
    else:
        connection.close()
        _run_pg(
            ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", str(payload)],
            with_dbname=True,
        )
    connection.close()


def _empty_database(kind: str) -> None:
    with connection.cursor() as cursor:
        if kind == "postgresql":
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
            return
        cursor.execute("PRAGMA foreign_keys=OFF")
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")  # noqa: S608


def count_differences(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    tables = sorted(set(expected) | set(actual))
    return [
        f"{table}: {expected.get(table, 'missing')} in the backup, "
        f"{actual.get(table, 'missing')} restored"
        for table in tables
        if expected.get(table) != actual.get(table)
    ]


# --- Scheduled backups -----------------------------------------------------------------------


def backup_scheduled() -> int:
    """The worker's job: a new backup in BACKUP_DIR, then only the newest BACKUP_KEEP kept."""
    directory = Path(settings.BACKUP_DIR)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup_write(directory / f"ketaclinic-{stamp}.kcbackup")
    backup_prune(directory, keep=settings.BACKUP_KEEP)
    return 1


def backup_prune(directory: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `directory`; return what was deleted."""
    backups = sorted(directory.glob("ketaclinic-*.kcbackup"), key=lambda p: p.name, reverse=True)
    doomed = backups[keep:]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
