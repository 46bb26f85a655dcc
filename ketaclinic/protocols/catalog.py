"""Standard protocol templates as versioned, immutable data. Pure: standard library only.

A template says how a course of ketamine or esketamine is given: the dose rule, its hard caps, how
the dose may be titrated, the phases of the course and how each session is monitored. A clinic
publishes its own copy under a new version when it changes a value; a stored treatment plan keeps
the template key (`iv-ketamine-induction@1`) it was built from.

Every number carries its source in a comment, `§` meaning a section of
the clinical reference as written up in docs/sources/dosing.md (sources: docs/sources/README.md).
Values the reference marks [U] (or does not give at all) are conservative defaults, and the name of
each such field is listed in the template's `clinic_settings` so the UI can show it as a setting
the clinic must own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Drug(StrEnum):
    RACEMIC_KETAMINE = "racemic-ketamine"
    ESKETAMINE = "esketamine"


class Route(StrEnum):
    INTRAVENOUS = "intravenous"
    INTRAMUSCULAR = "intramuscular"
    INTRANASAL = "intranasal"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"


class Setting(StrEnum):
    CLINIC = "clinic"
    HOME = "home"


class DoseKind(StrEnum):
    """How the prescribed amount is expressed."""

    PER_KG = "mg/kg"  # amount in mg/kg, multiplied by a current body weight
    FIXED = "mg"  # amount in mg, the same for every weight
    DEVICE = "device"  # amount in mg, delivered only in whole single-use devices


class PhaseKind(StrEnum):
    PREPARATION = "preparation"
    INDUCTION = "induction"
    MAINTENANCE = "maintenance"
    BOOSTER = "booster"
    INTEGRATION = "integration"


class VisitKind(StrEnum):
    DOSING = "dosing"
    PREPARATION = "preparation"  # psychotherapy visit, no drug
    INTEGRATION = "integration"  # psychotherapy visit, no drug


@dataclass(frozen=True, slots=True)
class DoseRule:
    kind: DoseKind
    starting_amount: Decimal  # mg/kg for PER_KG, mg otherwise
    minimum_amount: Decimal  # below this the dose is refused (catches slipped decimal points)
    allowed_amounts: tuple[Decimal, ...] = ()  # when set, the only amounts that may be given
    first_session_max_mg: Decimal | None = None
    device_mg: Decimal | None = None
    device_volume_ml: Decimal | None = None
    minutes_between_devices: int | None = None

    @property
    def unit(self) -> str:
        """The unit of every amount in this rule: mg/kg, or mg (devices are counted in mg)."""
        return "mg/kg" if self.kind is DoseKind.PER_KG else "mg"

    def __post_init__(self) -> None:
        if self.kind is DoseKind.DEVICE and (
            self.device_mg is None or self.device_volume_ml is None
        ):
            raise ValueError("a device dose rule needs device_mg and device_volume_ml")
        if self.minimum_amount <= 0 or self.starting_amount < self.minimum_amount:
            raise ValueError("the starting amount must be at least the positive minimum amount")


@dataclass(frozen=True, slots=True)
class DoseCaps:
    """Hard stops. A dose above any of them is refused, never trimmed silently."""

    max_mg_per_kg: Decimal | None = None
    max_mg: Decimal | None = None
    max_infusion_rate_mg_per_kg_per_h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class InfusionRule:
    default_minutes: int
    min_minutes: int
    max_minutes: int


@dataclass(frozen=True, slots=True)
class TitrationRule:
    step: Decimal  # in the dose rule's unit
    min_sessions_at_current_amount: int  # before an increase is considered
    max_adverse_event_grade_for_increase: int  # worst CTCAE grade at the current amount
    min_days_between_changes: int | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    kind: PhaseKind
    name: str
    visit: VisitKind
    planned_sessions: int | None  # None: open-ended or individualized
    sessions_per_week_min: Decimal | None
    sessions_per_week_max: Decimal | None
    start_week: int | None = None
    end_week: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class MonitoringSchedule:
    minimum_observation_minutes: int  # counted from the start of the dose
    vitals_minutes_after_dose: tuple[int, ...]  # in addition to the pre-dose vitals
    bp_recheck_minutes: int | None
    pulse_oximetry: bool
    requires_sitter: bool = False  # a trusted adult present for an at-home session
    therapist_present: bool = False


@dataclass(frozen=True, slots=True)
class ProtocolTemplate:
    protocol_id: str
    version: int
    title: str
    drug: Drug
    route: Route
    setting: Setting
    dose: DoseRule
    caps: DoseCaps
    monitoring: MonitoringSchedule
    phases: tuple[Phase, ...]
    titration: TitrationRule | None = None
    infusion: InfusionRule | None = None
    max_doses_dispensed_per_supply: int | None = None
    sources: tuple[str, ...] = ()
    clinic_settings: tuple[str, ...] = ()  # dotted field names holding [U] defaults

    def __post_init__(self) -> None:
        # A protocol whose own starting or minimum amount breaks its cap could never be dosed as
        # written; refusing it here covers every path that builds one (form, service, import).
        cap = self.caps.max_mg_per_kg if self.dose.kind is DoseKind.PER_KG else self.caps.max_mg
        if cap is not None and max(self.dose.starting_amount, self.dose.minimum_amount) > cap:
            raise ValueError(f"the starting and minimum amounts must not exceed the cap of {cap}")
        infusion = self.infusion
        if infusion is not None and not (
            0 < infusion.min_minutes <= infusion.default_minutes <= infusion.max_minutes
        ):
            raise ValueError("the default infusion time must lie between the shortest and longest")

    @property
    def key(self) -> str:
        return f"{self.protocol_id}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _to_plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtocolTemplate:
        template: ProtocolTemplate = _from_plain(cls, data)
        return template


# --- serialization: Decimals as strings, tuples as lists, so a template round-trips through JSON.

_NESTED: dict[str, type] = {
    "dose": DoseRule,
    "caps": DoseCaps,
    "monitoring": MonitoringSchedule,
    "titration": TitrationRule,
    "infusion": InfusionRule,
}
_ENUMS: dict[str, type[StrEnum]] = {
    "drug": Drug,
    "route": Route,
    "setting": Setting,
    "visit": VisitKind,
}
_DECIMAL_FIELDS = {
    "starting_amount",
    "minimum_amount",
    "first_session_max_mg",
    "device_mg",
    "device_volume_ml",
    "max_mg_per_kg",
    "max_mg",
    "max_infusion_rate_mg_per_kg_per_h",
    "step",
    "sessions_per_week_min",
    "sessions_per_week_max",
}


def _to_plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_to_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    return value


def _from_plain(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, raw in data.items():
        kwargs[name] = _field_from_plain(cls, name, raw)
    return cls(**kwargs)


def _field_from_plain(cls: type, name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _NESTED:
        return _from_plain(_NESTED[name], raw)
    if name == "phases":
        return tuple(_from_plain(Phase, item) for item in raw)
    if name == "kind":
        return DoseKind(raw) if cls is DoseRule else PhaseKind(raw)
    if name in _ENUMS:
        return _ENUMS[name](raw)
    if name == "allowed_amounts":
        return tuple(Decimal(item) for item in raw)
    if name in _DECIMAL_FIELDS:
        return Decimal(raw)
    if isinstance(raw, list):
        return tuple(raw)
    return raw


# --- shared pieces ---------------------------------------------------------------------------

# Vitals cadence for in-clinic racemic routes. The reference gives no schedule for psychiatric
# ketamine [U]; we take the 15-minute end of "ventilation/circulation every 5-15 min" from the ASA
# moderate-sedation guidance (§2.4 [S] #46), add 40 min where BP peaks (§2.2 [C] #41), and keep
# going to the end of the minimum observation. Clinic setting.
_RACEMIC_CLINIC_VITALS = (15, 30, 40, 60, 90, 120)

# Minimum observation for racemic ketamine in clinic: no source gives one [U]. We mirror the only
# regulatory figure in the reference, esketamine's 2 h (§2.1 [C] #1, #16). Clinic setting.
_RACEMIC_MIN_OBSERVATION_MINUTES = 120

_RACEMIC_CLINIC_MONITORING = MonitoringSchedule(
    minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,
    vitals_minutes_after_dose=_RACEMIC_CLINIC_VITALS,
    bp_recheck_minutes=40,  # BP peak at 30-40 min, §2.2 [C] #40, #41
    # Pulse oximetry is confirmed only for Spravato (§2.1 [C] #13, #16); for racemic ketamine it is
    # our conservative choice [U].
    pulse_oximetry=True,
)

_RACEMIC_MONITORING_SETTINGS = (
    "monitoring.minimum_observation_minutes",
    "monitoring.vitals_minutes_after_dose",
    "monitoring.pulse_oximetry",
)

# The reference cites no rule for raising a racemic dose [U]. Conservative defaults, clinic
# settings: raise only after two sessions at the current amount, with no adverse event above
# grade 1 at it.
_RACEMIC_MIN_SESSIONS_BEFORE_INCREASE = 2
_RACEMIC_MAX_AE_GRADE_FOR_INCREASE = 1

_TITRATION_SETTINGS = (
    "titration.step",
    "titration.min_sessions_at_current_amount",
    "titration.max_adverse_event_grade_for_increase",
)

_RACEMIC_MAINTENANCE = Phase(
    kind=PhaseKind.MAINTENANCE,
    name="maintenance",
    visit=VisitKind.DOSING,
    planned_sessions=None,  # no standard; individualize (§1.1 [C] #20)
    sessions_per_week_min=None,
    sessions_per_week_max=Decimal("1"),  # weekly for responders (§1.1 [S] #24)
    note="Individualized; dose shortly before the previous session's effect wears off.",
)
_RACEMIC_BOOSTER = Phase(
    kind=PhaseKind.BOOSTER,
    name="booster",
    visit=VisitKind.DOSING,
    planned_sessions=None,
    sessions_per_week_min=None,
    sessions_per_week_max=None,
    note="As needed on relapse; median time to relapse after induction was 18 days (§1.1 #23).",
)


# --- intravenous racemic ketamine (off-label) -------------------------------------------------

_IV_DOSE = DoseRule(
    kind=DoseKind.PER_KG,
    starting_amount=Decimal("0.5"),  # 0.5 mg/kg over 40 min, §1.1 [C] #20-#23
    minimum_amount=Decimal("0.1"),  # lowest responding dose reported, §1.1 [C] #20
)
_IV_CAPS = DoseCaps(
    max_mg_per_kg=Decimal("0.75"),  # highest dose some patients needed, §1.1 [C] #20
    # No absolute maximum exists (§1.1: numeric max [U]). Conservative default, clinic setting:
    # 70 mg, the IV dose ASKP equates with 1 mg/kg in a 70 kg adult (§1.2 [C] #25), the largest IV
    # milligram figure the reference quotes.
    max_mg=Decimal("70"),
    # Pennsylvania treats infusions above 1 mg/kg/h as sedation, not "low dose" (§1.1 [C] #49).
    # A clinic outside such rules may lift this; it is listed as a clinic setting.
    max_infusion_rate_mg_per_kg_per_h=Decimal("1"),
)
_IV_INFUSION = InfusionRule(
    default_minutes=40,  # §1.1 [C] #20
    min_minutes=2,  # sessions from 2 to 100 min reported safe, §1.1 [C] #20
    max_minutes=100,
)
_IV_INDUCTION = Phase(
    kind=PhaseKind.INDUCTION,
    name="induction",
    visit=VisitKind.DOSING,
    planned_sessions=6,  # §1.1 [C] #22, #23
    sessions_per_week_min=Decimal("2"),  # 2-3 times a week, §1.1 [C] #22
    sessions_per_week_max=Decimal("3"),
    start_week=1,
    end_week=3,  # six infusions over ~12 days (Murrough 2013), §1.1 [C] #23
)
_IV_SOURCES = ("§1.1 #20 #22 #23 #49", "§1.2 #25", "§2.2 #40 #41", "§2.4 #46")
_IV_SETTINGS = (
    "caps.max_mg",
    "caps.max_infusion_rate_mg_per_kg_per_h",
    *_RACEMIC_MONITORING_SETTINGS,
)

IV_KETAMINE_INDUCTION = ProtocolTemplate(
    protocol_id="iv-ketamine-induction",
    version=1,
    title="IV racemic ketamine, 0.5 mg/kg over 40 min, six-infusion induction",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.INTRAVENOUS,
    setting=Setting.CLINIC,
    dose=_IV_DOSE,
    caps=_IV_CAPS,
    infusion=_IV_INFUSION,
    monitoring=_RACEMIC_CLINIC_MONITORING,
    phases=(_IV_INDUCTION, _RACEMIC_MAINTENANCE, _RACEMIC_BOOSTER),
    sources=_IV_SOURCES,
    clinic_settings=_IV_SETTINGS,
)

IV_KETAMINE_TITRATION = ProtocolTemplate(
    protocol_id="iv-ketamine-titration",
    version=1,
    title="IV racemic ketamine, 0.5 mg/kg start, titrated within 0.1-0.75 mg/kg",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.INTRAVENOUS,
    setting=Setting.CLINIC,
    dose=_IV_DOSE,
    caps=_IV_CAPS,
    infusion=_IV_INFUSION,
    titration=TitrationRule(
        # No published step [U]. 0.1 mg/kg, the smallest IV dose the reference cites (§1.1 [C]
        # #20), so the range 0.5-0.75 is walked in small steps. Clinic setting.
        step=Decimal("0.1"),
        min_sessions_at_current_amount=_RACEMIC_MIN_SESSIONS_BEFORE_INCREASE,
        max_adverse_event_grade_for_increase=_RACEMIC_MAX_AE_GRADE_FOR_INCREASE,
    ),
    monitoring=_RACEMIC_CLINIC_MONITORING,
    phases=(_IV_INDUCTION, _RACEMIC_MAINTENANCE, _RACEMIC_BOOSTER),
    sources=_IV_SOURCES,
    clinic_settings=_IV_SETTINGS + _TITRATION_SETTINGS,
)


# --- intramuscular racemic ketamine (off-label) -----------------------------------------------

_IM_DOSE = DoseRule(
    kind=DoseKind.PER_KG,
    # 0.5 mg/kg: Pennsylvania's low-dose bolus ceiling (§1.1 [C] #49), and close to ASKP's IM
    # equivalent of the standard IV dose (38 mg IM ~ 0.5 mg/kg IV in 70 kg, §1.2 [C] #25).
    starting_amount=Decimal("0.5"),
    # No IM floor is cited; with ~93% IM bioavailability (§1.2 [C] #25) we reuse the IV floor.
    minimum_amount=Decimal("0.1"),
)
_IM_CAPS = DoseCaps(
    max_mg_per_kg=Decimal("0.75"),  # weight-stratified IM up to 0.75 mg/kg, §1.2 [C] #27
    # No absolute maximum is cited [U]. Conservative default, clinic setting: 75 mg, ASKP's IM
    # equivalent of 1 mg/kg IV in a 70 kg adult (§1.2 [C] #25), matching the IV cap above.
    max_mg=Decimal("75"),
)
_IM_MONITORING = MonitoringSchedule(
    minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,
    # IM onset and peak ~5 min (§1.2 [C] #25), so the first check comes early.
    vitals_minutes_after_dose=(5, *_RACEMIC_CLINIC_VITALS),
    bp_recheck_minutes=40,
    pulse_oximetry=True,
)

IM_KETAMINE = ProtocolTemplate(
    protocol_id="im-ketamine",
    version=1,
    title="IM racemic ketamine, weight-based bolus",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.INTRAMUSCULAR,
    setting=Setting.CLINIC,
    dose=_IM_DOSE,
    caps=_IM_CAPS,
    titration=TitrationRule(
        step=Decimal("0.1"),  # [U], as for IV; clinic setting
        min_sessions_at_current_amount=_RACEMIC_MIN_SESSIONS_BEFORE_INCREASE,
        max_adverse_event_grade_for_increase=_RACEMIC_MAX_AE_GRADE_FOR_INCREASE,
    ),
    monitoring=_IM_MONITORING,
    phases=(
        Phase(
            kind=PhaseKind.INDUCTION,
            name="induction",
            visit=VisitKind.DOSING,
            # No IM series is cited [U]; we mirror the IV induction (§1.1 [C] #22, #23).
            planned_sessions=6,
            sessions_per_week_min=Decimal("2"),
            sessions_per_week_max=Decimal("3"),
            start_week=1,
            end_week=3,
        ),
        _RACEMIC_MAINTENANCE,
        _RACEMIC_BOOSTER,
    ),
    sources=("§1.1 #20 #49", "§1.2 #25 #27", "§2.2 #41"),
    clinic_settings=(
        "caps.max_mg",
        "phases",
        *_RACEMIC_MONITORING_SETTINGS,
        *_TITRATION_SETTINGS,
    ),
)


# --- intranasal esketamine (SPRAVATO), per the FDA label --------------------------------------

_ESKETAMINE_DEVICE_MG = Decimal("28")  # one device = 28 mg, §1.3 [C] #1, #3
_ESKETAMINE_DEVICE_ML = Decimal("0.2")  # 28 mg/0.2 mL, §1.3 [C] #3
_ESKETAMINE_DOSES = (Decimal("56"), Decimal("84"))  # §1.3 [C] #1, #2
_ESKETAMINE_CAPS = DoseCaps(max_mg=Decimal("84"))  # highest labelled dose, §1.3 [C] #1
_ESKETAMINE_MONITORING = MonitoringSchedule(
    minimum_observation_minutes=120,  # at least 2 h after each dose, §2.1 [C] #1, #16
    # BP ~40 min after dosing (§2.1 [C] #13) and before the patient leaves at 2 h.
    vitals_minutes_after_dose=(40, 120),
    bp_recheck_minutes=40,
    pulse_oximetry=True,  # respiratory status incl. pulse oximetry each session, §2.1 [C] #13
)
_ESKETAMINE_TITRATION = TitrationRule(
    step=Decimal("28"),  # 28-mg increments, §1.3 [C] #1
    min_sessions_at_current_amount=1,  # day 1 is 56 mg, later doses 56 or 84, §1.3 [C] #1
    # Not in the label [U]: raise only when the current dose was tolerated (grade <= 1).
    max_adverse_event_grade_for_increase=1,
)


def _esketamine_dose(first_session_max_mg: Decimal, starting_mg: Decimal) -> DoseRule:
    return DoseRule(
        kind=DoseKind.DEVICE,
        starting_amount=starting_mg,
        minimum_amount=_ESKETAMINE_DOSES[0],
        allowed_amounts=_ESKETAMINE_DOSES,
        first_session_max_mg=first_session_max_mg,
        device_mg=_ESKETAMINE_DEVICE_MG,
        device_volume_ml=_ESKETAMINE_DEVICE_ML,
        minutes_between_devices=5,  # 5-minute rest between devices, §1.3 [C] #1
    )


ESKETAMINE_TRD = ProtocolTemplate(
    protocol_id="esketamine-trd",
    version=1,
    title="Esketamine nasal spray, treatment-resistant depression (label schedule)",
    drug=Drug.ESKETAMINE,
    route=Route.INTRANASAL,
    setting=Setting.CLINIC,
    dose=_esketamine_dose(first_session_max_mg=Decimal("56"), starting_mg=Decimal("56")),
    caps=_ESKETAMINE_CAPS,
    titration=_ESKETAMINE_TITRATION,
    monitoring=_ESKETAMINE_MONITORING,
    phases=(
        Phase(
            kind=PhaseKind.INDUCTION,
            name="induction",
            visit=VisitKind.DOSING,
            planned_sessions=8,
            sessions_per_week_min=Decimal("2"),  # twice weekly, weeks 1-4, §1.3 [C] #1, #2
            sessions_per_week_max=Decimal("2"),
            start_week=1,
            end_week=4,
            note="Day 1: 56 mg; later 56 or 84 mg. Evaluate benefit at the end of induction.",
        ),
        Phase(
            kind=PhaseKind.MAINTENANCE,
            name="maintenance weeks 5-8",
            visit=VisitKind.DOSING,
            planned_sessions=4,
            sessions_per_week_min=Decimal("1"),  # once weekly, weeks 5-8, §1.3 [C] #1, #2
            sessions_per_week_max=Decimal("1"),
            start_week=5,
            end_week=8,
        ),
        Phase(
            kind=PhaseKind.MAINTENANCE,
            name="maintenance week 9 onward",
            visit=VisitKind.DOSING,
            planned_sessions=None,
            # every 2 weeks or weekly, the least frequent that keeps response, §1.3 [C] #1, #2
            sessions_per_week_min=Decimal("0.5"),
            sessions_per_week_max=Decimal("1"),
            start_week=9,
        ),
    ),
    sources=("§1.3 #1 #2 #3", "§2.1 #1 #13 #16"),
    clinic_settings=("titration.max_adverse_event_grade_for_increase",),
)

ESKETAMINE_SUICIDAL_IDEATION = ProtocolTemplate(
    protocol_id="esketamine-suicidal-ideation",
    version=1,
    title="Esketamine nasal spray, MDD with acute suicidal ideation or behavior (label)",
    drug=Drug.ESKETAMINE,
    route=Route.INTRANASAL,
    setting=Setting.CLINIC,
    # 84 mg twice weekly for 4 weeks, may be reduced to 56 mg for tolerability, §1.3 [C] #1, #2
    dose=_esketamine_dose(first_session_max_mg=Decimal("84"), starting_mg=Decimal("84")),
    caps=_ESKETAMINE_CAPS,
    titration=_ESKETAMINE_TITRATION,
    monitoring=_ESKETAMINE_MONITORING,
    phases=(
        Phase(
            kind=PhaseKind.INDUCTION,
            name="treatment",
            visit=VisitKind.DOSING,
            planned_sessions=8,
            sessions_per_week_min=Decimal("2"),
            sessions_per_week_max=Decimal("2"),
            start_week=1,
            end_week=4,
            note="Given with an oral antidepressant.",
        ),
    ),
    sources=("§1.3 #1 #2 #3", "§2.1 #1 #13 #16"),
    clinic_settings=("titration.max_adverse_event_grade_for_increase",),
)


# --- sublingual and oral racemic ketamine (off-label, compounded) -----------------------------

_ORAL_TITRATION = TitrationRule(
    step=Decimal("25"),  # +25 mg every 3 days (Al Shirawi 2017), §1.4 [C] #31
    min_sessions_at_current_amount=1,
    max_adverse_event_grade_for_increase=_RACEMIC_MAX_AE_GRADE_FOR_INCREASE,
    min_days_between_changes=3,  # §1.4 [C] #31
)
_SL_CLINIC_MONITORING = MonitoringSchedule(
    minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,
    vitals_minutes_after_dose=_RACEMIC_CLINIC_VITALS,  # SL peaks ~40 min, §1.4 [S] #28
    bp_recheck_minutes=40,
    pulse_oximetry=True,
)
_CLINIC_SERIES = Phase(
    kind=PhaseKind.INDUCTION,
    name="induction",
    visit=VisitKind.DOSING,
    # No non-KAP sublingual series is cited [U]; six sessions over ~3 weeks as in KAP (§7 [S] #144).
    planned_sessions=6,
    sessions_per_week_min=Decimal("2"),
    sessions_per_week_max=Decimal("2"),
    start_week=1,
    end_week=3,
)

SUBLINGUAL_CLINIC = ProtocolTemplate(
    protocol_id="sublingual-clinic",
    version=1,
    title="Sublingual racemic ketamine (troche/lozenge) in clinic",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.SUBLINGUAL,
    setting=Setting.CLINIC,
    dose=DoseRule(
        kind=DoseKind.FIXED,
        starting_amount=Decimal("100"),  # ~100 mg SL ~ 0.5 mg/kg IV in 70 kg, §1.4 [C] #25
        minimum_amount=Decimal("10"),  # very-low-dose SL 10 mg (Lara 2013), §1.4 [C] #32
    ),
    # ~200 mg SL ~ 1 mg/kg IV in 70 kg (§1.4 [C] #25), the top of the psycholytic range (§1.4 [S]
    # #33). Deeper KAP doses exist in practice; a clinic raising this cap owns that choice.
    caps=DoseCaps(max_mg=Decimal("200")),
    titration=_ORAL_TITRATION,
    monitoring=_SL_CLINIC_MONITORING,
    phases=(_CLINIC_SERIES, _RACEMIC_MAINTENANCE, _RACEMIC_BOOSTER),
    sources=("§1.4 #25 #31 #32 #33", "§7 #144"),
    clinic_settings=("caps.max_mg", "phases", *_RACEMIC_MONITORING_SETTINGS),
)

ORAL_CLINIC = ProtocolTemplate(
    protocol_id="oral-clinic",
    version=1,
    title="Oral racemic ketamine in clinic, titrated",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.ORAL,
    setting=Setting.CLINIC,
    dose=DoseRule(
        kind=DoseKind.FIXED,
        starting_amount=Decimal("50"),  # start 50 mg (Al Shirawi 2017), §1.4 [C] #31
        minimum_amount=Decimal("25"),  # fixed doses 25-300 mg per session, §1.4 [C] #30
    ),
    caps=DoseCaps(max_mg=Decimal("300")),  # top of the reported fixed range, §1.4 [C] #30
    titration=_ORAL_TITRATION,
    # Oral absorption is slower, peak ~1 h (§1.5 [C] #26, #30); the same cadence covers it.
    monitoring=_SL_CLINIC_MONITORING,
    phases=(_CLINIC_SERIES, _RACEMIC_MAINTENANCE, _RACEMIC_BOOSTER),
    sources=("§1.4 #30 #31", "§1.5 #26"),
    clinic_settings=("phases", *_RACEMIC_MONITORING_SETTINGS),
)

SUBLINGUAL_HOME = ProtocolTemplate(
    protocol_id="sublingual-home",
    version=1,
    title="Sublingual racemic ketamine at home, with a sitter",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.SUBLINGUAL,
    setting=Setting.HOME,
    dose=DoseRule(
        kind=DoseKind.FIXED,
        # No at-home starting dose is cited [U]. Conservative default: 50 mg, the oral starting
        # dose of §1.4 [C] #31 (sublingual bioavailability is similar, §1.5). Clinic setting.
        starting_amount=Decimal("50"),
        minimum_amount=Decimal("10"),  # §1.4 [C] #32
    ),
    # Home settings lack monitoring and rescue (§8 [C] #17) and no numeric limit is cited [U].
    # Conservative cap: 100 mg, ASKP's SL equivalent of the standard 0.5 mg/kg IV dose (§1.4 [C]
    # #25). Clinic setting.
    caps=DoseCaps(max_mg=Decimal("100")),
    titration=_ORAL_TITRATION,
    monitoring=MonitoringSchedule(
        minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,  # sitter stays [U]
        vitals_minutes_after_dose=(),  # pre-session vitals with a home BP cuff, §8 [S] #152, #153
        bp_recheck_minutes=None,
        pulse_oximetry=False,
        requires_sitter=True,  # §8 [S] #151, #152
    ),
    phases=(
        Phase(
            kind=PhaseKind.INDUCTION,
            name="induction",
            visit=VisitKind.DOSING,
            planned_sessions=4,  # four sessions over four weeks (Hull 2022), §8 [C] #148
            sessions_per_week_min=Decimal("1"),
            sessions_per_week_max=Decimal("1"),
            start_week=1,
            end_week=4,
        ),
    ),
    max_doses_dispensed_per_supply=6,  # e.g. six lozenges per course, §8 [S] #154; [U] limit
    sources=("§1.4 #25 #31 #32", "§8 #17 #148 #151 #152 #153 #154"),
    clinic_settings=(
        "dose.starting_amount",
        "caps.max_mg",
        "monitoring.minimum_observation_minutes",
        "max_doses_dispensed_per_supply",
    ),
)


# --- ketamine-assisted psychotherapy ----------------------------------------------------------

_KAP_MONITORING = MonitoringSchedule(
    # The dosing visit lasts 2.5-3 h with a therapist throughout (§7 [S] #35, #28); 2 h is the
    # minimum before discharge may be considered [U].
    minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,
    vitals_minutes_after_dose=_RACEMIC_CLINIC_VITALS,
    bp_recheck_minutes=40,
    pulse_oximetry=True,
    therapist_present=True,
)

KAP_SUBLINGUAL = ProtocolTemplate(
    protocol_id="kap-sublingual",
    version=1,
    title="Ketamine-assisted psychotherapy, sublingual, 6 dosing sessions",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.SUBLINGUAL,
    setting=Setting.CLINIC,
    dose=DoseRule(
        kind=DoseKind.FIXED,
        starting_amount=Decimal("100"),  # psycholytic range 100-200 mg, §1.4 [S] #33, #34
        minimum_amount=Decimal("10"),  # §1.4 [C] #32
    ),
    caps=DoseCaps(max_mg=Decimal("200")),  # §1.4 [S] #33; [C] #25 equivalence; clinic setting
    titration=_ORAL_TITRATION,
    monitoring=_KAP_MONITORING,
    phases=(
        Phase(
            kind=PhaseKind.PREPARATION,
            name="preparation",
            visit=VisitKind.PREPARATION,
            planned_sessions=2,  # 1-3 preparation visits; programs often 2, §7 [S] #35, #144
            sessions_per_week_min=None,
            sessions_per_week_max=None,
        ),
        Phase(
            kind=PhaseKind.INDUCTION,
            name="dosing",
            visit=VisitKind.DOSING,
            planned_sessions=6,  # six dosing sessions over ~3 weeks, §7 [S] #144
            sessions_per_week_min=Decimal("2"),
            sessions_per_week_max=Decimal("2"),
            start_week=1,
            end_week=3,
        ),
        Phase(
            kind=PhaseKind.INTEGRATION,
            name="integration",
            visit=VisitKind.INTEGRATION,
            planned_sessions=1,  # at least 1-2 after the series, §7 [S] #143, #144
            sessions_per_week_min=None,
            sessions_per_week_max=None,
        ),
    ),
    sources=("§1.4 #25 #31 #32 #33", "§7 #28 #35 #143 #144"),
    clinic_settings=("caps.max_mg", "phases", *_RACEMIC_MONITORING_SETTINGS),
)

KAP_INTRAMUSCULAR = ProtocolTemplate(
    protocol_id="kap-intramuscular",
    version=1,
    title="Ketamine-assisted psychotherapy, IM, 3 weekly dosing sessions (feasibility trial)",
    drug=Drug.RACEMIC_KETAMINE,
    route=Route.INTRAMUSCULAR,
    setting=Setting.CLINIC,
    dose=_IM_DOSE,
    # Up to 0.75 mg/kg (§1.2 [C] #27). The trial's optional 20-40 mg supplement is not modelled:
    # a supplement is a second administration and must fit under the same caps.
    caps=_IM_CAPS,
    titration=IM_KETAMINE.titration,
    monitoring=MonitoringSchedule(
        minimum_observation_minutes=_RACEMIC_MIN_OBSERVATION_MINUTES,
        vitals_minutes_after_dose=_IM_MONITORING.vitals_minutes_after_dose,
        bp_recheck_minutes=40,
        pulse_oximetry=True,
        therapist_present=True,
    ),
    phases=(
        Phase(
            kind=PhaseKind.PREPARATION,
            name="preparation",
            visit=VisitKind.PREPARATION,
            planned_sessions=1,  # a 2-h preparation visit, §7 [C] #27
            sessions_per_week_min=None,
            sessions_per_week_max=None,
        ),
        Phase(
            kind=PhaseKind.INDUCTION,
            name="dosing",
            visit=VisitKind.DOSING,
            planned_sessions=3,  # three weekly IM sessions, §7 [C] #27
            sessions_per_week_min=Decimal("1"),
            sessions_per_week_max=Decimal("1"),
            start_week=1,
            end_week=3,
        ),
        Phase(
            kind=PhaseKind.INTEGRATION,
            name="integration",
            visit=VisitKind.INTEGRATION,
            planned_sessions=3,  # a 2-h integration visit after each dose, §7 [C] #27
            sessions_per_week_min=Decimal("1"),
            sessions_per_week_max=Decimal("1"),
            start_week=1,
            end_week=3,
        ),
    ),
    sources=("§1.2 #25 #27", "§7 #27"),
    clinic_settings=("caps.max_mg", *_RACEMIC_MONITORING_SETTINGS, *_TITRATION_SETTINGS),
)


STANDARD_TEMPLATES: tuple[ProtocolTemplate, ...] = (
    IV_KETAMINE_INDUCTION,
    IV_KETAMINE_TITRATION,
    IM_KETAMINE,
    ESKETAMINE_TRD,
    ESKETAMINE_SUICIDAL_IDEATION,
    SUBLINGUAL_CLINIC,
    ORAL_CLINIC,
    SUBLINGUAL_HOME,
    KAP_SUBLINGUAL,
    KAP_INTRAMUSCULAR,
)

_BY_KEY = {template.key: template for template in STANDARD_TEMPLATES}


def get_template(key: str) -> ProtocolTemplate:
    """Look a standard template up by `protocol_id@version`; KeyError names the known keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown protocol template {key!r}; known: {sorted(_BY_KEY)}") from None
