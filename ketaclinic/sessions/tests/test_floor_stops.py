"""Issue 10's floor defects, each refused in the service and over the JSON API: a patient in two
sessions at once, a chair holding two patients, a plan booked three times at one instant, doses
too close together or past the planned count, esketamine without the REMS, a dose charted before
its check-in or order, a session dated 2020."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import SESSION_DAY, actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.core.errors import Conflict, SafetyStop, ValidationFailed
from ketaclinic.protocols import services as protocols
from ketaclinic.sessions import services
from ketaclinic.sessions.models import DoseOrder, RemsEnrollment, TreatmentSession
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    certify_for_rems,
    make_plan,
    make_treatable,
    session_checked_in,
    session_prechecked,
    ticked,
    weigh,
)

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY  # Monday 2026-03-02, 09:00 in Chicago


def nurse_of(members: Any) -> Any:
    return actor_for(members["nurse"])


def dosed_and_closed(prescriber: Any, nurse: Any, session: Any) -> Any:
    """Prechecked session -> order -> dose -> aborted (a closed session whose dose counts)."""
    order = services.dose_order_sign(actor=prescriber, session=session)
    services.dose_administer(actor=nurse, session=session, dose_mg=order.dose_mg, lot_number="K1")
    return services.session_abort(actor=nurse, session=session, reason="Closed for the test.")


def book(actor: Any, plan: Any, *, hours: float = 0, chair: int | None = None) -> Any:
    return services.session_schedule(
        actor=actor, plan=plan, scheduled_at=T0 + timedelta(hours=hours), chair=chair
    )


# --- one open session per patient ---------------------------------------------------------------


def test_a_monitored_patient_cannot_be_checked_in_to_a_second_session(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    with scope(organization=prescriber.organization):
        first = session_prechecked(prescriber, patient_a)  # IV, chair 1
        order = services.dose_order_sign(actor=prescriber, session=first)
        services.dose_administer(
            actor=nurse, session=first, dose_mg=order.dose_mg, lot_number="K1", ended_at=T0
        )
        make_treatable(prescriber, patient_a, "esketamine-trd")
        esketamine = make_plan(prescriber, patient_a, "esketamine-trd")
        second = book(nurse, esketamine, hours=4, chair=2)
        traveller.move_to(T0 + timedelta(minutes=6))
        with pytest.raises(Conflict, match="already in another session"):
            services.session_check_in(actor=nurse, session=second)
    refused = api_client(members["nurse"]).post(f"/api/v1/sessions/{second.public_id}/check-in")
    assert refused.status_code == 409
    body = refused.json()
    assert body["errors"][0]["field"] == "patient"
    assert "chair 1, being monitored since Mar 2, 09:00 CST" in body["detail"]
    with scopes_disabled():
        assert TreatmentSession.objects.get(pk=second.pk).state == "scheduled"


def test_one_plan_cannot_be_booked_three_times_at_one_instant(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient_a)
        book(prescriber, plan, chair=1)
        with pytest.raises(Conflict, match="already has a session booked at Mar 2, 09:00 CST"):
            book(prescriber, plan, chair=2)
    again = api_client(members["nurse"]).post(
        "/api/v1/sessions",
        {"plan": str(plan.public_id), "scheduled_at": T0.isoformat(), "chair": 3},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "scheduled_at"
    with scopes_disabled():
        assert TreatmentSession.objects.filter(plan=plan).count() == 1


# --- one patient per chair ------------------------------------------------------------------------


def test_a_chair_holds_one_patient_at_a_time(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    other = make_patient(prescriber, given_name="Bo", family_name="Chair")
    with scope(organization=prescriber.organization):
        session_checked_in(prescriber, patient_a)  # chair 1
        make_treatable(prescriber, other, "iv-ketamine-induction")
        weigh(prescriber, other)
        plan = make_plan(prescriber, other)
        with pytest.raises(Conflict, match="Chair 1 is already booked"):
            book(nurse, plan, chair=1)
        later = book(nurse, plan, hours=4, chair=1)  # a later slot may be booked...
        with pytest.raises(Conflict, match="Chair 1 is taken: Ada Lovelace is checked in there"):
            services.session_check_in(actor=nurse, session=later)  # ...but not sat in now
        services.session_check_in(actor=nurse, session=later, chair=2)
    booked = api_client(members["nurse"]).post(
        "/api/v1/sessions",
        {"plan": str(plan.public_id), "scheduled_at": T0.isoformat(), "chair": 1},
        content_type="application/json",
    )
    assert booked.status_code == 409
    assert booked.json()["errors"][0]["field"] == "chair"


def test_the_database_holds_one_open_session_per_chair_and_patient(
    prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    from django.db import IntegrityError, transaction

    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        twin = TreatmentSession.objects.get(pk=session.pk)
        twin.pk, twin.public_id = None, None  # type: ignore[assignment]  # saved as a new row
        twin.patient = make_patient(prescriber, given_name="Twin")
        with pytest.raises(IntegrityError), transaction.atomic():
            twin.save()  # same chair, also checked in: refused below any service


# --- how often a patient is dosed ------------------------------------------------------------------


def test_a_dose_the_next_day_is_refused_until_a_prescriber_overrides(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    with scope(organization=prescriber.organization):
        dosed_and_closed(prescriber, nurse, session_prechecked(prescriber, patient_a))
        plan = TreatmentSession.objects.get(patient=patient_a).plan
        traveller.move_to(T0 + timedelta(hours=24))
        tomorrow = services.session_schedule(
            actor=nurse, plan=plan, scheduled_at=T0 + timedelta(hours=24), chair=1
        )
        with pytest.raises(SafetyStop, match="had a dose 24 hours ago") as refused:
            services.session_check_in(actor=nurse, session=tomorrow)
        assert refused.value.errors[0].field == "dose_frequency"
    nurse_api, doctor_api = api_client(members["nurse"]), api_client(members["prescriber"])
    url = f"/api/v1/sessions/{tomorrow.public_id}"
    assert nurse_api.post(f"{url}/check-in").status_code == 422
    not_a_prescriber = nurse_api.post(
        f"{url}/frequency-override",
        {"reason": "Travelling abroad next week."},
        content_type="application/json",
    )
    assert not_a_prescriber.status_code == 403
    too_short = doctor_api.post(
        f"{url}/frequency-override", {"reason": "ok"}, content_type="application/json"
    )
    assert too_short.status_code == 400
    assert too_short.json()["errors"][0]["field"] == "reason"
    overridden = doctor_api.post(
        f"{url}/frequency-override",
        {"reason": "Leaves the country for two weeks; last induction dose moved up."},
        content_type="application/json",
    )
    assert overridden.status_code == 200, overridden.json()
    assert overridden.json()["frequency_override_reason"].startswith("Leaves the country")
    assert audit_count(action="sessions.frequency.overridden") == 1
    assert nurse_api.post(f"{url}/check-in").status_code == 200


def test_the_planned_count_stops_the_dose_until_the_phase_is_extended(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a)
        plan = make_plan(prescriber, patient_a)
        for number in range(6):  # the induction's six infusions, Monday/Wednesday/Friday
            day = T0 + timedelta(days=7 * (number // 3) + 2 * (number % 3))
            traveller.move_to(day)
            session = services.session_schedule(actor=nurse, plan=plan, scheduled_at=day, chair=1)
            services.session_check_in(actor=nurse, session=session)
            services.precheck_record(
                actor=nurse, session=session, checklist=ticked(session), vitals=NORMAL
            )
            dosed_and_closed(prescriber, nurse, session)
        day = T0 + timedelta(days=14)
        traveller.move_to(day)
        seventh = services.session_schedule(actor=nurse, plan=plan, scheduled_at=day, chair=1)
        with pytest.raises(SafetyStop, match="planned 6 dosing sessions and 6 have been given"):
            services.session_check_in(actor=nurse, session=seventh)
        with pytest.raises(ValidationFailed):
            protocols.plan_sessions_extend(
                actor=prescriber, plan=plan, extra_sessions=1, reason="more"
            )
    doctor_api = api_client(members["prescriber"])
    extended = doctor_api.post(
        f"/api/v1/plans/{plan.public_id}/extensions",
        {"extra_sessions": 2, "reason": "Partial response after six; two more per APA advice."},
        content_type="application/json",
    )
    assert extended.status_code == 201, extended.json()
    assert extended.json()["phase"] == "induction"
    assert audit_count(action="protocols.plan.extended") == 1
    nurse_api = api_client(members["nurse"])
    assert nurse_api.post(f"/api/v1/sessions/{seventh.public_id}/check-in").status_code == 200


# --- Spravato REMS --------------------------------------------------------------------------------


def test_esketamine_is_refused_without_rems_certification_and_enrollment(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, "esketamine-trd", rems=False)
        services.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
    doctor_api = api_client(members["prescriber"])
    order_url = f"/api/v1/sessions/{session.public_id}/dose-orders"
    refused = doctor_api.post(order_url, {}, content_type="application/json")
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {"rems_certification", "rems_enrollment"}
    assert "not enrolled in the Spravato REMS" in refused.json()["detail"]
    assert "not certified in the Spravato REMS" in refused.json()["detail"]

    nurse_api = api_client(members["nurse"])
    future = nurse_api.post(
        "/api/v1/rems-enrollments",
        {"patient": str(patient_a.public_id), "enrolled_on": "2026-03-09"},
        content_type="application/json",
    )
    assert future.status_code == 400
    assert future.json()["errors"][0]["field"] == "enrolled_on"
    enrolled = nurse_api.post(
        "/api/v1/rems-enrollments",
        {"patient": str(patient_a.public_id), "enrolled_on": "2026-02-27", "rems_patient_id": "R9"},
        content_type="application/json",
    )
    assert enrolled.status_code == 201, enrolled.json()
    assert enrolled.json()["rems_patient_id"] == "R9"
    still = doctor_api.post(order_url, {}, content_type="application/json")
    assert still.status_code == 422
    assert {e["field"] for e in still.json()["errors"]} == {"rems_certification"}
    with scope(organization=prescriber.organization):
        certify_for_rems(prescriber.organization)
    assert doctor_api.post(order_url, {}, content_type="application/json").status_code == 201


def test_the_administration_is_refused_too_if_the_enrollment_is_missing(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """An order signed before the rule existed (or by a path that skipped it) cannot be given."""
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a, "esketamine-trd")
        services.dose_order_sign(actor=prescriber, session=session)
        with scopes_disabled():
            RemsEnrollment.objects.filter(patient=patient_a).delete()
        with pytest.raises(SafetyStop, match="not enrolled in the Spravato REMS"):
            services.dose_administer(
                actor=nurse_of(members), session=session, dose_mg="56", lot_number="S1"
            )


def test_rems_enrollment_through_the_flowsheet_unblocks_the_dose(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, "esketamine-trd", rems=False)
        certify_for_rems(prescriber.organization)
    nurse_ui = staff_client(members["nurse"])
    page = nurse_ui.get(f"/sessions/{session.public_id}/").content.decode()
    assert "not recorded as enrolled" in page
    enroll = f"/sessions/{session.public_id}/rems/enrollment/"
    future = nurse_ui.post(enroll, {"enrolled_on": "2026-03-09"}, headers={"HX-Request": "true"})
    assert future.status_code == 400
    assert b'id="rems-enrolled_on-error"' in future.content
    done = nurse_ui.post(enroll, {"enrolled_on": "2026-02-20", "rems_patient_id": "R-77"})
    assert done.status_code == 200
    assert b"enrolled in the REMS on 2026-02-20 (ID R-77)" in done.content
    with scope(organization=prescriber.organization):
        services.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        assert services.dose_order_sign(actor=prescriber, session=session).dose_mg == 56


# --- times that cannot be right -------------------------------------------------------------------


def test_a_dose_cannot_be_charted_before_its_order_or_check_in(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        traveller.move_to(T0 + timedelta(minutes=20))
        services.dose_order_sign(actor=prescriber, session=session)
        with pytest.raises(ValidationFailed, match="before its order was signed at Mar 2, 09:20"):
            services.dose_administer(
                actor=nurse, session=session, dose_mg="40", lot_number="K1", started_at=T0
            )
    early = api_client(members["nurse"]).post(
        f"/api/v1/sessions/{session.public_id}/administrations",
        {
            "dose_mg": "40",
            "lot_number": "K1",
            "started_at": (T0 - timedelta(minutes=20)).isoformat(),
        },
        content_type="application/json",
    )
    assert early.status_code == 400
    assert early.json()["errors"][0]["field"] == "started_at"
    assert "before the patient was checked in" in early.json()["detail"]
    with scopes_disabled():
        assert DoseOrder.objects.filter(session=session).count() == 1
        assert TreatmentSession.objects.get(pk=session.pk).dose_started_at is None


@pytest.mark.parametrize(
    ("when", "words"),
    [("2020-03-02T09:00:00-06:00", "too far in the past"), ("2028-03-02T09:00:00-06:00", "ahead")],
)
def test_a_session_dated_2020_or_years_ahead_is_refused(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any, when: str, words: str
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient_a)
    made = api_client(members["nurse"]).post(
        "/api/v1/sessions",
        {"plan": str(plan.public_id), "scheduled_at": when, "chair": 1},
        content_type="application/json",
    )
    assert made.status_code == 400
    assert made.json()["errors"][0]["field"] == "scheduled_at"
    assert words in made.json()["detail"]


# --- the same overrides from the staff screens ------------------------------------------------------


def test_a_prescriber_overrides_the_gap_on_the_flowsheet_and_extends_the_phase_on_the_chart(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = nurse_of(members)
    with scope(organization=prescriber.organization):
        dosed_and_closed(prescriber, nurse, session_prechecked(prescriber, patient_a))
        plan = TreatmentSession.objects.get(patient=patient_a).plan
        traveller.move_to(T0 + timedelta(hours=24))
        tomorrow = services.session_schedule(
            actor=nurse, plan=plan, scheduled_at=T0 + timedelta(hours=24), chair=1
        )
    hx = {"HX-Request": "true"}
    flowsheet = f"/sessions/{tomorrow.public_id}/"
    nurse_ui, doctor_ui = staff_client(members["nurse"]), staff_client(members["prescriber"])
    refused = nurse_ui.post(f"{flowsheet}check-in/", {"chair": "1"}, headers=hx)
    assert refused.status_code == 422
    assert b"had a dose 24 hours ago" in refused.content
    assert b'id="frequency-override-form"' not in refused.content  # a nurse cannot override
    assert nurse_ui.post(f"{flowsheet}frequency-override/", {"reason": "x" * 20}).status_code == 403
    page = doctor_ui.get(flowsheet).content.decode()
    assert 'id="frequency-override-form"' in page
    short = doctor_ui.post(f"{flowsheet}frequency-override/", {"reason": "soon"}, headers=hx)
    assert short.status_code == 400
    assert b'id="frequency-reason-error"' in short.content
    done = doctor_ui.post(
        f"{flowsheet}frequency-override/",
        {"reason": "Leaves the country for two weeks; last induction dose moved up."},
        headers=hx,
    )
    assert done.status_code == 200
    assert b"Dosing frequency overridden by" in done.content
    assert nurse_ui.post(f"{flowsheet}check-in/", {"chair": "1"}, headers=hx).status_code == 200

    extend = f"/protocols/plans/{plan.public_id}/extend/"
    assert nurse_ui.post(extend, {"extra_sessions": "2", "reason": "x" * 20}).status_code == 403
    section = doctor_ui.get(f"/patients/{patient_a.public_id}/plan/")
    assert b"Extend phase" in section.content
    bad = doctor_ui.post(extend, {"extra_sessions": "2", "reason": "more"}, headers=hx)
    assert bad.status_code == 400
    extended = doctor_ui.post(
        extend,
        {"extra_sessions": "2", "reason": "Partial response; two more infusions agreed."},
        headers=hx,
    )
    assert extended.status_code == 200
    assert b"Phase induction extended by 2." in extended.content
    assert audit_count(action="protocols.plan.extended") == 1


# --- the checks cost a fixed number of queries ------------------------------------------------------

CHECK_IN_QUERIES = 30  # measured 30 on SQLite
# order 31, administration 40: 34, the course-summary refresh (outcomes) in the same transaction,
# and the FHIR version lookup before the session row changes (fhir/screen_versions.py)
DOSE_QUERIES = 40


def test_the_floor_checks_read_a_fixed_number_of_queries(
    prescriber: Any,
    members: Any,
    patient_a: Any,
    traveller: Any,
    django_assert_max_num_queries: Any,
) -> None:
    """Check-in, order and dose over the API after one or after four earlier doses: the history
    of the patient does not add queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    nurse, nurse_api = nurse_of(members), api_client(members["nurse"])
    doctor_api = api_client(members["prescriber"])
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a)
        plan = make_plan(prescriber, patient_a)

    def one_session(day: Any) -> list[int]:
        traveller.move_to(day)
        # Resolving a token (cached per process, its last use noted once a minute) is not the
        # history's cost: done before counting.
        nurse_api.get("/api/v1/patients?limit=1")
        doctor_api.get("/api/v1/patients?limit=1")
        with scope(organization=prescriber.organization):
            session = services.session_schedule(actor=nurse, plan=plan, scheduled_at=day, chair=1)
        url = f"/api/v1/sessions/{session.public_id}"
        counts = []
        with CaptureQueriesContext(connection) as checked_in:
            assert nurse_api.post(f"{url}/check-in").status_code == 200
        counts.append(len(checked_in))
        with scope(organization=prescriber.organization):
            services.precheck_record(
                actor=nurse, session=session, checklist=ticked(session), vitals=NORMAL
            )
        with CaptureQueriesContext(connection) as ordered:
            order = doctor_api.post(f"{url}/dose-orders", {}, content_type="application/json")
            assert order.status_code == 201, order.json()
        counts.append(len(ordered))
        with CaptureQueriesContext(connection) as given:
            dose = {"dose_mg": order.json()["dose_mg"], "lot_number": "K1"}
            assert (
                nurse_api.post(
                    f"{url}/administrations", dose, content_type="application/json"
                ).status_code
                == 201
            )
        counts.append(len(given))
        with scope(organization=prescriber.organization):
            services.session_abort(actor=nurse, session=session, reason="Closed for the test.")
        return counts

    days = [T0 + timedelta(days=7 * (n // 3) + 2 * (n % 3)) for n in range(5)]
    first = one_session(days[0])
    one_session(days[1])
    one_session(days[2])
    later = one_session(days[3])
    assert later == first, (first, later)
    traveller.move_to(days[4])
    with scope(organization=prescriber.organization):
        last = services.session_schedule(actor=nurse, plan=plan, scheduled_at=days[4], chair=1)
    with django_assert_max_num_queries(CHECK_IN_QUERIES):
        assert nurse_api.post(f"/api/v1/sessions/{last.public_id}/check-in").status_code == 200
    assert first[0] <= CHECK_IN_QUERIES, first
    assert max(first[1:]) <= DOSE_QUERIES, first
