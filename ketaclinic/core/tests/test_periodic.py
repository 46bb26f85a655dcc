"""The worker's schedule: which periodic jobs are due, and the jobs the apps register."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.core import periodic

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
MINUTELY = periodic.PeriodicJob("a", timedelta(minutes=1), lambda: 0)
HOURLY = periodic.PeriodicJob("b", timedelta(hours=1), lambda: 0)


def test_a_job_never_run_is_due_at_once():
    assert periodic.due([MINUTELY, HOURLY], {}, NOW) == [MINUTELY, HOURLY]


def test_a_job_is_due_again_when_its_period_has_passed_and_not_before():
    last = {"a": NOW - timedelta(seconds=59), "b": NOW - timedelta(minutes=59)}
    assert periodic.due([MINUTELY, HOURLY], last, NOW) == []
    last = {"a": NOW - timedelta(minutes=1), "b": NOW - timedelta(minutes=59)}
    assert periodic.due([MINUTELY, HOURLY], last, NOW) == [MINUTELY]


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
def test_due_exactly_when_the_elapsed_time_reaches_the_period(elapsed):
    due = periodic.due([HOURLY], {"b": NOW - elapsed}, NOW)
    assert (due == [HOURLY]) == (elapsed >= HOURLY.every)


def test_a_job_without_a_positive_period_is_refused():
    with pytest.raises(ValueError, match="period must be positive"):
        periodic.register(periodic.PeriodicJob("never", timedelta(0), lambda: 0))


def test_alert_escalation_and_scheduled_measures_run_every_minute():
    jobs = {job.name: job.every for job in periodic.registered()}
    assert jobs["measures.alerts.escalate"] == timedelta(minutes=1)
    assert jobs["measures.schedules.send"] == timedelta(minutes=1)
