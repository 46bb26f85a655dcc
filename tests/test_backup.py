"""Backup and restore (issue 12): `ketaclinic backup` writes an encrypted, checksummed copy of the
database; `ketaclinic restore` loads it into an empty database and proves it whole (row counts,
audit-verify, ledger-verify). Runs on the suite's database: SQLite, or PostgreSQL with pg_dump."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.core import backup

ROOT = Path(__file__).resolve().parents[1]
KEY = Fernet.generate_key().decode()
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(transactional_db: Any, settings: Any) -> Any:
    settings.BACKUP_KEY = KEY
    organization = organization_create(name="Backup Clinic", clinic_name="Main", time_zone="UTC")
    doctor = actor_for(make_member(organization, "prescriber", username="backup-doctor"))
    for index in range(3):
        make_patient(doctor, given_name=f"Backedupname{index}")
    return organization


def _target_environment(tmp_path: Path) -> tuple[dict[str, str], Any]:
    """The environment of a fresh server: a new SQLite directory, or a new PostgreSQL database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        KETACLINIC_VAR_DIR=str(tmp_path / "restored"),
        BACKUP_KEY=KEY,
    )
    env.pop("DATABASE_URL", None)
    if connection.vendor != "postgresql":
        return env, None
    import psycopg

    db = settings.DATABASES["default"]
    name = f"kc_restore_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}"

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return env, drop


@pytest.mark.long
def test_a_backup_restores_into_a_fresh_server_and_verifies(clinic: Any, tmp_path: Path) -> None:
    output = tmp_path / "clinic.kcbackup"
    call_command("backup", output=output)
    manifest = backup.backup_read_manifest(output)
    assert manifest.engine == connection.vendor
    assert manifest.row_counts["patients_patient"] == 3
    # Encrypted: neither the database's own header nor a patient's name can be read in the file
    # (the names are long enough that the Fernet text cannot hold them by chance).
    content = output.read_bytes()
    assert b"SQLite format 3" not in content
    assert b"Backedupname0" not in content
    env, cleanup = _target_environment(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ketaclinic.cli", "restore", str(output)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "tables match the backup" in result.stdout
        assert "events in" in result.stdout  # audit-verify passed
        assert "ledger rows in" in result.stdout  # ledger-verify passed
        again = subprocess.run(
            [sys.executable, "-m", "ketaclinic.cli", "restore", str(output)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode != 0
        assert "not empty" in again.stderr
    finally:
        if cleanup:
            cleanup()


def test_a_tampered_backup_or_a_wrong_key_is_refused(
    clinic: Any, tmp_path: Path, settings: Any
) -> None:
    output = tmp_path / "clinic.kcbackup"
    call_command("backup", output=output)
    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.kcbackup"
    tampered.write_bytes(bytes(data))
    with pytest.raises(backup.BackupError, match="altered"):
        backup.backup_extract(tampered, tmp_path / "payload")
    settings.BACKUP_KEY = Fernet.generate_key().decode()
    with pytest.raises(backup.BackupError, match="BACKUP_KEY is wrong"):
        backup.backup_extract(output, tmp_path / "payload")


def test_restore_refuses_a_database_that_is_not_empty(clinic: Any, tmp_path: Path) -> None:
    output = tmp_path / "clinic.kcbackup"
    call_command("backup", output=output)
    manifest = backup.backup_extract(output, tmp_path / "payload")
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore_payload(manifest, tmp_path / "payload", force=False)


def test_scheduled_backups_keep_the_newest(clinic: Any, tmp_path: Path, settings: Any) -> None:
    settings.BACKUP_DIR = str(tmp_path / "backups")
    settings.BACKUP_KEEP = 2
    for _ in range(3):
        assert backup.backup_scheduled() == 1
    kept = sorted((tmp_path / "backups").glob("*.kcbackup"))
    assert len(kept) == 2
