"""Where each protocol and safety-policy number comes from, for the screens that show them.

Pure: standard library and the pure catalog only. The catalog and the policy keep their sources as
comments next to each constant; this module carries the same text as data, so a screen can print
every number next to its citation. `§` means a section of the clinical
reference as written up in docs/sources/ (dosing.md; see docs/sources/README.md); a source that
starts with "[U]" is not confirmed there: a conservative default the clinic owns.

A clinic version is compared with the standard template it descends from (same protocol id,
version 1): a value the clinic changed no longer carries the standard's citation, it says
"clinic value" and shows the standard value and where that came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ketaclinic.protocols.catalog import (
    STANDARD_TEMPLATES,
    DoseKind,
    Phase,
    ProtocolTemplate,
)

UNCONFIRMED = "[U]"

# --- protocol templates ----------------------------------------------------------------------

_RACEMIC_MONITORING = {
    "monitoring.minimum_observation_minutes": (
        "[U] no source for racemic ketamine; mirrors esketamine's 2 h, §2.1 [C] #1, #16"
    ),
    "monitoring.vitals_minutes_after_dose": (
        "[U] every 15 min from ASA sedation guidance §2.4 [S] #46, plus 40 min (BP peak, "
        "§2.2 [C] #41)"
    ),
    "monitoring.bp_recheck_minutes": "BP peak at 30-40 min, §2.2 [C] #40, #41",
    "monitoring.pulse_oximetry": (
        "[U] for racemic ketamine; confirmed for Spravato only, §2.1 [C] #13, #16"
    ),
}
_RACEMIC_PHASES = {
    "phases.maintenance": "No standard; individualize, §1.1 [C] #20; weekly, §1.1 [S] #24",
    "phases.booster": "On relapse; median time to relapse 18 days, §1.1 [C] #23",
}
_IV = {
    "dose.starting_amount": "0.5 mg/kg over 40 min, §1.1 [C] #20-#23",
    "dose.minimum_amount": "Lowest responding dose, §1.1 [C] #20",
    "caps.max_mg_per_kg": "Highest dose some patients needed, §1.1 [C] #20",
    "caps.max_mg": ("[U] no numeric maximum (§1.1); 70 mg = 1 mg/kg IV in 70 kg, §1.2 [C] #25"),
    "caps.max_infusion_rate_mg_per_kg_per_h": "Pennsylvania low-dose ceiling, §1.1 [C] #49",
    "infusion.default_minutes": "40 min is conventional, §1.1 [C] #20",
    "infusion.min_minutes": "Sessions of 2-100 min reported safe, §1.1 [C] #20",
    "infusion.max_minutes": "Sessions of 2-100 min reported safe, §1.1 [C] #20",
    "phases.induction": "6 infusions, 2-3 a week, §1.1 [C] #22, #23",
    **_RACEMIC_PHASES,
    **_RACEMIC_MONITORING,
}
_RACEMIC_TITRATION = {
    "titration.step": "[U] no published step; 0.1 mg/kg, the smallest cited IV dose, §1.1 [C] #20",
    "titration.min_sessions_at_current_amount": "[U] conservative default",
    "titration.max_adverse_event_grade_for_increase": "[U] conservative default",
}
_IM = {
    "dose.starting_amount": (
        "Pennsylvania bolus ceiling, §1.1 [C] #49; ~IM equivalent of 0.5 mg/kg IV, §1.2 [C] #25"
    ),
    "dose.minimum_amount": ("IV floor, §1.1 [C] #20; IM bioavailability ~93%, §1.2 [C] #25"),
    "caps.max_mg_per_kg": "Weight-stratified IM up to 0.75 mg/kg, §1.2 [C] #27",
    "caps.max_mg": "[U] no cited maximum; 75 mg IM = 1 mg/kg IV in 70 kg, §1.2 [C] #25",
    **_RACEMIC_MONITORING,
    "monitoring.vitals_minutes_after_dose": (
        "IM peak ~5 min, §1.2 [C] #25; then the IV cadence [U], §2.4 [S] #46, §2.2 [C] #41"
    ),
    **_RACEMIC_TITRATION,
    "titration.step": "[U] as for IV, §1.1 [C] #20",
}
_ESKETAMINE = {
    "dose.minimum_amount": "56 or 84 mg, §1.3 [C] #1, #2",
    "dose.allowed_amounts": "56 or 84 mg, §1.3 [C] #1, #2",
    "dose.device_mg": "1 device = 28 mg, §1.3 [C] #1, #3",
    "dose.device_volume_ml": "28 mg/0.2 mL, §1.3 [C] #3",
    "dose.minutes_between_devices": "5-minute rest between devices, §1.3 [C] #1",
    "caps.max_mg": "Highest labelled dose, §1.3 [C] #1",
    "monitoring.minimum_observation_minutes": "At least 2 h after each dose, §2.1 [C] #1, #16",
    "monitoring.vitals_minutes_after_dose": "BP ~40 min after dosing, §2.1 [C] #13; and at 2 h",
    "monitoring.bp_recheck_minutes": "BP re-check ~40 min after dosing, §2.1 [C] #13",
    "monitoring.pulse_oximetry": "Pulse oximetry each session, §2.1 [C] #13",
    "titration.step": "28-mg increments, §1.3 [C] #1",
    "titration.min_sessions_at_current_amount": "Day 1 56 mg, later 56 or 84 mg, §1.3 [C] #1",
    "titration.max_adverse_event_grade_for_increase": "[U] not in the label",
}
_ORAL_TITRATION = {
    "titration.step": "+25 mg every 3 days (Al Shirawi 2017), §1.4 [C] #31",
    "titration.min_sessions_at_current_amount": "One dose per step, §1.4 [C] #31",
    "titration.max_adverse_event_grade_for_increase": "[U] conservative default",
    "titration.min_days_between_changes": "Every 3 days, §1.4 [C] #31",
}
_SL_MONITORING = {
    **_RACEMIC_MONITORING,
    "monitoring.vitals_minutes_after_dose": ("[U] the IV cadence; SL peaks ~40 min, §1.4 [S] #28"),
}
_KAP_MONITORING = {
    **_RACEMIC_MONITORING,
    "monitoring.minimum_observation_minutes": (
        "[U] minimum before discharge; the dosing visit lasts 2.5-3 h, §7 [S] #35, #28"
    ),
    "monitoring.therapist_present": "Therapist throughout the dosing visit, §7 [S] #35",
}

PROTOCOL_SOURCES: dict[str, dict[str, str]] = {
    "iv-ketamine-induction": _IV,
    "iv-ketamine-titration": {**_IV, **_RACEMIC_TITRATION},
    "im-ketamine": {
        **_IM,
        "phases.induction": "[U] no IM series cited; mirrors IV induction, §1.1 [C] #22, #23",
        **_RACEMIC_PHASES,
    },
    "esketamine-trd": {
        **_ESKETAMINE,
        "dose.starting_amount": "Day 1 = 56 mg, §1.3 [C] #1, #2",
        "dose.first_session_max_mg": "Day 1 = 56 mg, §1.3 [C] #1",
        "phases.induction": "Twice weekly, weeks 1-4, §1.3 [C] #1, #2",
        "phases.maintenance weeks 5-8": "Once weekly, weeks 5-8, §1.3 [C] #1, #2",
        "phases.maintenance week 9 onward": "Every 2 weeks or weekly, §1.3 [C] #1, #2",
    },
    "esketamine-suicidal-ideation": {
        **_ESKETAMINE,
        "dose.starting_amount": "84 mg twice weekly for 4 weeks, §1.3 [C] #1, #2",
        "dose.first_session_max_mg": "84 mg from the first session, §1.3 [C] #1, #2",
        "phases.treatment": "84 mg twice weekly for 4 weeks, §1.3 [C] #1, #2",
    },
    "sublingual-clinic": {
        "dose.starting_amount": "~100 mg SL = 0.5 mg/kg IV in 70 kg, §1.4 [C] #25",
        "dose.minimum_amount": "Very-low-dose SL 10 mg (Lara 2013), §1.4 [C] #32",
        "caps.max_mg": (
            "~200 mg SL = 1 mg/kg IV in 70 kg, §1.4 [C] #25; top of the psycholytic range, "
            "§1.4 [S] #33"
        ),
        **_ORAL_TITRATION,
        **_SL_MONITORING,
        "phases.induction": "[U] no non-KAP series cited; six sessions as in KAP, §7 [S] #144",
        **_RACEMIC_PHASES,
    },
    "oral-clinic": {
        "dose.starting_amount": "Start 50 mg (Al Shirawi 2017), §1.4 [C] #31",
        "dose.minimum_amount": "Fixed doses 25-300 mg per session, §1.4 [C] #30",
        "caps.max_mg": "Top of the reported fixed range, §1.4 [C] #30",
        **_ORAL_TITRATION,
        **_RACEMIC_MONITORING,
        "monitoring.vitals_minutes_after_dose": (
            "[U] the IV cadence; oral peak ~1 h, §1.5 [C] #26, #30"
        ),
        "phases.induction": "[U] no non-KAP series cited; six sessions as in KAP, §7 [S] #144",
        **_RACEMIC_PHASES,
    },
    "sublingual-home": {
        "dose.starting_amount": "[U] no at-home start cited; the oral start, §1.4 [C] #31",
        "dose.minimum_amount": "Very-low-dose SL 10 mg (Lara 2013), §1.4 [C] #32",
        "caps.max_mg": (
            "[U] home lacks monitoring and rescue, §8 [C] #17; 100 mg SL = 0.5 mg/kg IV, "
            "§1.4 [C] #25"
        ),
        **_ORAL_TITRATION,
        "monitoring.minimum_observation_minutes": "[U] the sitter stays 2 h",
        "monitoring.vitals_minutes_after_dose": (
            "Pre-session vitals with a home BP cuff, §8 [S] #152, #153"
        ),
        "monitoring.requires_sitter": "A trusted adult present, §8 [S] #151, #152",
        "phases.induction": "Four sessions over four weeks (Hull 2022), §8 [C] #148",
        "max_doses_dispensed_per_supply": "[U] limit; e.g. six lozenges per course, §8 [S] #154",
    },
    "kap-sublingual": {
        "dose.starting_amount": "Psycholytic range 100-200 mg, §1.4 [S] #33, #34",
        "dose.minimum_amount": "Very-low-dose SL 10 mg (Lara 2013), §1.4 [C] #32",
        "caps.max_mg": "Psycholytic range, §1.4 [S] #33; 200 mg = 1 mg/kg IV, §1.4 [C] #25",
        **_ORAL_TITRATION,
        **_KAP_MONITORING,
        "phases.preparation": "1-3 preparation visits, programs often 2, §7 [S] #35, #144",
        "phases.dosing": "Six dosing sessions over ~3 weeks, §7 [S] #144",
        "phases.integration": "At least 1-2 after the series, §7 [S] #143, #144",
    },
    "kap-intramuscular": {
        **_IM,
        "monitoring.therapist_present": "Therapist at each dosing visit, §7 [C] #27",
        "monitoring.minimum_observation_minutes": (
            "[U] no source for racemic ketamine; mirrors esketamine's 2 h, §2.1 [C] #1, #16"
        ),
        "phases.preparation": "A 2-h preparation visit, §7 [C] #27",
        "phases.dosing": "Three weekly IM sessions, §7 [C] #27",
        "phases.integration": "A 2-h integration visit after each dose, §7 [C] #27",
    },
}

# Which part of the reference describes each standard protocol's route and setting.
_ROUTE_SECTIONS = {
    "iv-ketamine-induction": "Off-label IV racemic ketamine, §1.1",
    "iv-ketamine-titration": "Off-label IV racemic ketamine, §1.1",
    "im-ketamine": "Off-label IM racemic ketamine, §1.2",
    "esketamine-trd": "Spravato label, in a certified setting, §1.3 [C] #1, #6",
    "esketamine-suicidal-ideation": "Spravato label, in a certified setting, §1.3 [C] #1, #6",
    "sublingual-clinic": "Off-label, compounded, §1.4",
    "oral-clinic": "Off-label, compounded, §1.4",
    "sublingual-home": "At-home ketamine, §8",
    "kap-sublingual": "Ketamine-assisted psychotherapy, §7",
    "kap-intramuscular": "Ketamine-assisted psychotherapy, §7",
}
for _protocol_id, _section in _ROUTE_SECTIONS.items():
    PROTOCOL_SOURCES[_protocol_id]["route"] = _section

_STANDARD = {template.protocol_id: template for template in STANDARD_TEMPLATES}


@dataclass(frozen=True, slots=True)
class Fact:
    """One number (or setting) of a protocol as a screen shows it."""

    section: str
    path: str
    label: str
    value: str
    source: str  # the citation; "" when the reference has none to give
    clinic_setting: bool  # a [U] default or a value the clinic set: the clinic owns it
    standard_value: str | None = None  # set when the clinic changed the standard's value
    standard_source: str = ""

    @property
    def unconfirmed(self) -> bool:
        return self.source.startswith(UNCONFIRMED)


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        value = value.normalize()
        value = format(value, "f")
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) + (f" {unit}" if value and unit else "")
    return f"{value} {unit}".strip()


def _phase_text(phase: Phase) -> str:
    parts = [f"{phase.kind.value}, {phase.visit.value} visits"]
    if phase.planned_sessions is not None:
        parts.append(f"{phase.planned_sessions} sessions")
    low, high = phase.sessions_per_week_min, phase.sessions_per_week_max
    if low is not None and high is not None:
        span = _number(low) if low == high else f"{_number(low)}-{_number(high)}"
        parts.append(f"{span} a week")
    elif high is not None:
        parts.append(f"up to {_number(high)} a week")
    elif low is not None:
        parts.append(f"at least {_number(low)} a week")
    if phase.start_week is not None:
        end = f"-{phase.end_week}" if phase.end_week is not None else " onward"
        parts.append(f"weeks {phase.start_week}{end}")
    text = "; ".join(parts)
    return f"{text}. {phase.note}" if phase.note else text


def _rows(template: ProtocolTemplate) -> list[tuple[str, str, str, str]]:
    """(section, path, label, value) for every number a clinician should see."""
    dose, caps, mon = template.dose, template.caps, template.monitoring
    unit = dose.unit
    rows = [
        ("Route", "drug", "Drug", template.drug.value),
        ("Route", "route", "Route", template.route.value),
        ("Route", "setting", "Setting", template.setting.value),
        ("Dose rule", "dose.kind", "Dose expressed as", dose.kind.value),
        (
            "Dose rule",
            "dose.starting_amount",
            "Starting amount",
            _number(dose.starting_amount, unit),
        ),
        ("Dose rule", "dose.minimum_amount", "Minimum amount", _number(dose.minimum_amount, unit)),
    ]
    if dose.allowed_amounts:
        rows.append(
            (
                "Dose rule",
                "dose.allowed_amounts",
                "Allowed amounts",
                _number(dose.allowed_amounts, "mg"),
            )
        )
    if dose.first_session_max_mg is not None:
        rows.append(
            (
                "Dose rule",
                "dose.first_session_max_mg",
                "First session at most",
                _number(dose.first_session_max_mg, "mg"),
            )
        )
    if dose.kind is DoseKind.DEVICE:
        rows += [
            ("Dose rule", "dose.device_mg", "One device", _number(dose.device_mg, "mg")),
            (
                "Dose rule",
                "dose.device_volume_ml",
                "Device volume",
                _number(dose.device_volume_ml, "mL"),
            ),
            (
                "Dose rule",
                "dose.minutes_between_devices",
                "Rest between devices",
                _number(dose.minutes_between_devices, "min"),
            ),
        ]
    rows += [
        ("Caps (hard stops)", "caps.max_mg_per_kg", "Per kg", _number(caps.max_mg_per_kg, "mg/kg")),
        ("Caps (hard stops)", "caps.max_mg", "Absolute", _number(caps.max_mg, "mg")),
    ]
    if caps.max_infusion_rate_mg_per_kg_per_h is not None or template.infusion is not None:
        rows.append(
            (
                "Caps (hard stops)",
                "caps.max_infusion_rate_mg_per_kg_per_h",
                "Infusion rate",
                _number(caps.max_infusion_rate_mg_per_kg_per_h, "mg/kg/h"),
            )
        )
    if template.infusion is not None:
        inf = template.infusion
        rows += [
            (
                "Infusion",
                "infusion.default_minutes",
                "Default duration",
                _number(inf.default_minutes, "min"),
            ),
            ("Infusion", "infusion.min_minutes", "Shortest", _number(inf.min_minutes, "min")),
            ("Infusion", "infusion.max_minutes", "Longest", _number(inf.max_minutes, "min")),
        ]
    if template.titration is not None:
        tit = template.titration
        rows += [
            ("Titration", "titration.step", "Step", _number(tit.step, unit)),
            (
                "Titration",
                "titration.min_sessions_at_current_amount",
                "Sessions at a dose before raising",
                _number(tit.min_sessions_at_current_amount),
            ),
            (
                "Titration",
                "titration.max_adverse_event_grade_for_increase",
                "Raise only if worst adverse event grade is at most",
                _number(tit.max_adverse_event_grade_for_increase),
            ),
        ]
        if tit.min_days_between_changes is not None:
            rows.append(
                (
                    "Titration",
                    "titration.min_days_between_changes",
                    "Days between changes",
                    _number(tit.min_days_between_changes, "days"),
                )
            )
    rows += [
        (
            "Monitoring",
            "monitoring.minimum_observation_minutes",
            "Minimum observation",
            _number(mon.minimum_observation_minutes, "min"),
        ),
        (
            "Monitoring",
            "monitoring.vitals_minutes_after_dose",
            "Vitals after the dose at",
            _number(mon.vitals_minutes_after_dose, "min")
            if mon.vitals_minutes_after_dose
            else "pre-dose only",
        ),
        (
            "Monitoring",
            "monitoring.bp_recheck_minutes",
            "Blood pressure re-check",
            _number(mon.bp_recheck_minutes, "min"),
        ),
        ("Monitoring", "monitoring.pulse_oximetry", "Pulse oximetry", _number(mon.pulse_oximetry)),
    ]
    if mon.requires_sitter:
        rows.append(("Monitoring", "monitoring.requires_sitter", "Sitter present", "yes"))
    if mon.therapist_present:
        rows.append(("Monitoring", "monitoring.therapist_present", "Therapist present", "yes"))
    for phase in template.phases:
        rows.append(("Phases", f"phases.{phase.name}", phase.name, _phase_text(phase)))
    if template.max_doses_dispensed_per_supply is not None:
        rows.append(
            (
                "Supply",
                "max_doses_dispensed_per_supply",
                "Doses dispensed per supply",
                _number(template.max_doses_dispensed_per_supply),
            )
        )
    return rows


def _is_clinic_setting(template: ProtocolTemplate, path: str) -> bool:
    head = path.split(".", 1)[0]
    return path in template.clinic_settings or (
        head == "phases" and "phases" in template.clinic_settings
    )


def protocol_facts(template: ProtocolTemplate) -> list[Fact]:
    """Every number of `template` with its citation, marking clinic settings and clinic changes."""
    sources = PROTOCOL_SOURCES.get(template.protocol_id, {})
    standard = _STANDARD.get(template.protocol_id)
    standard_values = {path: value for _, path, _, value in _rows(standard)} if standard else {}
    facts = []
    for section, path, label, value in _rows(template):
        source = sources.get(path, "")
        clinic = _is_clinic_setting(template, path) or source.startswith(UNCONFIRMED)
        standard_value = standard_values.get(path) if standard else None
        if standard is not None and standard_value != value:
            facts.append(
                Fact(
                    section=section,
                    path=path,
                    label=label,
                    value=value,
                    source="clinic value",
                    clinic_setting=True,
                    standard_value=standard_value or "not set",
                    standard_source=source,
                )
            )
            continue
        facts.append(Fact(section, path, label, value, source, clinic))
    return facts


# --- the session safety policy ---------------------------------------------------------------

# field: (label, unit, source). Text copied from the comments in ketaclinic/sessions/policy.py.
POLICY_FIELDS: dict[str, tuple[str, str, str]] = {
    "predose_systolic_max": (
        "Pre-dose systolic above which a prescriber override is needed",
        "mmHg",
        "Label guide >140 systolic: consider delaying, §2.1 [S] #7, #8",
    ),
    "predose_diastolic_max": (
        "Pre-dose diastolic above which a prescriber override is needed",
        "mmHg",
        "Label guide >90 diastolic: consider delaying, §2.1 [S] #7, #8",
    ),
    "predose_override_allowed": (
        "A prescriber may override the pre-dose BP gate",
        "",
        "Weigh the BP rise against benefit, §2.1 [S] #7, #8",
    ),
    "predose_systolic_hard_ceiling": (
        "Pre-dose systolic ceiling (never dose above)",
        "mmHg",
        '[U] ">180/100 stop" not confirmed, §2.2; a patient withdrawn at 180/115, §2.2 [C] #23',
    ),
    "predose_diastolic_hard_ceiling": (
        "Pre-dose diastolic ceiling (never dose above)",
        "mmHg",
        '[U] ">180/100 stop" not confirmed, §2.2; a patient withdrawn at 180/115, §2.2 [C] #23',
    ),
    "predose_vitals_max_age_minutes": (
        "Pre-dose vitals at most this old",
        "min",
        "[U] no source",
    ),
    "weight_max_age_days": (
        "Body weight at most this old",
        "days",
        "[U] no source; covers one induction series, §1.1 [C] #23, §1.3 [C] #1",
    ),
    "require_current_weight_for_fixed_doses": (
        "Ask for a current weight for fixed (mg) doses too",
        "",
        "Cautious house choice (ARCHITECTURE §6)",
    ),
    "systolic_high_warning": (
        "Systolic high: warning",
        "mmHg",
        'Label "elevated" line, §2.1 [S] #7',
    ),
    "systolic_high_critical": ("Systolic high: critical", "mmHg", "[U] the hard ceiling above"),
    "diastolic_high_warning": (
        "Diastolic high: warning",
        "mmHg",
        'Label "elevated" line, §2.1 [S] #7',
    ),
    "diastolic_high_critical": ("Diastolic high: critical", "mmHg", "[U] the hard ceiling above"),
    "systolic_low_warning": ("Systolic low: warning", "mmHg", "[U] common bedside alarm limit"),
    "systolic_low_critical": ("Systolic low: critical", "mmHg", "[U] common bedside alarm limit"),
    "diastolic_low_warning": ("Diastolic low: warning", "mmHg", "[U] common bedside alarm limit"),
    "diastolic_low_critical": ("Diastolic low: critical", "mmHg", "[U] common bedside alarm limit"),
    "heart_rate_low_warning": ("Heart rate low: warning", "/min", "[U] textbook bradycardia line"),
    "heart_rate_low_critical": (
        "Heart rate low: critical",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "heart_rate_high_warning": (
        "Heart rate high: warning",
        "/min",
        "[U] textbook tachycardia line",
    ),
    "heart_rate_high_critical": (
        "Heart rate high: critical",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "spo2_low_warning": ("SpO2 low: warning", "%", "[U] common bedside alarm limit"),
    "spo2_low_critical": ("SpO2 low: critical", "%", "[U] common bedside alarm limit"),
    "respiratory_rate_low_warning": (
        "Respiratory rate low: warning",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "respiratory_rate_low_critical": (
        "Respiratory rate low: critical",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "respiratory_rate_high_warning": (
        "Respiratory rate high: warning",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "respiratory_rate_high_critical": (
        "Respiratory rate high: critical",
        "/min",
        "[U] common bedside alarm limit",
    ),
    "minimum_observation_minutes_esketamine": (
        "Minimum observation, esketamine",
        "min",
        "At least 2 h after each dose (label floor), §2.1 [C] #1, #16",
    ),
    "minimum_observation_minutes_racemic": (
        "Minimum observation, racemic ketamine",
        "min",
        "[U] no source; mirrors esketamine's 2 h, §2.1 [C] #1",
    ),
    "bp_recheck_minutes_after_esketamine": (
        "BP re-check after an esketamine dose",
        "min",
        "~40 min after dosing, §2.1 [C] #13",
    ),
    "bp_recheck_tolerance_minutes": (
        "A reading counts as the re-check within",
        "min",
        "[U] no source",
    ),
    "discharge_vitals_max_age_minutes": (
        "Discharge vitals at most this old",
        "min",
        '[U] slow end of "every 5-15 min", §2.4 [S] #46',
    ),
    "discharge_requires_escort": (
        "Discharge only to a responsible adult",
        "",
        "Released to a responsible adult, §2.4 [S] #45; no driving, §2.1 [C] #13",
    ),
    "min_hours_between_doses_racemic": (
        "Racemic ketamine: hours at least between two doses",
        "h",
        "[U] clinic policy; keeps 3 a week (§1.1 [C] #22, #23) possible. docs/sources/sessions.md",
    ),
    "min_hours_between_doses_esketamine": (
        "Esketamine: hours at least between two doses",
        "h",
        "[U] clinic policy; keeps twice weekly (§1.3 [C] #1, #2) possible",
    ),
    "max_dosing_sessions_per_week_default": (
        "Dosing sessions a week where the protocol phase sets no maximum",
        "a week",
        "Most frequent cited schedule, 3 a week, §1.1 [C] #22",
    ),
    "dose_frequency_override_allowed": (
        "A prescriber may override the gap and weekly limit (written justification)",
        "",
        "Clinic policy; planned session counts are extended, never overridden",
    ),
    "chair_booking_minutes": (
        "A booked session holds its chair for",
        "min",
        "[U] clinic policy; 2 h observation (§2.1 [C] #1) plus check-in and dosing",
    ),
    "schedule_max_days_ahead": (
        "Sessions may be booked at most this far ahead",
        "days",
        "[U] clinic policy",
    ),
    "schedule_max_days_back": (
        "Sessions may be back-dated at most",
        "days",
        "[U] clinic policy",
    ),
    "require_ledger_reconciliation": (
        "Sign the note only when the controlled-substance ledger balances",
        "",
        "drawn = administered + wasted + returned, 21 CFR 1304.22(c)",
    ),
}
