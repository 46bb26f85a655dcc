"""Planner statistics: refreshed after migrate and by the worker (issue 13)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from ketaclinic.core import periodic, planner


@pytest.mark.django_db
def test_statistics_exist_after_migrate_and_a_refresh_rewrites_them():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # post_migrate ran ANALYZE on the test database: SQLite created its statistics table
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert cursor.fetchone()[0] == 1
    assert planner.refresh_statistics(connection) == 1


@pytest.mark.django_db
def test_the_worker_refreshes_sqlite_statistics_and_leaves_postgresql_to_autovacuum():
    jobs = {job.name: job for job in periodic.registered()}
    job = jobs["core.planner_statistics"]
    assert job.every == timedelta(hours=6)
    assert job.run() == (1 if connection.vendor == "sqlite" else 0)
