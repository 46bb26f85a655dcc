"""The dose calculator: protocol + current weight + prescribed amount -> milligrams, millilitres,
pump rate or device count. Pure: standard library, pint and other pure modules only.

Algorithms (the id is stored beside every result):

- `dose-weight-based@1`: mg = mg/kg x kg, with the most recent weight measured within the policy
  window before `now`.
- `dose-fixed@1`: mg as prescribed (sublingual, oral).
- `dose-esketamine-device@1`: mg in whole 28 mg devices only.
- `dose-titration@1`: the next amount one protocol step up or down, never beyond a cap.

Rounding rule: the dose is rounded half-up to 0.1 mg, except that it is rounded down whenever
half-up would put it above a cap; volumes are rounded down to 0.01 mL and pump rates down to
0.1 mL/h, so what is drawn up or pumped never exceeds the calculated dose. A prescribed amount
above a cap is refused, never trimmed: the prescriber must see and change it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Protocol

import pint

from ketaclinic.core.errors import FieldError, SafetyStop
from ketaclinic.core.formatting import plain_number as _n
from ketaclinic.patients.units import UnitError, weight_to_kg
from ketaclinic.protocols.catalog import DoseCaps, DoseKind, ProtocolTemplate

ALGORITHM_WEIGHT_BASED = "dose-weight-based@1"
ALGORITHM_FIXED = "dose-fixed@1"
ALGORITHM_ESKETAMINE_DEVICE = "dose-esketamine-device@1"
ALGORITHM_TITRATION = "dose-titration@1"

ROUNDING_RULE = (
    "dose half-up to 0.1 mg, down if half-up would exceed a cap; "
    "volume down to 0.01 mL; pump rate down to 0.1 mL/h"
)

# Decimal magnitudes throughout, so no float ever touches a dose.
UNITS: pint.UnitRegistry[Decimal] = pint.UnitRegistry(non_int_type=Decimal)

MG = Decimal("0.1")
MG_PER_KG = Decimal("0.01")
ML = Decimal("0.01")
ML_PER_H = Decimal("0.1")
_REPORTED_MG_PER_KG = Decimal("0.001")


class DoseRefused(SafetyStop):
    """A hard stop: the dose may not be ordered or given as asked. Names the input at fault."""

    code = "dose-refused"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason, [FieldError(field, reason)])
        self.field = field
        self.reason = reason


class DosingPolicy(Protocol):
    """What the calculator needs from a clinic's safety policy (SessionSafetyPolicy fits)."""

    @property
    def weight_max_age_days(self) -> int: ...

    @property
    def require_current_weight_for_fixed_doses(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    value: Decimal
    unit: str  # "kg" or "lb"; converted with pint
    measured_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.measured_at, "measured_at")


@dataclass(frozen=True, slots=True)
class SelectedWeight:
    weight_kg: Decimal
    measured_at: datetime
    entered_as: str  # what the nurse typed, e.g. "154.5 lb"


@dataclass(frozen=True, slots=True)
class DoseInput:
    prescribed_amount: Decimal  # mg/kg for weight-based protocols, mg otherwise
    weights: tuple[WeightMeasurement, ...] = ()
    concentration_mg_per_ml: Decimal | None = None  # the vial or solution actually used
    infusion_minutes: int | None = None  # None: the protocol's default
    diluent_volume_ml: Decimal = Decimal("0")  # bag volume the drug is added to
    session_number: int | None = None  # 1 = first dosing session of the plan


@dataclass(frozen=True, slots=True)
class DoseResult:
    protocol_key: str
    algorithm: str
    drug: str
    route: str
    prescribed_amount: Decimal
    prescribed_unit: str
    dose_mg: Decimal
    weight: SelectedWeight | None
    dose_mg_per_kg: Decimal | None  # the dose actually ordered, per kg (to 0.001)
    concentration_mg_per_ml: Decimal | None
    volume_ml: Decimal | None
    mg_in_volume: Decimal | None  # volume x concentration: what is drawn up
    infusion_minutes: int | None
    diluent_volume_ml: Decimal | None
    pump_rate_ml_per_h: Decimal | None
    device_count: int | None
    minutes_between_devices: int | None
    session_number: int | None
    caps: DoseCaps
    rounding: str
    computed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def calculate_dose(
    dose_input: DoseInput, *, protocol: ProtocolTemplate, policy: DosingPolicy, now: datetime
) -> DoseResult:
    """Compute a dose under `protocol`, or raise DoseRefused naming the input at fault."""
    _require_aware(now, "now")
    amount = _positive_decimal(dose_input.prescribed_amount, "prescribed_amount")
    if amount < protocol.dose.minimum_amount:
        raise DoseRefused(
            "prescribed_amount",
            f"{_n(amount)} {protocol.dose.unit} is below this protocol's minimum of "
            f"{_n(protocol.dose.minimum_amount)} {protocol.dose.unit}; check the decimal point.",
        )
    kind = protocol.dose.kind
    if kind is DoseKind.PER_KG:
        weight = select_current_weight(
            dose_input.weights, now=now, max_age_days=policy.weight_max_age_days
        )
        return _weight_based(dose_input, amount, weight, protocol, now)
    optional_weight = None
    if policy.require_current_weight_for_fixed_doses:
        optional_weight = select_current_weight(
            dose_input.weights, now=now, max_age_days=policy.weight_max_age_days
        )
    if kind is DoseKind.DEVICE:
        return _device_dose(dose_input, amount, optional_weight, protocol, now)
    return _fixed_dose(dose_input, amount, optional_weight, protocol, now)


def select_current_weight(
    weights: tuple[WeightMeasurement, ...], *, now: datetime, max_age_days: int
) -> SelectedWeight:
    """The most recent weight measured at or before `now`, if within `max_age_days`."""
    if not weights:
        raise DoseRefused("weights", "No body weight is recorded; weigh the patient first.")
    past = [w for w in weights if w.measured_at <= now]
    if not past:
        raise DoseRefused("weights", "Every recorded weight is dated in the future; check them.")
    latest = max(past, key=lambda w: w.measured_at)
    age = now - latest.measured_at
    if age > timedelta(days=max_age_days):
        raise DoseRefused(
            "weights",
            f"The most recent weight was measured {age.days} days ago; this clinic's policy needs "
            f"one from the last {max_age_days} days. Weigh the patient again.",
        )
    try:
        weight_kg = weight_to_kg(Decimal(latest.value), latest.unit)
    except UnitError as error:
        raise DoseRefused("weights", error.message) from error
    return SelectedWeight(weight_kg, latest.measured_at, f"{_n(latest.value)} {latest.unit}")


# --- the three dose rules ---------------------------------------------------------------------


def _weight_based(
    dose_input: DoseInput,
    mg_per_kg: Decimal,
    weight: SelectedWeight,
    protocol: ProtocolTemplate,
    now: datetime,
) -> DoseResult:
    caps = protocol.caps
    if caps.max_mg_per_kg is not None and mg_per_kg > caps.max_mg_per_kg:
        raise DoseRefused(
            "prescribed_amount",
            f"{_n(mg_per_kg)} mg/kg is above this protocol's cap of {_n(caps.max_mg_per_kg)} mg/kg.",
        )
    raw_mg = _magnitude(
        UNITS.Quantity(mg_per_kg, "mg/kg") * UNITS.Quantity(weight.weight_kg, "kg"), "mg"
    )
    if caps.max_mg is not None and raw_mg > caps.max_mg:
        raise DoseRefused(
            "prescribed_amount",
            f"{_n(mg_per_kg)} mg/kg x {_n(weight.weight_kg)} kg = {_n(raw_mg, 1)} mg is above this "
            f"protocol's absolute cap of {_n(caps.max_mg)} mg.",
        )
    minutes = _infusion_minutes(dose_input, protocol)
    ceilings = [caps.max_mg, _per_kg_ceiling(caps.max_mg_per_kg, weight.weight_kg)]
    rate_cap = caps.max_infusion_rate_mg_per_kg_per_h
    if minutes is not None and rate_cap is not None:
        rate = _per_hour(UNITS.Quantity(mg_per_kg, "mg/kg"), minutes, "mg/kg/h")
        if rate > rate_cap:
            shortest = (mg_per_kg * 60 / rate_cap).to_integral_value(rounding=ROUND_CEILING)
            raise DoseRefused(
                "infusion_minutes",
                f"{_n(mg_per_kg)} mg/kg over {minutes} min runs at "
                f"{_n(rate, 3)} mg/kg/h, above the {_n(rate_cap)} mg/kg/h "
                f"ceiling; infuse over at least {shortest} min.",
            )
        ceilings.append(rate_cap * weight.weight_kg * Decimal(minutes) / 60)
    dose_mg = _round_dose(raw_mg, _lowest(ceilings))
    return _result(
        dose_input,
        protocol,
        now,
        algorithm=ALGORITHM_WEIGHT_BASED,
        prescribed=mg_per_kg,
        dose_mg=dose_mg,
        weight=weight,
        infusion_minutes=minutes,
    )


def _fixed_dose(
    dose_input: DoseInput,
    mg: Decimal,
    weight: SelectedWeight | None,
    protocol: ProtocolTemplate,
    now: datetime,
) -> DoseResult:
    if mg != mg.quantize(MG, rounding=ROUND_DOWN):
        raise DoseRefused("prescribed_amount", f"{_n(mg)} mg: fixed doses are written to 0.1 mg.")
    _check_fixed_caps(dose_input, mg, weight, protocol)
    minutes = _infusion_minutes(dose_input, protocol)
    return _result(
        dose_input,
        protocol,
        now,
        algorithm=ALGORITHM_FIXED,
        prescribed=mg,
        dose_mg=mg,
        weight=weight,
        infusion_minutes=minutes,
    )


def _device_dose(
    dose_input: DoseInput,
    mg: Decimal,
    weight: SelectedWeight | None,
    protocol: ProtocolTemplate,
    now: datetime,
) -> DoseResult:
    rule = protocol.dose
    device_mg, device_ml = rule.device_mg, rule.device_volume_ml
    if device_mg is None or device_ml is None:  # DoseRule forbids it; keeps the types honest
        raise ValueError(f"{protocol.key} is a device protocol without a device size")
    if mg % device_mg != 0:
        raise DoseRefused(
            "prescribed_amount",
            f"{_n(mg)} mg is not a whole number of {_n(device_mg)} mg devices.",
        )
    _check_fixed_caps(dose_input, mg, weight, protocol)
    if dose_input.infusion_minutes is not None or dose_input.diluent_volume_ml:
        raise DoseRefused("infusion_minutes", "A nasal spray is neither infused nor diluted.")
    devices = int(mg / device_mg)
    device_concentration = (device_mg / device_ml).quantize(MG)  # 140.0 mg/mL for Spravato
    volume = device_ml * devices
    return DoseResult(
        protocol_key=protocol.key,
        algorithm=ALGORITHM_ESKETAMINE_DEVICE,
        drug=protocol.drug.value,
        route=protocol.route.value,
        prescribed_amount=mg,
        prescribed_unit=protocol.dose.unit,
        dose_mg=mg,
        weight=weight,
        dose_mg_per_kg=_per_kg(mg, weight),
        concentration_mg_per_ml=device_concentration,
        volume_ml=volume,
        mg_in_volume=volume * device_concentration,
        infusion_minutes=None,
        diluent_volume_ml=None,
        pump_rate_ml_per_h=None,
        device_count=devices,
        minutes_between_devices=rule.minutes_between_devices,
        session_number=dose_input.session_number,
        caps=protocol.caps,
        rounding="whole devices only",
        computed_at=now,
    )


def _check_fixed_caps(
    dose_input: DoseInput, mg: Decimal, weight: SelectedWeight | None, protocol: ProtocolTemplate
) -> None:
    rule, caps = protocol.dose, protocol.caps
    if rule.allowed_amounts and mg not in rule.allowed_amounts:
        allowed = " or ".join(f"{_n(amount)} mg" for amount in rule.allowed_amounts)
        raise DoseRefused(
            "prescribed_amount", f"{_n(mg)} mg is not a dose of this protocol ({allowed})."
        )
    if caps.max_mg is not None and mg > caps.max_mg:
        raise DoseRefused(
            "prescribed_amount",
            f"{_n(mg)} mg is above this protocol's cap of {_n(caps.max_mg)} mg.",
        )
    first_cap = rule.first_session_max_mg
    if dose_input.session_number == 1 and first_cap is not None and mg > first_cap:
        raise DoseRefused(
            "prescribed_amount",
            f"The first session of this protocol is at most {_n(first_cap)} mg; {_n(mg)} mg was asked.",
        )
    if caps.max_mg_per_kg is not None and weight is not None:
        if mg > caps.max_mg_per_kg * weight.weight_kg:
            raise DoseRefused(
                "prescribed_amount",
                f"{_n(mg)} mg for {_n(weight.weight_kg)} kg is above the cap of "
                f"{_n(caps.max_mg_per_kg)} mg/kg.",
            )


# --- titration --------------------------------------------------------------------------------


class TitrationDirection(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


@dataclass(frozen=True, slots=True)
class TitrationResult:
    protocol_key: str
    algorithm: str
    direction: TitrationDirection
    previous_amount: Decimal
    new_amount: Decimal
    unit: str
    limited_by: str | None  # the cap that held the step short, if any
    computed_at: datetime


def titrate(
    *,
    protocol: ProtocolTemplate,
    current_amount: Decimal,
    direction: TitrationDirection,
    now: datetime,
    sessions_at_current_amount: int,
    worst_adverse_event_grade: int | None,
    last_changed_at: datetime | None = None,
    weight_kg: Decimal | None = None,
    infusion_minutes: int | None = None,
) -> TitrationResult:
    """The next prescribed amount one protocol step away, or DoseRefused saying why not.

    A decrease is always allowed down to the protocol minimum (tolerability comes first). An
    increase needs enough sessions at the current amount, enough days since the last change, and
    a tolerated current dose; it stops at the lowest cap (per kg, infusion rate for the given
    duration, and, when `weight_kg` is given, the absolute cap).
    """
    _require_aware(now, "now")
    rule = protocol.titration
    if rule is None:
        raise DoseRefused("protocol", f"{protocol.key} has a fixed dose and is not titrated.")
    current = _positive_decimal(current_amount, "current_amount")
    unit = protocol.dose.unit
    if direction is TitrationDirection.DECREASE:
        new_amount = _step_down(protocol, current, rule.step)
        limited_by = "minimum" if new_amount == protocol.dose.minimum_amount else None
    else:
        _check_increase_allowed(
            rule_min_sessions=rule.min_sessions_at_current_amount,
            rule_max_grade=rule.max_adverse_event_grade_for_increase,
            rule_min_days=rule.min_days_between_changes,
            sessions=sessions_at_current_amount,
            grade=worst_adverse_event_grade,
            last_changed_at=last_changed_at,
            now=now,
        )
        new_amount, limited_by = _step_up(protocol, current, rule.step, weight_kg, infusion_minutes)
    return TitrationResult(
        protocol_key=protocol.key,
        algorithm=ALGORITHM_TITRATION,
        direction=direction,
        previous_amount=current,
        new_amount=new_amount,
        unit=unit,
        limited_by=limited_by,
        computed_at=now,
    )


def _check_increase_allowed(
    *,
    rule_min_sessions: int,
    rule_max_grade: int,
    rule_min_days: int | None,
    sessions: int,
    grade: int | None,
    last_changed_at: datetime | None,
    now: datetime,
) -> None:
    if sessions < rule_min_sessions:
        raise DoseRefused(
            "sessions_at_current_amount",
            f"Raise only after {rule_min_sessions} session(s) at the current dose; "
            f"{sessions} so far.",
        )
    if grade is not None and grade > rule_max_grade:
        raise DoseRefused(
            "worst_adverse_event_grade",
            f"A grade {grade} adverse event at the current dose; raising needs grade "
            f"{rule_max_grade} or lower.",
        )
    if rule_min_days is not None and last_changed_at is not None:
        _require_aware(last_changed_at, "last_changed_at")
        if now - last_changed_at < timedelta(days=rule_min_days):
            raise DoseRefused(
                "last_changed_at",
                f"The dose last changed less than {rule_min_days} days ago.",
            )


def _step_down(protocol: ProtocolTemplate, current: Decimal, step: Decimal) -> Decimal:
    rule = protocol.dose
    if current <= rule.minimum_amount:
        raise DoseRefused("current_amount", f"{_n(current)} is already this protocol's minimum.")
    if rule.allowed_amounts:
        lower = [amount for amount in rule.allowed_amounts if amount < current]
        return max(lower)
    return max(current - step, rule.minimum_amount)


def _step_up(
    protocol: ProtocolTemplate,
    current: Decimal,
    step: Decimal,
    weight_kg: Decimal | None,
    infusion_minutes: int | None,
) -> tuple[Decimal, str | None]:
    ceiling, ceiling_name = _titration_ceiling(protocol, weight_kg, infusion_minutes)
    rule = protocol.dose
    if rule.allowed_amounts:
        # Only listed amounts may be given, so "one step" is the next listed amount.
        higher = [amount for amount in rule.allowed_amounts if amount > current]
        target = min(higher) if higher else current
    else:
        target = current + step
    limited_by = None
    if ceiling is not None and target > ceiling:
        limited_by = ceiling_name
        if rule.allowed_amounts:
            fitting = [a for a in rule.allowed_amounts if a <= ceiling]
            target = max(fitting) if fitting else current
        else:
            quantum = MG_PER_KG if rule.kind is DoseKind.PER_KG else MG
            target = ceiling.quantize(quantum, rounding=ROUND_DOWN)
    if target <= current:
        raise DoseRefused("current_amount", f"{_n(current)} {rule.unit} is already at the cap.")
    return target, limited_by


def _titration_ceiling(
    protocol: ProtocolTemplate, weight_kg: Decimal | None, infusion_minutes: int | None
) -> tuple[Decimal | None, str]:
    """The lowest cap, expressed in the dose rule's own unit, and its name."""
    caps = protocol.caps
    ceilings: list[tuple[Decimal, str]] = []
    if protocol.dose.kind is DoseKind.PER_KG:
        if caps.max_mg_per_kg is not None:
            ceilings.append((caps.max_mg_per_kg, "max_mg_per_kg"))
        if caps.max_mg is not None and weight_kg is not None:
            ceilings.append((caps.max_mg / weight_kg, "max_mg"))
        rate_cap = caps.max_infusion_rate_mg_per_kg_per_h
        if rate_cap is not None and protocol.infusion is not None:
            minutes = (
                protocol.infusion.default_minutes if infusion_minutes is None else infusion_minutes
            )
            ceilings.append((rate_cap * Decimal(minutes) / 60, "max_infusion_rate_mg_per_kg_per_h"))
    else:
        if caps.max_mg is not None:
            ceilings.append((caps.max_mg, "max_mg"))
        if caps.max_mg_per_kg is not None and weight_kg is not None:
            ceilings.append((caps.max_mg_per_kg * weight_kg, "max_mg_per_kg"))
    if not ceilings:
        return None, ""
    return min(ceilings, key=lambda pair: pair[0])


# --- helpers ----------------------------------------------------------------------------------


def _result(
    dose_input: DoseInput,
    protocol: ProtocolTemplate,
    now: datetime,
    *,
    algorithm: str,
    prescribed: Decimal,
    dose_mg: Decimal,
    weight: SelectedWeight | None,
    infusion_minutes: int | None,
) -> DoseResult:
    concentration = dose_input.concentration_mg_per_ml
    if infusion_minutes is not None and concentration is None:
        raise DoseRefused(
            "concentration_mg_per_ml", "An infusion needs the vial concentration to set the pump."
        )
    volume = mg_in_volume = rate = diluent = None
    if concentration is not None:
        concentration = _positive_decimal(concentration, "concentration_mg_per_ml")
        volume = _volume_ml(dose_mg, concentration)
        mg_in_volume = volume * concentration
    if infusion_minutes is not None and volume is not None:
        diluent = Decimal(dose_input.diluent_volume_ml)
        if diluent < 0:
            raise DoseRefused("diluent_volume_ml", "The diluent volume cannot be negative.")
        rate = _per_hour(UNITS.Quantity(volume + diluent, "mL"), infusion_minutes, "mL/h")
        rate = rate.quantize(ML_PER_H, rounding=ROUND_DOWN)
        if rate <= 0:
            raise DoseRefused("infusion_minutes", "The pump rate rounds to 0 mL/h; add diluent.")
    elif dose_input.diluent_volume_ml:
        raise DoseRefused("diluent_volume_ml", "Only an infusion is diluted.")
    return DoseResult(
        protocol_key=protocol.key,
        algorithm=algorithm,
        drug=protocol.drug.value,
        route=protocol.route.value,
        prescribed_amount=prescribed,
        prescribed_unit=protocol.dose.unit,
        dose_mg=dose_mg,
        weight=weight,
        dose_mg_per_kg=_per_kg(dose_mg, weight),
        concentration_mg_per_ml=concentration,
        volume_ml=volume,
        mg_in_volume=mg_in_volume,
        infusion_minutes=infusion_minutes,
        diluent_volume_ml=diluent,
        pump_rate_ml_per_h=rate,
        device_count=None,
        minutes_between_devices=None,
        session_number=dose_input.session_number,
        caps=protocol.caps,
        rounding=ROUNDING_RULE,
        computed_at=now,
    )


def _infusion_minutes(dose_input: DoseInput, protocol: ProtocolTemplate) -> int | None:
    infusion = protocol.infusion
    if infusion is None:
        if dose_input.infusion_minutes is not None:
            raise DoseRefused("infusion_minutes", f"{protocol.route.value} doses are not infused.")
        return None
    minutes = dose_input.infusion_minutes
    if minutes is None:
        minutes = infusion.default_minutes
    if not infusion.min_minutes <= minutes <= infusion.max_minutes:
        raise DoseRefused(
            "infusion_minutes",
            f"{minutes} min is outside this protocol's {infusion.min_minutes}-"
            f"{infusion.max_minutes} min infusion range.",
        )
    return minutes


def _volume_ml(dose_mg: Decimal, concentration: Decimal) -> Decimal:
    volume = _magnitude(
        UNITS.Quantity(dose_mg, "mg") / UNITS.Quantity(concentration, "mg/mL"), "mL"
    ).quantize(ML, rounding=ROUND_DOWN)
    if volume <= 0:
        raise DoseRefused(
            "concentration_mg_per_ml",
            f"{_n(dose_mg)} mg at {_n(concentration)} mg/mL is under 0.01 mL; use a weaker dilution.",
        )
    return volume


def _round_dose(raw_mg: Decimal, ceiling: Decimal | None) -> Decimal:
    dose = raw_mg.quantize(MG, rounding=ROUND_HALF_UP)
    if ceiling is not None and dose > ceiling:
        dose = raw_mg.quantize(MG, rounding=ROUND_DOWN)
    if dose <= 0:
        raise DoseRefused("prescribed_amount", f"{_n(raw_mg)} mg rounds to nothing.")
    return dose


def _per_kg_ceiling(max_mg_per_kg: Decimal | None, weight_kg: Decimal) -> Decimal | None:
    return None if max_mg_per_kg is None else max_mg_per_kg * weight_kg


def _lowest(values: list[Decimal | None]) -> Decimal | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _per_kg(dose_mg: Decimal, weight: SelectedWeight | None) -> Decimal | None:
    if weight is None:
        return None
    return (dose_mg / weight.weight_kg).quantize(_REPORTED_MG_PER_KG, rounding=ROUND_HALF_UP)


def _per_hour(amount: Any, minutes: int, unit: str) -> Decimal:
    """amount / minutes as a per-hour rate; multiplying before dividing keeps exact rates exact."""
    per_hour = (
        amount * UNITS.Quantity(Decimal(60), "min/h") / UNITS.Quantity(Decimal(minutes), "min")
    )
    return _magnitude(per_hour, unit)


def _magnitude(quantity: Any, unit: str) -> Decimal:
    return Decimal(quantity.to(unit).magnitude)


def _positive_decimal(value: Decimal, field: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise DoseRefused(field, f"{value!r} is not a positive decimal number.")
    return value


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation in stored JSON
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value
