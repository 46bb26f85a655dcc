"""A clinic in the middle of its life, replayed through the services in the order it happened.

Each treated patient follows a course (protocol, sessions in induction and maintenance, response
or not); every step of every session is an event at the moment it would have happened. All events
of all patients are sorted by time and run under `clock.replaying`, so stock is drawn after it
was received, sessions never overlap in a chair, and every safety rule of a real day applies.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.actor import Actor
from ketaclinic.core import clock
from ketaclinic.demo import charts, stock
from ketaclinic.demo.charts import DemoPatient
from ketaclinic.demo.stock import Stock
from ketaclinic.measures import services as measures
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.protocols import services as protocols
from ketaclinic.sessions import services as sessions

NORMAL = {"systolic": 122, "diastolic": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}
ASSESSED = {
    "alert_and_oriented": True,
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "clinically_stable": True,
    "escort_present": True,
}
PMF_ANSWERS = {
    "concomitant_benzodiazepines": False,
    "concomitant_non_benzodiazepine_sedative_hypnotics": False,
    "concomitant_psychostimulants": False,
    "concomitant_maois": False,
    "minutes_until_ready_without_two_hour_rule": 90,
    "monitoring_hcp_phone": "555-0100",
    "monitoring_hcp_email": "nurse@riverside.example",
    "setting_address": "1 River St",
}
ROUTE = {"iv-ketamine-induction": "intravenous", "esketamine-trd": "intranasal_esketamine"}
# Spacing between doses, in days, within the protocols' sessions per week: twice a week in
# induction (2/week), at most weekly in maintenance (1/week), whatever window a rule counts in.
INDUCTION_SPACING = 4
MAINTENANCE_SPACING = 8
CHAIRS = 6
SLOTS = (time(8, 0), time(11, 0), time(14, 0))  # a session occupies its chair for ~2.5 hours


@dataclass(frozen=True)
class Course:
    protocol_id: str
    induction: int  # past induction sessions
    maintenance: int  # past maintenance sessions
    responder: bool
    today: str = ""  # "" | "dosing" | "monitoring" | "scheduled" | "first-visit"
    item9_alert: bool = False
    pending_questionnaire: bool = False


# The scenes a visitor looks for first, in this order; further treated patients draw theirs.
SCENES = (
    Course("iv-ketamine-induction", 6, 2, True, today="dosing"),
    Course("esketamine-trd", 5, 0, True, today="monitoring"),
    Course("iv-ketamine-induction", 6, 3, True, today="scheduled"),
    Course("iv-ketamine-induction", 6, 0, False),
    Course("esketamine-trd", 8, 2, True),
    Course("iv-ketamine-induction", 3, 0, False, item9_alert=True),
    Course("iv-ketamine-induction", 0, 0, False, today="first-visit", pending_questionnaire=True),
)


@dataclass
class Cast:
    prescriber: Actor
    nurse: Actor
    nurse2: Actor
    admin: Actor


@dataclass(order=True)
class Event:
    at: datetime
    order: tuple[int, int]
    run: Callable[[], object] = field(compare=False)


@dataclass
class SessionState:
    session: Any = None
    order: Any = None
    administration: Any = None
    pmf: Any = None


def course_for(rng: random.Random, index: int) -> Course:
    if index < len(SCENES):
        return SCENES[index]
    protocol_id = rng.choice(list(ROUTE))
    planned = 6 if protocol_id.startswith("iv-") else 8
    induction = rng.randint(2, planned)
    maintenance = rng.randint(0, 3) if induction == planned else 0
    return Course(protocol_id, induction, maintenance, rng.random() < 0.6)


class Clinic:
    """Collects the events of every course, then replays them in time order."""

    def __init__(self, cast: Cast, stock_: Stock, zone: str, now: datetime, rng: random.Random):
        self.cast, self.stock, self.zone, self.now, self.rng = (
            cast,
            stock_,
            ZoneInfo(zone),
            now,
            rng,
        )
        self.events: list[Event] = []
        self.sessions = 0
        self.wastes_left = 3  # a few witnessed wastes of what was drawn but not given

    def at_local(self, days_ago: int, slot: time) -> datetime:
        day = (self.now.astimezone(self.zone) - timedelta(days=days_ago)).date()
        return datetime.combine(day, slot, tzinfo=self.zone).astimezone(self.now.tzinfo)

    def add(self, at: datetime, lane: int, step: int, run: Callable[[], object]) -> None:
        self.events.append(Event(at, (lane, step), run))

    def replay(self, progress: Callable[[int], object] | None) -> None:
        for event in sorted(self.events, key=lambda e: (e.at, e.order)):
            with clock.replaying(event.at):
                event.run()
            if progress:
                progress(1)

    # --- one course ---------------------------------------------------------------------------

    def plan_course(self, lane: int, demo: DemoPatient, course: Course) -> None:
        patient, cast = demo.patient, self.cast
        route = ROUTE[course.protocol_id]
        chair = lane % CHAIRS + 1
        slot = SLOTS[(lane // CHAIRS) % len(SLOTS)]
        days = self._session_days(course)
        first_day = days[0] if days else 2
        start = self.at_local(first_day + 7, slot)
        step = iter(range(10_000))

        self.add(
            start,
            lane,
            next(step),
            lambda: charts.screen_eligible(
                cast.prescriber, cast.nurse, patient, route, clock.now()
            ),
        )
        self.add(
            start + timedelta(hours=1),
            lane,
            next(step),
            lambda: charts.consent_signed(cast.nurse, patient, route, clock.now()),
        )
        if course.protocol_id.startswith("esketamine"):
            self.add(
                start + timedelta(hours=2),
                lane,
                next(step),
                lambda: sessions.rems_enroll(
                    actor=cast.nurse,
                    patient=patient,
                    enrolled_on=clock.now().date(),
                    rems_patient_id=f"R{patient.mrn[1:]}",
                ),
            )
        plan_holder: dict[str, Any] = {}
        self.add(
            start + timedelta(hours=3),
            lane,
            next(step),
            lambda: plan_holder.update(plan=self._plan_create(patient, course)),
        )
        self._questionnaires(lane, step, demo, course, start + timedelta(hours=2, minutes=30), 0)
        last_screened = start
        past = course.induction + course.maintenance
        for number, days_ago in enumerate(days, start=1):
            t0 = self.at_local(days_ago, slot)
            if t0 - last_screened > timedelta(days=21):  # decisions are valid 30 days
                self.add(
                    t0 - timedelta(days=1),
                    lane,
                    next(step),
                    lambda: charts.rescreen(
                        cast.prescriber, cast.nurse, patient, route, clock.now()
                    ),
                )
                last_screened = t0
            if number == course.induction + 1:
                self.add(
                    t0 - timedelta(days=1, hours=-1),
                    lane,
                    next(step),
                    lambda: self._to_maintenance(plan_holder["plan"]),
                )
            if number % 2 == 1:
                self._questionnaires(lane, step, demo, course, t0 - timedelta(minutes=20), number)
            self._past_session(
                lane,
                step,
                demo,
                plan_holder,
                t0,
                chair,
                number,
                course.protocol_id.startswith("iv-"),
            )
        self._today(lane, step, demo, course, plan_holder, chair, slot, past, last_screened)

    def _session_days(self, course: Course) -> list[int]:
        """Days ago of the past sessions, oldest first, spaced as the protocol allows."""
        today_phase_maintenance = course.maintenance > 0
        if course.today in ("dosing", "monitoring", "scheduled"):
            last = MAINTENANCE_SPACING if today_phase_maintenance else INDUCTION_SPACING
        else:
            last = self.rng.randint(1, 3)
        days, day = [], last
        for index in range(course.induction + course.maintenance):
            days.append(day)
            in_maintenance = index < course.maintenance
            day += MAINTENANCE_SPACING if in_maintenance else INDUCTION_SPACING
        return sorted(days, reverse=True)

    def _plan_create(self, patient: Any, course: Course) -> Any:
        protocol = protocol_selectors.protocol_published(course.protocol_id)
        if protocol is None:
            raise LookupError(f"the demo needs the published protocol {course.protocol_id}")
        extra: dict[str, Any] = {}
        if course.protocol_id.startswith("iv-"):
            extra = {"concentration_mg_per_ml": "10", "diluent_volume_ml": "100"}
        return protocols.plan_create(
            actor=self.cast.prescriber,
            patient=patient,
            protocol=protocol,
            start_date=clock.today_in(self.zone.key),
            **extra,
        )

    def _to_maintenance(self, plan: Any) -> None:
        phase = next(p.name for p in plan.protocol.template.phases if p.kind == "maintenance")
        protocols.plan_phase_change(
            actor=self.cast.prescriber,
            plan=plan,
            to_phase=phase,
            reason="Induction complete with response; continuing at the lowest effective pace.",
        )

    def _questionnaires(
        self, lane: int, step: Any, demo: DemoPatient, course: Course, at: datetime, number: int
    ) -> None:
        planned = max(1, course.induction + course.maintenance)
        progress = min(1.0, number / min(planned, 6))
        baseline_phq = 18 + lane % 5
        baseline_gad = 13 + lane % 4
        if course.responder:
            phq = round(baseline_phq * (1 - 0.75 * progress))
            gad = round(baseline_gad * (1 - 0.6 * progress))
        else:
            phq = baseline_phq - round(3 * progress)
            gad = baseline_gad - round(2 * progress)

        def record() -> None:
            for instrument, total, items in (("phq9", phq, 8), ("gad7", gad, 7)):
                measures.response_record(
                    patient=demo.patient,
                    instrument_id=instrument,
                    answers=_spread(total, items, instrument),
                    actor=self.cast.nurse,
                    completed_at=clock.now(),
                )

        self.add(at, lane, next(step), record)

    def _past_session(
        self,
        lane: int,
        step: Any,
        demo: DemoPatient,
        holder: dict[str, Any],
        t0: datetime,
        chair: int,
        number: int,
        iv: bool,
    ) -> None:
        cast, state = self.cast, SessionState()
        self.sessions += 1
        waste = self.wastes_left > 0 and iv and number == 2
        if waste:
            self.wastes_left -= 1
        timeline: list[tuple[int, Callable[[], object]]] = [
            (-2 * 24 * 60, lambda: self._schedule(state, holder, t0, chair)),
            (0, lambda: self._check_in(state, demo)),
            (5, lambda: self._prechecks(state)),
            (8, lambda: self._order(state)),
            (10, lambda: self._administer(state)),
            (11, lambda: self._draw(state, extra_mg=Decimal("5") if waste else Decimal(0))),
            (16, lambda: self._complete_if_device(state)),
            (50, lambda: self._complete_if_infusion(state)),
            (
                50,
                lambda: sessions.vitals_record(
                    actor=cast.nurse, session=state.session, samples=[{**NORMAL, "systolic": 138}]
                ),
            ),
            (
                52,
                lambda: sessions.observation_record(
                    actor=cast.nurse, session=state.session, kind="cadss", score=8 + lane % 6
                ),
            ),
            (
                100,
                lambda: sessions.vitals_record(
                    actor=cast.nurse, session=state.session, samples=[NORMAL]
                ),
            ),
            (
                128,
                lambda: sessions.vitals_record(
                    actor=cast.nurse, session=state.session, samples=[NORMAL]
                ),
            ),
            (
                132,
                lambda: sessions.discharge_check(
                    actor=cast.nurse, session=state.session, assessment=ASSESSED
                ),
            ),
            (133, lambda: sessions.session_discharge(actor=cast.nurse, session=state.session)),
            (140, lambda: self._note(state, waste)),
            (150, lambda: sessions.note_sign(actor=cast.prescriber, session=state.session)),
        ]
        if t0 + timedelta(days=1) < self.now:  # the REMS form goes in the next day
            timeline.append((24 * 60, lambda: self._submit_pmf(state)))
        for minutes, run in timeline:
            self.add(t0 + timedelta(minutes=minutes), lane, next(step), run)

    def _today(
        self,
        lane: int,
        step: Any,
        demo: DemoPatient,
        course: Course,
        holder: dict[str, Any],
        chair: int,
        slot: time,
        past: int,
        last_screened: datetime,
    ) -> None:
        if not course.today:
            if course.item9_alert:
                self._item9(lane, step, demo)
            return
        cast, state = self.cast, SessionState()
        now = self.now
        if course.today == "dosing":
            t0 = now - timedelta(minutes=22)
        elif course.today == "monitoring":
            t0 = now - timedelta(minutes=75)
        elif course.today == "scheduled":
            t0 = now + timedelta(hours=2)
        else:  # first visit tomorrow
            t0 = self.at_local(-1, slot)
        if now - last_screened > timedelta(days=21):
            self.add(
                now - timedelta(days=1),
                lane,
                next(step),
                lambda: charts.rescreen(
                    cast.prescriber,
                    cast.nurse,
                    demo.patient,
                    ROUTE[course.protocol_id],
                    clock.now(),
                ),
            )
        schedule_at = min(t0, now) - timedelta(days=1)
        self.add(schedule_at, lane, next(step), lambda: self._schedule(state, holder, t0, chair))
        if course.pending_questionnaire:
            self.add(
                now - timedelta(hours=2),
                lane,
                next(step),
                lambda: measures.measure_link_create(
                    actor=cast.nurse, patient=demo.patient, instrument_id="phq9"
                ),
            )
        if course.today not in ("dosing", "monitoring"):
            return
        self.sessions += 1
        for minutes, run in (
            (0, lambda: self._check_in(state, demo)),
            (5, lambda: self._prechecks(state)),
            (8, lambda: self._order(state)),
            (10, lambda: self._administer(state)),
            (11, lambda: self._draw(state, extra_mg=Decimal(0))),
            (15, lambda: self._vitals_if_infusion(state)),
            (16, lambda: self._complete_if_device(state)),
            (
                50,
                lambda: sessions.vitals_record(
                    actor=cast.nurse2, session=state.session, samples=[{**NORMAL, "systolic": 141}]
                ),
            ),
        ):
            if t0 + timedelta(minutes=minutes) <= now:
                self.add(t0 + timedelta(minutes=minutes), lane, next(step), run)

    def _item9(self, lane: int, step: Any, demo: DemoPatient) -> None:
        """A PHQ-9 answered yesterday evening with item 9 'several days': an open safety alert."""
        answers = _spread(17, 8, "phq9")
        answers["9"] = 1

        def record() -> None:
            measures.response_record(
                patient=demo.patient,
                instrument_id="phq9",
                answers=answers,
                actor=self.cast.nurse,
                completed_at=clock.now(),
            )

        self.add(self.at_local(1, time(17, 30)), lane, next(step), record)

    # --- the steps of a session ---------------------------------------------------------------

    def _schedule(
        self, state: SessionState, holder: dict[str, Any], t0: datetime, chair: int
    ) -> None:
        state.session = sessions.session_schedule(
            actor=self.cast.nurse, plan=holder["plan"], scheduled_at=t0, chair=chair
        )

    def _check_in(self, state: SessionState, demo: DemoPatient) -> None:
        kg = demo.base_kg + self.rng.choice((-1, 0, 0, 1))
        charts.weigh(self.cast.nurse, demo.patient, kg, clock.now())
        state.session = sessions.session_check_in(actor=self.cast.nurse, session=state.session)

    def _prechecks(self, state: SessionState) -> None:
        from ketaclinic.sessions.workflow import checklist_for

        session = state.session
        items = checklist_for(
            drug=session.drug,
            setting=session.setting,
            childbearing_potential=session.plan.childbearing_potential,
            plan_measures=session.plan.plan_measures,
        )
        sessions.precheck_record(
            actor=self.cast.nurse,
            session=session,
            checklist={item.code: True for item in items},
            vitals=NORMAL,
        )
        session.refresh_from_db()

    def _order(self, state: SessionState) -> None:
        state.order = sessions.dose_order_sign(actor=self.cast.prescriber, session=state.session)
        state.session.refresh_from_db()

    def _administer(self, state: SessionState) -> None:
        session, order = state.session, state.order
        lot = stock.current_lot(self.stock, session.drug)
        now = clock.now()
        device_kw: dict[str, Any] = {}
        if order.device_count:  # the devices are given by the time this is charted
            device_kw = {"device_count": order.device_count, "ended_at": now}
        state.administration = sessions.dose_administer(
            actor=self.cast.nurse,
            session=session,
            dose_mg=order.dose_mg,
            lot_number=lot.lot_number,
            started_at=now,
            **device_kw,
        )

    def _draw(self, state: SessionState, extra_mg: Decimal) -> None:
        given = Decimal(state.administration.dose_mg)
        stock.draw(self.stock, self.cast.nurse, state.administration, given + extra_mg, clock.now())

    def _complete_if_device(self, state: SessionState) -> None:
        """Devices charted with their end time already moved the session to monitoring."""
        state.session.refresh_from_db()
        if state.session.drug == "esketamine" and state.session.state == "dosing":
            sessions.dose_complete(actor=self.cast.nurse, session=state.session)

    def _submit_pmf(self, state: SessionState) -> None:
        if state.pmf is not None:
            sessions.pmf_mark_submitted(
                actor=self.cast.nurse, pmf=state.pmf, submitted_on=clock.today_in(self.zone.key)
            )

    def _vitals_if_infusion(self, state: SessionState) -> None:
        if state.session.drug != "esketamine":
            sessions.vitals_record(
                actor=self.cast.nurse2, session=state.session, samples=[{**NORMAL, "systolic": 134}]
            )

    def _complete_if_infusion(self, state: SessionState) -> None:
        if state.session.drug != "esketamine":
            sessions.dose_complete(actor=self.cast.nurse, session=state.session)

    def _note(self, state: SessionState, waste: bool) -> None:
        session, cast = state.session, self.cast
        text = "Dose tolerated; no adverse event. Discharged home with an escort."
        sessions.note_save(actor=cast.nurse, session=session, text=text)
        if session.drug == "esketamine":
            state.pmf = sessions.pmf_update(actor=cast.nurse, session=session, answers=PMF_ANSWERS)
        if waste:
            stock.waste_rest(cast.nurse, state.administration, cast.prescriber.user, clock.now())


def _spread(total: int, items: int, instrument: str) -> dict[str, int]:
    """Answers summing to `total` over the first `items` items (0-3 each), item 9 at 0."""
    total = max(0, min(total, 3 * items))
    answers: dict[str, int] = {}
    left = total
    for number in range(1, items + 1):
        answers[str(number)] = min(3, left)
        left -= answers[str(number)]
    if instrument == "phq9":
        answers["9"] = 0
    return answers
