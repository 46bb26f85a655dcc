"""Chart set-ups for the session tests: a patient who may be treated, a plan, a session, and the
controlled-substance stock each administration is drawn from.

Eligibility and consent are created through the screening and consent services (call inside a
scope), so the treatment gate in every session service is the real one. Stock, draws and waste
go through the inventory services, so a signed note rests on a balanced ledger (issue 7).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from conftest import PASSWORD, totp_code
from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Clinic
from ketaclinic.consent import services as consent
from ketaclinic.consent.models import ConsentTemplate
from ketaclinic.core import clock
from ketaclinic.inventory import selectors as inventory_selectors
from ketaclinic.inventory import services as inventory
from ketaclinic.inventory.models import Container
from ketaclinic.inventory.products import (
    ESKETAMINE_28MG_NASAL_DEVICE,
    KETAMINE_50MG_PER_ML_10ML_VIAL,
)
from ketaclinic.patients import services as chart
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.protocols import services as protocols
from ketaclinic.screening.tests.helpers import chart_ready_for_screening, screen_and_decide
from ketaclinic.sessions import services

NORMAL = {"systolic": 122, "diastolic": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}
SCREENING_ROUTE = {
    "iv-ketamine-induction": "intravenous",
    "esketamine-trd": "intranasal_esketamine",
}


def sign_consent(actor: Actor, patient: Any, route: str) -> Any:
    consent.consent_templates_seed_defaults(organization=actor.organization)
    template = ConsentTemplate.objects.get(kind="treatment", route=route, is_active=True)
    version = template.versions.latest("version")
    return consent.consent_sign(
        actor=actor,
        patient=patient,
        template_version=version,
        witness=actor.user,
        signature=consent.SignatureInput(
            printed_name=patient.full_name,
            acknowledged=[a["key"] for a in version.acknowledgements],
        ),
    )


def make_eligible(actor: Actor, patient: Any, route: str) -> None:
    chart_ready_for_screening(actor, patient)
    screen_and_decide(actor, patient, routes=(route,))


def certify_for_rems(organization: Any) -> None:
    """Every clinic of the organization is a certified Spravato REMS setting. No service sets
    this yet in tests' reach, so the builder writes the two clinic settings directly."""
    Clinic.objects.filter(organization=organization).update(
        rems_setting_id="RS-TEST-0001", rems_certified_on=date(2026, 1, 5)
    )


def enroll_in_rems(actor: Actor, patient: Any) -> None:
    """The patient's Spravato REMS enrollment, once (esketamine is refused without it)."""
    from ketaclinic.sessions.models import RemsEnrollment

    if not RemsEnrollment.objects.filter(patient=patient).exists():
        services.rems_enroll(
            actor=actor,
            patient=patient,
            enrolled_on=clock.now().date(),
            rems_patient_id=f"R-{patient.pk}",
        )


def make_treatable(actor: Actor, patient: Any, protocol_id: str, *, rems: bool = True) -> None:
    """Eligible and consented; for esketamine also REMS-enrolled in a certified clinic unless
    `rems=False` (the tests of the REMS stop itself)."""
    route = SCREENING_ROUTE[protocol_id]
    make_eligible(actor, patient, route)
    sign_consent(actor, patient, route)
    if rems and protocol_id.startswith("esketamine"):
        certify_for_rems(actor.organization)
        enroll_in_rems(actor, patient)


def make_plan(
    actor: Actor, patient: Any, protocol_id: str = "iv-ketamine-induction", **kw: Any
) -> Any:
    protocols.protocol_catalog_seed(organization=actor.organization)
    protocol = protocol_selectors.protocol_published(protocol_id)
    assert protocol is not None
    if protocol_id.startswith("iv-"):
        kw.setdefault("concentration_mg_per_ml", "10")
        kw.setdefault("diluent_volume_ml", "100")
    return protocols.plan_create(
        actor=actor, patient=patient, protocol=protocol, start_date=date.today(), **kw
    )


def weigh(actor: Actor, patient: Any, kg: str = "80", days_ago: int = 0, unit: str = "kg") -> Any:
    return chart.weight_record(
        actor=actor,
        patient=patient,
        value=kg,
        unit=unit,
        measured_at=clock.now() - timedelta(days=days_ago),
    )


def ticked(session: Any) -> dict[str, bool]:
    from ketaclinic.sessions.workflow import checklist_for

    items = checklist_for(
        drug=session.drug,
        setting=session.setting,
        childbearing_potential=session.plan.childbearing_potential,
        plan_measures=session.plan.plan_measures,
    )
    return {item.code: True for item in items}


def free_chair(clinic: Any = None) -> int | None:
    """The lowest-numbered chair no booked or open session holds (one patient per chair)."""
    from ketaclinic.accounts.models import Chair
    from ketaclinic.sessions.models import TreatmentSession

    clinic = clinic or Clinic.objects.order_by("pk").first()
    taken = set(
        TreatmentSession.objects.filter(clinic=clinic)
        .exclude(state__in=("discharged", "aborted"))
        .values_list("chair", flat=True)
    )
    numbers = Chair.objects.filter(clinic=clinic, is_active=True).order_by("number")
    return next((n for n in numbers.values_list("number", flat=True) if n not in taken), None)


def session_checked_in(
    actor: Actor,
    patient: Any,
    protocol_id: str = "iv-ketamine-induction",
    *,
    weight: bool = True,
    rems: bool = True,
) -> Any:
    make_treatable(actor, patient, protocol_id, rems=rems)
    if weight:
        weigh(actor, patient)
    plan = make_plan(actor, patient, protocol_id)
    session = services.session_schedule(
        actor=actor, plan=plan, scheduled_at=clock.now(), chair=free_chair()
    )
    return services.session_check_in(actor=actor, session=session)


def session_prechecked(
    actor: Actor, patient: Any, protocol_id: str = "iv-ketamine-induction"
) -> Any:
    session = session_checked_in(actor, patient, protocol_id)
    services.precheck_record(actor=actor, session=session, checklist=ticked(session), vitals=NORMAL)
    session.refresh_from_db()
    return session


# --- the controlled-substance ledger (inventory services) -------------------------------------

STOCK_EXPIRES = datetime(2099, 1, 1, tzinfo=UTC)
WASTE_METHOD = "Expelled into a drug-disposal container"


def receive_stock(
    actor: Actor, drug: str = "ketamine", containers: int = 4, clinic: Any = None
) -> Any:
    """Receive a lot into the clinic's safe: 50 mg/mL x 10 mL ketamine vials, or 28 mg esketamine
    devices (`drug="esketamine"`). Returns the receipt's ledger row (`.lot`)."""
    spec = ESKETAMINE_28MG_NASAL_DEVICE if drug == "esketamine" else KETAMINE_50MG_PER_ML_10ML_VIAL
    product = inventory.product_register(actor=actor, code=spec.product_id)
    clinic = clinic or Clinic.objects.order_by("pk").first()
    location = inventory.location_create(
        actor=actor, clinic=clinic, name=f"Safe {product.pk}-{Container.objects.count()}"
    )
    return inventory.stock_receive(
        actor=actor,
        product=product,
        location=location,
        lot_number=f"{'SPR' if drug == 'esketamine' else 'KET'}-{location.pk}",
        containers=containers,
        expires_at=STOCK_EXPIRES,
        supplier_name="Henry Schein",
        supplier_address="135 Duryea Rd, Melville NY",
        supplier_dea_number="RH0123456",
        invoice_reference="INV-2026-001",
    )


def draw_for(actor: Actor, administration: Any, quantity_mg: Any = None, *, lot: Any = None) -> Any:
    """Draw `quantity_mg` (default: the dose given) for an administration, from the containers
    of `lot` (default: a lot received now for the session's drug), one container at a time."""
    if lot is None:
        lot = receive_stock(actor, administration.drug, clinic=administration.session.clinic).lot
    remaining = Decimal(str(quantity_mg if quantity_mg is not None else administration.dose_mg))
    for container in Container.objects.filter(lot=lot).order_by("label"):
        if remaining <= 0:
            break
        container.refresh_from_db()
        take = min(remaining, Decimal(container.remaining_mg))
        if take <= 0:
            continue
        inventory.inventory_draw_for_administration(
            actor=actor,
            container=container,
            quantity_mg=take,
            administration_public_id=administration.public_id,
            patient=administration.patient,
        )
        remaining -= take
    assert remaining == 0, f"{remaining} mg could not be drawn from lot {lot.lot_number}"
    return lot


def waste_rest(actor: Actor, administration: Any, witness: Any, password: str) -> Any:
    """Waste, witnessed by `witness` (a membership) re-entering `password`, what was drawn for
    the administration but not given. Returns the reconciliation afterwards."""
    account = inventory_selectors.administration_reconciliation(administration.public_id)
    if account.difference_mg > 0:
        inventory.stock_waste(
            actor=actor,
            source="drawn_dose",
            administration_public_id=administration.public_id,
            witness_username=witness.user.username,
            witness_code=totp_code(witness.user) if password == PASSWORD else password,
            method=WASTE_METHOD,
            quantity_mg=account.difference_mg,
        )
    return inventory_selectors.administration_reconciliation(administration.public_id)


def recorded_administration(actor: Actor, patient: Any, dose_mg: Any = "40") -> Any:
    """The public id of a dose charted for `patient`, stored directly (no screening, consent or
    gates): for inventory tests, which need an administration to draw for but test the ledger,
    not the session. The session is closed (aborted after the dose), so it holds no chair."""
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.sessions.models import DoseAdministration, DoseOrder, TreatmentSession

    protocols.protocol_catalog_seed(organization=actor.organization)
    protocol = protocol_selectors.protocol_published("iv-ketamine-induction")
    assert protocol is not None
    now = clock.now()
    common = {"organization": actor.organization, "recorded_by": actor.user}
    plan = TreatmentPlan.objects.create(
        **common,
        patient=patient,
        protocol=protocol,
        protocol_key=protocol.key,
        prescriber=actor.user,
        phase="induction",
        current_amount=Decimal("0.5"),
        start_date=now.date(),
    )
    session = TreatmentSession.objects.create(
        **common,
        patient=patient,
        plan=plan,
        protocol=protocol,
        protocol_key=protocol.key,
        clinic=Clinic.objects.earliest("pk"),
        drug="racemic-ketamine",
        route="intravenous",
        setting="clinic",
        session_number=1,
        scheduled_at=now,
        state="aborted",
        state_changed_at=now,
        policy_key="session-safety@1",
        checked_in_at=now,
        dose_started_at=now,
    )
    order = DoseOrder.objects.create(
        **common,
        session=session,
        protocol=protocol,
        protocol_key=protocol.key,
        algorithm="test-fixture",
        policy_key="session-safety@1",
        prescribed_amount=Decimal(str(dose_mg)),
        prescribed_unit="mg",
        dose_mg=Decimal(str(dose_mg)),
        result={},
        signed_at=now,
    )
    return DoseAdministration.objects.create(
        **common,
        session=session,
        order=order,
        patient=patient,
        drug="racemic-ketamine",
        route="intravenous",
        dose_mg=Decimal(str(dose_mg)),
        lot_number="K1",
        started_at=now,
    ).public_id
