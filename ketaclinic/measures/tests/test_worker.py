"""`ketaclinic worker` escalates overdue alerts and runs queued tasks; `serve` keeps one running.

Without the worker an unacknowledged PHQ-9 item-9 alert would sit on the dashboard unescalated.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from django_scopes import scope, scopes_disabled
from django_tasks_db.models import DBTaskResult

from conftest import audit_count, make_patient
from ketaclinic.cli import run_together, server_command, worker_command
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.tasks import measure_reminder_deliver
from ketaclinic.measures.tests.builders import phq9
from ketaclinic.measures.tests.test_services import record

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.mark.django_db
def test_one_round_escalates_an_overdue_alert_once(prescriber):
    with time_machine.travel(START, tick=False):
        patient = make_patient(prescriber)
        record(prescriber, patient, answers=phq9(item9=1))
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        call_command("worker", "--once")
    with scope(organization=prescriber.organization):
        assert SafetyAlert.objects.get(patient=patient).escalated_at is None  # not yet due

    # The default policy escalates after 30 minutes (clinical-reference §3.2, clinic setting).
    later = START + timedelta(minutes=31)
    with time_machine.travel(later, tick=False):
        call_command("worker", "--once")
        call_command("worker", "--once")
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get(patient=patient)
    assert alert.escalated_at == later
    assert alert.escalated_to_role
    assert audit_count(action="measures.alert.escalated") == 1


@pytest.mark.django_db(transaction=True)
@override_settings(TASKS=DATABASE_QUEUE)
def test_one_round_runs_every_task_waiting_in_the_database_queue():
    waiting = [measure_reminder_deliver.enqueue(f"link-{n}") for n in range(3)]
    with scopes_disabled():
        assert DBTaskResult.objects.ready().count() == 3
    call_command("worker", "--once")
    with scopes_disabled():
        statuses = {r.status for r in DBTaskResult.objects.filter(id__in=[w.id for w in waiting])}
    assert statuses == {"SUCCESSFUL"}


def test_serve_runs_gunicorn_and_the_worker():
    server = server_command("127.0.0.1", 8123, 3)
    assert server[0].endswith("gunicorn")
    assert server[server.index("--bind") + 1] == "127.0.0.1:8123"
    assert server[server.index("--workers") + 1] == "3"
    assert worker_command()[-3:] == ["-m", "ketaclinic.cli", "worker"]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_worker_that_dies_is_started_again_and_stopped_with_the_server(tmp_path):
    starts = tmp_path / "starts"
    worker = _python(f"import time; open({str(starts)!r}, 'a').write('x'); time.sleep(0.3)")
    server = _python("import time; time.sleep(2.5)")
    began = time.monotonic()
    with pytest.raises(SystemExit) as ended:
        run_together(server, worker, restart_pause=0.2)
    assert ended.value.code == 0
    assert time.monotonic() - began < 10
    assert len(starts.read_text()) >= 2  # died, and was started again


def test_the_worker_is_stopped_when_the_server_ends(tmp_path):
    alive = tmp_path / "pid"
    worker = _python(
        f"import os, time; open({str(alive)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    with pytest.raises(SystemExit):
        run_together(_python("import time; time.sleep(1.5)"), worker)
    pid = int(alive.read_text())
    gone = subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
    assert gone
