import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.database import database_from_url
from config.settings.env import env_bool, env_int, secret_key


def test_a_bad_boolean_stops_the_process_naming_the_variable(monkeypatch):
    monkeypatch.setenv("KETACLINIC_REQUIRE_2FA", "maybe")
    with pytest.raises(ImproperlyConfigured, match="KETACLINIC_REQUIRE_2FA"):
        env_bool("KETACLINIC_REQUIRE_2FA", True)


def test_a_number_out_of_range_is_refused(monkeypatch):
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("SESSION_IDLE_MINUTES", 15, minimum=1)
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "fifteen")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("SESSION_IDLE_MINUTES", 15, minimum=1)


def test_secret_key_is_generated_once_into_the_var_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = secret_key(tmp_path)
    assert len(first) >= 50
    assert secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_a_short_secret_key_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        secret_key(tmp_path)


def test_sqlite_runs_durable_and_postgres_urls_are_parsed(tmp_path):
    sqlite = database_from_url("", sqlite_path=tmp_path / "db.sqlite3")
    assert "synchronous=FULL" in sqlite["OPTIONS"]["init_command"]
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    assert sqlite["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    pg = database_from_url("postgres://postgres@127.0.0.1:5432/kc", sqlite_path=tmp_path / "x")
    assert pg["ENGINE"] == "ketaclinic.core.postgresql"
    assert pg["CONN_HEALTH_CHECKS"] is True
    assert pg["NAME"] == "kc"
    with pytest.raises(ImproperlyConfigured, match="unsupported"):
        database_from_url("mysql://root@localhost/kc", sqlite_path=tmp_path / "x")
