"""The dashboard adds up stored course summaries in SQL; these tests hold it to the pure path.

`cohort_report` (GROUP BY over outcomes_coursesummary) must give exactly the numbers of
`cohort_report_from_charts` (every course recomputed from the chart by cohort.py's rules) on a
generated cohort with the awkward cases: a second route before or after the first, two routes
at the same instant, corrected scores, a baseline of 0, a score stamped at the first dose, a
patient with no scores, mixed ages, conditions, phases and TRD statuses, every filter and another
induction window. Runs on SQLite and on PostgreSQL (make test-pg).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes import aggregates
from ketaclinic.outcomes.cohort import (
    MAX_INDUCTION_DAYS,
    MIN_INDUCTION_DAYS,
    Course,
    course_outcome,
    early_verdicts,
    verdicts_after,
)
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import CourseSummary
from ketaclinic.outcomes.rules import Measurement, OutcomePolicy
from ketaclinic.outcomes.selectors import cohort_report, cohort_report_from_charts
from ketaclinic.outcomes.summary import recompute_course_summaries, refresh_course_summaries
from ketaclinic.patients.models import Condition, Patient

START = datetime(2025, 3, 3, 9, tzinfo=UTC)


def _clone_session(session: Any, *, at: datetime, route: str, protocol_key: str) -> Any:
    session.pk = None
    session.public_id = uuid.uuid4()
    session.route, session.protocol_key = route, protocol_key
    session.scheduled_at = session.dose_started_at = at
    session.save()
    return session


def _wrinkles(org: Any, actor: Any, patients: list[Any]) -> None:
    """The awkward cases, written the way an import would (straight to the tables)."""
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.screening.services import screening_evaluate
    from ketaclinic.sessions.models import TreatmentSession

    with scopes_disabled():
        first: dict[int, Any] = {
            p.pk: TreatmentSession.objects.filter(patient=p).order_by("dose_started_at").first()
            for p in patients
        }
        other = {"intravenous": ("intranasal", "x-in@1"), "intranasal": ("intravenous", "x-iv@1")}
        for index, patient in enumerate(patients[:10]):
            session = first[patient.pk]
            route, protocol = other[session.route]
            offset = (
                timedelta(days=20 + index)  # a second route later
                if index < 5
                else timedelta(days=-5)  # or earlier: it becomes the first dose
                if index < 9
                else timedelta(0)  # or at the same instant
            )
            for n in range(3):
                _clone_session(
                    first[patient.pk],
                    at=session.dose_started_at + offset + timedelta(days=3 * n),
                    route=route,
                    protocol_key=protocol,
                )
                session = first[patient.pk] = TreatmentSession.objects.filter(
                    patient=patient
                ).order_by("dose_started_at", "pk")[0]
        for patient in patients[10:14]:  # a corrected week-2 MADRS score
            old = QuestionnaireResponse.objects.filter(patient=patient, instrument_id="madrs")
            wrong = old.order_by("completed_at")[2]
            fixed = QuestionnaireResponse.objects.get(pk=wrong.pk)
            fixed.pk, fixed.public_id = None, uuid.uuid4()
            fixed.total, fixed.corrects, fixed.correction_reason = Decimal(3), wrong, "typo"
            fixed.save()
        baseline = QuestionnaireResponse.objects.filter(patient=patients[14], instrument_id="phq9")
        baseline.filter(pk=baseline.order_by("completed_at")[0].pk).update(total=0)
        at_dose = QuestionnaireResponse.objects.filter(patient=patients[15], instrument_id="madrs")
        at_dose.filter(pk=at_dose.order_by("completed_at")[0].pk).update(
            completed_at=first[patients[15].pk].dose_started_at
        )
        QuestionnaireResponse.objects.filter(patient=patients[16]).delete()  # no scores at all
        for index, patient in enumerate(patients):
            Patient.objects.filter(pk=patient.pk).update(
                birth_date=date(1935 + index * 2, 1 + index % 12, 1 + index % 28)
            )
        # ages on the band edges at the first dose: 30 that day, 45 tomorrow, 45 that day
        for patient, years, days in (
            (patients[20], 30, 0),
            (patients[21], 45, -1),
            (patients[22], 45, 0),
        ):
            dosed = first[patient.pk].dose_started_at.date()
            born = dosed.replace(year=dosed.year - years) - timedelta(days=days)
            Patient.objects.filter(pk=patient.pk).update(birth_date=born)
        for index, patient in enumerate(patients):
            if index % 2:
                Condition.objects.create(
                    organization=org, patient=patient, code="F33.1", display="Recurrent MDD"
                )
            if index % 3 == 0:
                TreatmentPlan.objects.filter(patient=patient).update(phase="maintenance")
    with scope(organization=org):
        for patient in patients[:6]:
            screening_evaluate(actor=actor, patient=Patient.objects.get(pk=patient.pk))
            screening_evaluate(actor=actor, patient=Patient.objects.get(pk=patient.pk))
    with scopes_disabled():
        from ketaclinic.screening.models import ScreeningEvaluation

        evaluations = list(ScreeningEvaluation.objects.order_by("created_at", "pk"))
        for number, evaluation in enumerate(evaluations):  # the later one wins
            status = ("met", "not_met", "undetermined")[number % 3]
            ScreeningEvaluation.objects.filter(pk=evaluation.pk).update(trd_status=status)


FILTERS: list[dict[str, Any]] = [
    {},
    {"group_by": "protocol"},
    {"group_by": "none", "instrument": "phq9"},
    {"route": "intravenous"},
    {"route": "intranasal", "group_by": "protocol"},
    {"protocol": "x-in@1"},
    {"route": "intranasal", "protocol": "x-in@1"},
    {"induction_days": 14},
    {"induction_days": 56, "group_by": "protocol", "instrument": "phq9"},
    {"age_band": "30-44"},
    {"age_band": "65-89", "instrument": "phq9"},
    {"first_dose_from": date(2025, 2, 1), "first_dose_to": date(2025, 3, 20)},
    {"condition": "F33"},
    {"phase": "maintenance"},
    {"trd": "met"},
    {"trd": "not_met", "induction_days": 21},
    {"instrument": "qids-sr16"},
]


def _same_numbers(filters: CohortFilters) -> Any:
    fast = cohort_report(filters)
    slow = cohort_report_from_charts(filters)
    assert fast.members == slow.members
    assert fast.summary == slow.summary
    assert fast.safety == slow.safety
    assert fast.dissociation == slow.dissociation
    return fast


@pytest.mark.django_db
def test_the_dashboard_sql_gives_the_pure_paths_numbers_for_every_filter(
    treated_cohort, org_a, prescriber, monkeypatch
) -> None:
    _wrinkles(org_a, prescriber, treated_cohort)
    recompute_course_summaries(org_a, size=7)  # several ranges
    with scope(organization=org_a):
        whole = _same_numbers(CohortFilters(instrument="madrs"))
        for overrides in FILTERS:
            _same_numbers(CohortFilters.model_validate({"instrument": "madrs", **overrides}))
    # the cohort is not trivial: every figure has something in it
    assert whole.members == len(treated_cohort)
    summary = whole.summary
    assert summary.response.successes
    assert summary.response.n > summary.response.successes
    assert summary.response.not_evaluable  # the patient without scores
    assert summary.durability
    assert summary.change_by_week
    assert summary.to_first_response
    assert summary.durability_by_maintenance
    assert whole.safety.adverse_events_by_grade
    assert whole.safety.bp_excursions
    assert all(row.patients for row in whole.dissociation)
    # a cohort too big to pack each week's count and sum into one SUM is summed the plain way
    monkeypatch.setattr(aggregates, "PACKED_UP_TO", 0)
    with scope(organization=org_a):
        assert _same_numbers(CohortFilters(instrument="madrs")).summary == summary


@given(st.lists(st.integers(-10_000, 10_000), max_size=300))
def test_a_weeks_packed_sum_reads_back_as_its_count_and_sum(changes: list[int]) -> None:
    packed = sum(change + aggregates.PACK for change in changes) if changes else None
    assert aggregates._week_count_and_sum({"p0": packed}, 0) == (len(changes), sum(changes))


@pytest.mark.django_db
def test_services_keep_the_summary_in_step_with_the_chart(treated_cohort, org_a, prescriber):
    """A score recorded through the service changes the dashboard at once (same transaction)."""
    from ketaclinic.measures.services import response_record

    patient = treated_cohort[0]
    with scope(organization=org_a):
        before = cohort_report(CohortFilters(instrument="phq9"))
        rows = CourseSummary.objects.filter(patient=patient, instrument_id="phq9")
        early_before = rows.get().early_verdicts
        response_record(
            actor=prescriber,
            patient=Patient.objects.get(pk=patient.pk),
            instrument_id="phq9",
            answers={str(i): 0 for i in range(1, 10)},  # a total of 0: a responder
            completed_at=_first_dose(patient) + timedelta(days=1),
        )
        after = _same_numbers(CohortFilters(instrument="phq9"))
    assert rows.get().early_verdicts != early_before
    assert after.summary != before.summary


def _first_dose(patient: Patient) -> datetime:
    from ketaclinic.sessions.models import TreatmentSession

    with scopes_disabled():
        found = (
            TreatmentSession.objects.filter(patient=patient)
            .order_by("dose_started_at")
            .values_list("dose_started_at", flat=True)
            .first()
        )
    assert found is not None
    return found


@pytest.mark.django_db
def test_a_refresh_rewrites_only_the_patients_named(treated_cohort, org_a) -> None:
    with scopes_disabled():
        CourseSummary.objects.update(response=None)
    refresh_course_summaries([treated_cohort[0].pk])
    with scopes_disabled():
        stale = CourseSummary.objects.filter(instrument_id="madrs", response__isnull=True)
        assert not stale.filter(patient=treated_cohort[0]).exists()
        assert stale.filter(patient=treated_cohort[1]).exists()


# --- the verdicts kept for other induction windows --------------------------------------------

# seconds after the first dose: anywhere, or on, just before and just after a window's end
_seconds = st.one_of(
    st.integers(-10 * 86_400, 100 * 86_400),
    st.builds(
        lambda days, step: days * 86_400 + step,
        st.integers(MIN_INDUCTION_DAYS, MAX_INDUCTION_DAYS),
        st.sampled_from([-1, 0, 1]),
    ),
)
_scores = st.lists(st.tuples(_seconds, st.integers(0, 60), st.sampled_from([0, 1])), max_size=12)


@settings(max_examples=200, deadline=None)
@given(scores=_scores, days=st.integers(MIN_INDUCTION_DAYS, MAX_INDUCTION_DAYS))
def test_the_kept_verdicts_give_course_outcomes_verdicts_for_any_window(scores, days) -> None:
    course = Course(
        "all",
        START,
        [
            Measurement("madrs", Decimal(score), START + timedelta(seconds=s, microseconds=u))
            for s, score, u in scores
        ],
    )
    policy = OutcomePolicy()
    outcome = course_outcome(course, policy=policy, induction_days=days)
    assert verdicts_after(early_verdicts(course, policy=policy), days) == (
        outcome.response,
        outcome.remission,
    )


@pytest.mark.django_db
def test_the_recompute_command_restores_summaries_written_around_the_services(
    treated_cohort, org_a
) -> None:
    from django.core.management import CommandError, call_command

    with scopes_disabled():
        CourseSummary.objects.all().delete()  # as after a bulk import by SQL
    out = StringIO()
    call_command("outcomes_recompute", "--organization", org_a.name, "--no-progress", stdout=out)
    assert f"{org_a.name}: {3 * len(treated_cohort)} course summaries written" in out.getvalue()
    with scope(organization=org_a):
        assert _same_numbers(CohortFilters(instrument="madrs")).members == len(treated_cohort)
    with pytest.raises(CommandError, match="No clinic named"):
        call_command("outcomes_recompute", "--organization", "Nowhere", "--no-progress")


@pytest.mark.django_db
@pytest.mark.parametrize("induction_days", [28, 14])
def test_the_research_exports_outcomes_are_the_pure_paths(
    treated_cohort, org_a, members, induction_days
) -> None:
    """The export reads its outcome columns from the summaries (judging a course again only
    when it has none); the pseudonyms hide who is who, so the rows are compared as a whole."""
    import csv

    from conftest import actor_for
    from ketaclinic.outcomes import services
    from ketaclinic.outcomes.export_files import export_directory
    from ketaclinic.outcomes.selectors import cohort_members

    filters = CohortFilters(instrument="madrs", induction_days=induction_days)
    with scopes_disabled():
        CourseSummary.objects.filter(patient=treated_cohort[0]).delete()  # not written yet
    with scope(organization=org_a):
        expected = []
        for member in cohort_members(filters):
            o = course_outcome(member.course, policy=OutcomePolicy(), induction_days=induction_days)
            first, durable = o.to_first_response, o.durability
            expected.append(
                [
                    o.response,
                    o.remission,
                    first.time if first else None,
                    first.event if first else None,
                    durable.time if durable else None,
                    durable.event if durable else None,
                ]
            )
        export = services.research_export_request(
            actor=actor_for(members["researcher"], "cli"), filters=filters, run_in_background=False
        )
        export = services.data_export_run(export=export)
    assert export.status == "done", export.error
    with (export_directory(export) / "outcomes.csv").open(newline="") as handle:
        written = [row[1:] for row in list(csv.reader(handle))[1:]]

    def as_text(value: object) -> str:
        return "" if value is None else str(value)

    assert sorted(written) == sorted([as_text(v) for v in row] for row in expected)
    assert any(row[0] == "True" for row in written)
