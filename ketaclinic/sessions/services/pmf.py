"""Spravato REMS: patient enrolment and the Patient Monitoring Form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop, ValidationFailed
from ketaclinic.core.formatting import plain_number
from ketaclinic.patients.models import Patient
from ketaclinic.sessions import rems
from ketaclinic.sessions.models import (
    AdverseEvent,
    DischargeCheck,
    DoseAdministration,
    PatientMonitoringForm,
    Precheck,
    RemsEnrollment,
    SessionObservation,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.services._common import (
    _audit,
    _locked,
    session_policy,
)

# --- Spravato REMS ------------------------------------------------------------------------------

# Answers the session cannot supply; staff enter them on the form.
PMF_MANUAL_FIELDS = (
    "concomitant_benzodiazepines",
    "concomitant_non_benzodiazepine_sedative_hypnotics",
    "concomitant_psychostimulants",
    "concomitant_maois",
    "concomitant_opioids",
    "minutes_until_ready_without_two_hour_rule",
    "monitoring_hcp_phone",
    "monitoring_hcp_email",
    "setting_address",
)


def rems_enroll(
    *, actor: Actor, patient: Patient, enrolled_on: Any, rems_patient_id: str = ""
) -> RemsEnrollment:
    actor.require(Cap.SESSION_RUN)
    if not isinstance(enrolled_on, date):
        raise ValidationFailed.for_field("enrolled_on", "Give the enrollment date.")
    # A day of slack: the clinic's local date may be ahead of UTC's.
    if enrolled_on > clock.now().date() + timedelta(days=1):
        raise ValidationFailed.for_field("enrolled_on", "The enrollment date is in the future.")
    row = RemsEnrollment(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        rems_patient_id=rems_patient_id.strip()[:40],
        enrolled_on=enrolled_on,
    )
    try:
        with transaction.atomic():
            row.save()
            audit_record(
                actor=actor,
                action="sessions.rems.enrolled",
                patient_id=patient.public_id,
                obj=row,
                detail={"rems_patient_id": row.rems_patient_id},
            )
    except IntegrityError:
        raise Conflict("The patient is already enrolled in the REMS.") from None
    return row


def _bp_near(entries: list[VitalsEntry], at: datetime, tolerance: timedelta) -> VitalsEntry | None:
    close = [e for e in entries if e.systolic and abs(e.taken_at - at) <= tolerance]
    return min(close, key=lambda e: abs(e.taken_at - at)) if close else None


def pmf_auto_fields(session: TreatmentSession) -> dict[str, Any]:
    """The PMF answers the session record supplies."""
    from ketaclinic.sessions.selectors import local_date

    patient, clinic, policy = session.patient, session.clinic, session_policy(session)
    administration = (
        DoseAdministration.objects.filter(session=session)
        .select_related("recorded_by")
        .order_by("pk")
        .first()
    )
    vitals = list(VitalsEntry.objects.filter(session=session).order_by("taken_at", "pk"))
    predose = [e for e in vitals if e.predose and e.systolic]
    post = [e for e in vitals if not e.predose and e.systolic]
    check = DischargeCheck.objects.filter(session=session, ready=True).order_by("-pk").first()
    observations = list(SessionObservation.objects.filter(session=session))
    events = set(AdverseEvent.objects.filter(session=session).values_list("event_code", flat=True))
    data: dict[str, Any] = {
        "patient_first_name": patient.given_name,
        "patient_last_name": patient.family_name,
        "patient_date_of_birth": patient.birth_date.isoformat(),
        "patient_sex": patient.get_sex_at_birth_display(),
        "first_treatment": session.session_number == 1,
        "patient_enrolled_in_rems": RemsEnrollment.objects.filter(patient=patient).exists(),
        "setting_name": clinic.name,
        "setting_address": clinic.address,
        "experienced_sedation": "sedation" in events
        or any(o.kind == "sedation" and o.score is not None and o.score < 5 for o in observations),
        "experienced_dissociation": "dissociation" in events
        or any(o.kind == "cadss" and o.score and o.score > 0 for o in observations),
        "experienced_respiratory_depression": "respiratory_depression" in events,
    }
    if administration is not None:
        hcp = administration.recorded_by
        data.update(
            monitoring_hcp_name=hcp.display_name,
            monitoring_hcp_email=hcp.email,
            treatment_date=local_date(session, administration.started_at).isoformat(),
            lot_number=administration.lot_number,
        )
        mg = plain_number(administration.dose_mg)  # "84", never "84.0" or "1E+2"
        data["dose"] = mg if mg in ("56", "84") else "other"
        if data["dose"] == "other":
            data["dose_other_mg"] = mg
        data["monitoring_hcp_phone"] = clinic.phone or None
    if predose:
        data.update(
            bp_predose_systolic=predose[-1].systolic,
            bp_predose_diastolic=predose[-1].diastolic,
            vitals_acceptable_before_administration=Precheck.objects.filter(
                session=session, passed=True
            ).exists(),
        )
    if session.dose_started_at is not None:
        recheck = _bp_near(
            post,
            session.dose_started_at + timedelta(minutes=policy.bp_recheck_minutes_after_esketamine),
            timedelta(minutes=policy.bp_recheck_tolerance_minutes),
        )
        if recheck:
            data.update(bp_40min_systolic=recheck.systolic, bp_40min_diastolic=recheck.diastolic)
    if post:
        data.update(
            bp_completion_systolic=post[-1].systolic, bp_completion_diastolic=post[-1].diastolic
        )
    if check is not None:
        data["vitals_acceptable_before_completion"] = True
    if session.discharged_at and session.dose_started_at:
        data["monitoring_duration_minutes"] = int(
            (session.discharged_at - session.dose_started_at) / timedelta(minutes=1)
        )
    return data


def _pmf_refresh(
    session: TreatmentSession, answers: Mapping[str, Any] | None = None
) -> PatientMonitoringForm:
    pmf = PatientMonitoringForm.objects.filter(session=session).first()
    manual = {k: v for k, v in (pmf.data if pmf else {}).items() if k in PMF_MANUAL_FIELDS}
    manual.update({k: v for k, v in (answers or {}).items() if k in PMF_MANUAL_FIELDS})
    data = {**pmf_auto_fields(session), **{k: v for k, v in manual.items() if v not in (None, "")}}
    missing = rems.pmf_missing_fields(data)
    problems = rems.pmf_problems(data) if not missing else []
    treatment_date = (
        datetime.fromisoformat(data["treatment_date"]).date()
        if data.get("treatment_date")
        else clock.now().date()
    )
    if pmf is None:
        pmf = PatientMonitoringForm(
            organization=session.organization,
            session=session,
            recorded_by=session.recorded_by or session.plan.prescriber,
        )
    pmf.data, pmf.missing, pmf.problems = data, missing, problems
    pmf.rule = rems.RULE_PMF
    pmf.treatment_date = treatment_date
    pmf.due_on = rems.pmf_submission_deadline(treatment_date)
    pmf.save()
    return pmf


def pmf_update(
    *, actor: Actor, session: TreatmentSession, answers: Mapping[str, Any]
) -> PatientMonitoringForm:
    """Staff answer the PMF questions the session cannot (concomitant medicines, readiness)."""
    actor.require(Cap.SESSION_RUN)
    if session.drug != "esketamine":
        raise ValidationFailed.for_field("session", "Only esketamine sessions have a REMS form.")
    unknown = sorted(set(answers) - set(PMF_MANUAL_FIELDS))
    if unknown:
        raise ValidationFailed(
            "These answers come from the session record.",
            [FieldError(k, "Filled from the session.") for k in unknown],
        )
    with transaction.atomic():
        session = _locked(session)
        pmf = _pmf_refresh(session, answers)
        _audit(
            actor,
            "sessions.pmf.updated",
            session,
            pmf,
            answered=sorted(answers),
            missing=pmf.missing,
        )
    return pmf


def pmf_mark_submitted(
    *, actor: Actor, pmf: PatientMonitoringForm, submitted_on: Any
) -> PatientMonitoringForm:
    actor.require(Cap.SESSION_RUN)
    if not isinstance(submitted_on, date) or isinstance(submitted_on, datetime):
        raise ValidationFailed.for_field("submitted_on", "Give the date the form was submitted.")
    # The same dates the flowsheet form allows, for every caller: not in the future (clinic-local
    # today), not before the treatment it reports.
    today = clock.now().astimezone(ZoneInfo(pmf.session.clinic.time_zone)).date()
    if submitted_on > today:
        raise ValidationFailed.for_field("submitted_on", "The date is in the future.")
    if pmf.treatment_date and submitted_on < pmf.treatment_date:
        raise ValidationFailed.for_field(
            "submitted_on", "The form cannot be submitted before the treatment."
        )
    if pmf.missing:
        raise SafetyStop.for_field("pmf", "Complete the form before submitting it.")
    with transaction.atomic():
        pmf.submitted_on = submitted_on
        pmf.save(update_fields=["submitted_on", "updated_at"])
        _audit(actor, "sessions.pmf.submitted", pmf.session, pmf, submitted_on=str(submitted_on))
    return pmf
