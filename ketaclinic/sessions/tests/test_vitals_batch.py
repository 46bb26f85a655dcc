"""A monitor's batch of vitals: one transaction, one executemany insert, one audit event, the same
number of queries for 1 or 60 samples, and every safety rule as for a single reading."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from conftest import SESSION_DAY, api_client, audit_count
from ketaclinic.core.errors import Conflict
from ketaclinic.sessions.api import VitalsRecordedOut
from ketaclinic.sessions.policy import DEFAULT_POLICY
from ketaclinic.sessions.tests.builders import NORMAL, session_prechecked
from ketaclinic.sessions.tests.test_flowsheet_forms import monitoring
from ketaclinic.sessions.vitals import VitalsSample, classify_batch, classify_vitals

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
# The session (patient and policy joined) read before the transaction; in it the session's
# guarded UPDATE, the executemany, the audit INSERT; the transaction's begin and end.
VITALS_WRITE_QUERIES = 6


def _batch(count: int, start: Any, **values: int) -> dict[str, Any]:
    return {
        "samples": [
            {**NORMAL, **values, "taken_at": (start + timedelta(seconds=15 * k)).isoformat()}
            for k in range(count)
        ]
    }


def test_classifying_a_batch_is_classifying_each_sample() -> None:
    samples = [
        VitalsSample(taken_at=T0, systolic=s, diastolic=70, spo2=o)
        for s, o in ((120, 98), (185, 97), (130, 88), (90, 99))
    ]
    assert classify_batch(samples, DEFAULT_POLICY) == [
        classify_vitals(sample, DEFAULT_POLICY) for sample in samples
    ]


def test_a_batch_costs_the_same_queries_as_one_sample(
    prescriber: Any,
    members: Any,
    patient_a: Any,
    traveller: Any,
    django_assert_max_num_queries: Any,
) -> None:
    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
    traveller.move_to(T0 + timedelta(minutes=30))
    nurse = api_client(members["nurse"])
    url = f"/api/v1/sessions/{session.public_id}/vitals"
    nurse.get(f"/api/v1/sessions/{session.public_id}")  # the token's identity, resolved once
    counts = []
    for count in (1, 60):
        before = audit_count(action="sessions.vitals.recorded")
        with (
            django_assert_max_num_queries(VITALS_WRITE_QUERIES),
            CaptureQueriesContext(connection) as queries,
        ):
            response = nurse.post(url, _batch(count, T0 + timedelta(minutes=1)), "application/json")
        assert response.status_code == 201, response.json()
        assert response["Content-Type"] == "application/json"
        answered = [VitalsRecordedOut.model_validate(row) for row in response.json()]
        assert len(answered) == count
        assert set(response.json()[0]) == {"id", "severity"}
        assert audit_count(action="sessions.vitals.recorded") == before + 1
        counts.append(len(queries))
        # SQLite's one write lock is held for these only: every read came before (issue 13).
        statements = [q["sql"].split(" (")[0].split(" SET ")[0] for q in queries.captured_queries]
        begin = next(i for i, sql in enumerate(statements) if "SAVEPOINT" in sql or "BEGIN" in sql)
        assert statements[begin + 1 : begin + 4] == [
            'UPDATE "treatment_sessions_treatmentsession"',
            f'{count} times: INSERT INTO "treatment_sessions_vitalsentry"',
            'INSERT INTO "accounts_auditevent"',
        ], statements
        assert len(statements) == begin + 5
    assert counts[0] == counts[1], counts
    rows = nurse.get(url).json()
    assert len(rows) >= 61
    assert {r["id"] for r in rows} >= {r["id"] for r in response.json()}


def test_a_critical_reading_in_a_batch_after_the_dose_raises_the_alert(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.measures.models import SafetyAlert

    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
    traveller.move_to(T0 + timedelta(minutes=30))
    nurse = api_client(members["nurse"])
    batch = _batch(5, T0 + timedelta(minutes=5))
    batch["samples"][3].update(systolic=190, diastolic=100)
    response = nurse.post(f"/api/v1/sessions/{session.public_id}/vitals", batch, "application/json")
    assert [r["severity"] for r in response.json()] == ["", "", "", "critical", ""]
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get(patient=patient_a, source_kind="session_vitals")
    assert str(alert.source_public_id) == response.json()[3]["id"]


def test_one_implausible_sample_refuses_the_whole_batch(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    nurse = api_client(members["nurse"])
    url = f"/api/v1/sessions/{session.public_id}/vitals"
    before = len(nurse.get(url).json())
    batch = _batch(3, T0 - timedelta(minutes=5))
    batch["samples"][2].update(systolic=400, diastolic=20)
    refused = nurse.post(url, batch, "application/json")
    assert refused.status_code in (400, 422)
    assert any(e["field"].startswith("samples[2].") for e in refused.json()["errors"])
    assert len(nurse.get(url).json()) == before  # nothing stored


def test_readings_before_the_dose_are_pre_dose_ones(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.sessions.models import VitalsEntry

    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    nurse = api_client(members["nurse"])
    response = nurse.post(
        f"/api/v1/sessions/{session.public_id}/vitals",
        _batch(2, T0 - timedelta(minutes=1)),
        "application/json",
    )
    ids = [r["id"] for r in response.json()]
    with scope(organization=prescriber.organization):
        rows = VitalsEntry.objects.filter(public_id__in=ids)
        assert [r.predose for r in rows] == [True, True]
        assert all(r.policy_key and r.rule == "vitals-alerts@1" for r in rows)


def test_the_dashboard_counts_a_session_by_its_worst_high_blood_pressure(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.outcomes.models import CourseSummary

    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
        assert CourseSummary.objects.filter(patient=patient_a).exists()
    traveller.move_to(T0 + timedelta(minutes=30))
    nurse = api_client(members["nurse"])
    url = f"/api/v1/sessions/{session.public_id}/vitals"

    def post(minute: int, **values: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = nurse.post(url, _batch(3, T0 + timedelta(minutes=minute), **values),
                                  "application/json")  # fmt: skip
        assert response.status_code == 201, response.json()
        return len(queries)

    def counts() -> set[tuple[int, int]]:
        with scope(organization=prescriber.organization):
            rows = CourseSummary.objects.filter(patient=patient_a)
            return set(rows.values_list("bp_warning_sessions", "bp_critical_sessions"))

    first = post(5, systolic=150, diastolic=85)  # above the warning limit
    assert counts() == {(1, 0)}
    again = post(6, systolic=155, diastolic=88)  # the same session, no worse: not recounted
    assert counts() == {(1, 0)}
    assert again < first
    post(7, systolic=190, diastolic=95)  # now critical: the session moves up
    assert counts() == {(0, 1)}
    post(8, systolic=150, diastolic=85)
    assert counts() == {(0, 1)}


def _samples(count: int, start: Any) -> list[dict[str, Any]]:
    return [{**NORMAL, "taken_at": start + timedelta(seconds=15 * k)} for k in range(count)]


def _as_read_earlier(session: Any) -> Any:
    """The session as a request read it (patient and policy joined) before another writer
    moved it: the batch is worked out before the write transaction begins."""
    from ketaclinic.sessions.models import TreatmentSession

    return TreatmentSession.objects.select_related("patient", "policy_version").get(pk=session.pk)


def test_a_session_closed_after_it_was_read_takes_no_vitals(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    from ketaclinic.sessions import services
    from ketaclinic.sessions.models import VitalsEntry

    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
        traveller.move_to(T0 + timedelta(minutes=30))
        read_earlier = _as_read_earlier(session)
        services.session_abort(actor=prescriber, session=session, reason="Patient unwell, stop.")
        stored = VitalsEntry.objects.filter(session=session).count()
        before = audit_count(action="sessions.vitals.recorded")
        with pytest.raises(Conflict, match="aborted"):
            services.vitals_record(
                actor=prescriber,
                session=read_earlier,
                samples=_samples(3, T0 + timedelta(minutes=29)),
            )
        assert VitalsEntry.objects.filter(session=session).count() == stored
        assert audit_count(action="sessions.vitals.recorded") == before


def test_a_batch_follows_the_state_the_session_is_stored_in(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    """Read before the dose, stored after it: the rows are post-dose ones, and a critical
    reading raises the alert, as if the batch had been sent after the dose."""
    from ketaclinic.measures.models import SafetyAlert
    from ketaclinic.sessions import services
    from ketaclinic.sessions.models import TreatmentSession, VitalsEntry

    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        read_earlier = _as_read_earlier(session)
        assert read_earlier.state == "prechecks_passed"
        services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=prescriber, session=session, dose_mg="40", lot_number="L1", ended_at=T0
        )
        traveller.move_to(T0 + timedelta(minutes=30))
        batch = _samples(2, T0 + timedelta(minutes=28))
        batch[1].update(systolic=190, diastolic=100)
        recorded = services.vitals_record(actor=prescriber, session=read_earlier, samples=batch)
        rows = VitalsEntry.objects.filter(public_id__in=[r.public_id for r in recorded])
        assert [r.predose for r in rows] == [False, False]
        assert [r.severity for r in recorded] == ["", "critical"]
        alert = SafetyAlert.objects.get(patient=patient_a, source_kind="session_vitals")
        assert alert.source_public_id == recorded[1].public_id
        stored = TreatmentSession.objects.get(pk=session.pk)
        assert stored.state == "monitoring"
        assert stored.last_alert_severity == "critical"
        assert stored.last_vitals["bp"] == "190/100"


def test_every_column_of_a_batch_is_stored_as_recorded(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    """The executemany lists its columns in its own order (core.bulk.prepare_objects): each
    stored row reads back, field by field, as the service recorded it."""
    from ketaclinic.sessions import services
    from ketaclinic.sessions.models import VitalsEntry

    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
        traveller.move_to(T0 + timedelta(minutes=30))
        samples = _samples(4, T0 + timedelta(minutes=20))
        samples[1].update(systolic=150, diastolic=95, heart_rate=None)
        samples[2].update(spo2=None, respiratory_rate=None, heart_rate=135)
        samples[3] = {"taken_at": samples[3]["taken_at"], "spo2": 91}
        recorded = services.vitals_record(actor=prescriber, session=session, samples=samples)
        stored = {e.public_id: e for e in VitalsEntry.objects.filter(session=session)}
        assert [r.severity for r in recorded] == ["", "warning", "critical", "warning"]
        for row in recorded:
            entry = stored[row.public_id]
            assert entry.organization_id == session.organization_id
            assert entry.recorded_by_id == prescriber.user.pk
            assert entry.created_at == entry.updated_at == T0 + timedelta(minutes=30)
            for name in ("taken_at", "predose", "systolic", "diastolic", "heart_rate", "spo2",
                         "respiratory_rate", "alerts", "severity", "rule", "policy_key"):  # fmt: skip
                assert getattr(entry, name) == getattr(row, name), name
        assert stored[recorded[1].public_id].alerts[0]["measure"] == "systolic"
        assert stored[recorded[3].public_id].heart_rate is None


def test_a_batch_never_reads_the_flowsheet_however_long_it_grows(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """Whether a batch moves the dashboard's blood-pressure count is told by the session's own
    worst_bp_rank, raised with the rows: the flowsheet is not read, however many rows a
    monitor's feed has stored (issue 13)."""
    from ketaclinic.sessions.models import TreatmentSession

    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
    traveller.move_to(T0 + timedelta(minutes=40))
    nurse = api_client(members["nurse"])
    url = f"/api/v1/sessions/{session.public_id}/vitals"

    def post(minute: int, count: int = 60, **values: int) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            response = nurse.post(url, _batch(count, T0 + timedelta(minutes=minute), **values),
                                  "application/json")  # fmt: skip
        assert response.status_code == 201, response.json()
        return [q["sql"] for q in queries.captured_queries]

    def rank() -> int:
        with scope(organization=prescriber.organization):
            return TreatmentSession.objects.get(pk=session.pk).worst_bp_rank

    assert rank() == 0
    for minute in range(5, 10):  # 300 post-dose rows above the warning limit
        post(minute, systolic=150, diastolic=85)
    assert rank() == 1
    for statements in (post(11, 1, systolic=150, diastolic=85), post(12, 1)):
        assert not [s for s in statements if s.startswith("SELECT") and "vitalsentry" in s]
    post(13, 1, systolic=190, diastolic=95)  # critical
    assert rank() == 2
    post(14, 1, systolic=150, diastolic=85)  # a lesser one never lowers it
    assert rank() == 2


def test_the_upgrade_gives_each_session_the_worst_its_flowsheet_holds(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """Migration 0003 works out worst_bp_rank from the rows a session already has: post-dose
    blood pressures above the limits only (not pre-dose ones, not other measures)."""
    import importlib

    from django.apps import apps

    from ketaclinic.sessions.models import TreatmentSession

    migration = importlib.import_module("ketaclinic.sessions.migrations.0003_session_worst_bp_rank")
    with scope(organization=prescriber.organization):
        session = monitoring(prescriber, patient_a)
    traveller.move_to(T0 + timedelta(minutes=40))
    nurse = api_client(members["nurse"])
    url = f"/api/v1/sessions/{session.public_id}/vitals"
    for values in ({"spo2": 85}, {"systolic": 150, "diastolic": 85}):
        response = nurse.post(
            url, _batch(2, T0 + timedelta(minutes=5), **values), "application/json"
        )
        assert response.status_code == 201, response.json()
    with scopes_disabled():  # as a migration runs: no tenant
        stored = TreatmentSession.objects.filter(pk=session.pk)
        assert stored.values_list("worst_bp_rank", flat=True).get() == 1
        stored.update(worst_bp_rank=0)  # as before the column existed
        migration.worst_from_flowsheets(apps, None)
        assert stored.values_list("worst_bp_rank", flat=True).get() == 1
        others = TreatmentSession.objects.exclude(pk=session.pk)
        assert set(others.values_list("worst_bp_rank", flat=True)) <= {0}
