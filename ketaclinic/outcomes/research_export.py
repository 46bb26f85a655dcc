"""The de-identified research export: an allow-list of fields, each through a Safe Harbor rule,
written as CSV and Parquet with a data dictionary (docs/sources/outcomes.md section 4).

No name, contact detail, MRN, internal or public id, device or lot number, URL, free text or full
date leaves: patients get per-export pseudonyms, dates become days since the first dose, and the
only calendar element is the year after the patient's secret shift.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ketaclinic.outcomes.aggregates import cohort_rows
from ketaclinic.outcomes.cohort import DEFAULT_INDUCTION_DAYS, course_outcome, verdicts_after
from ketaclinic.outcomes.deid import (
    SAFE_HARBOR_RULE,
    age_fields,
    days_between,
    new_shift_days,
    pseudonym,
    shifted_year,
    zip3,
)
from ketaclinic.outcomes.export_files import export_directory
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import DataExport, ResearchDateShift
from ketaclinic.outcomes.rules import OutcomePolicy
from ketaclinic.outcomes.selectors import CHUNK, cohort_members
from ketaclinic.patients.models import Patient

Progress = Callable[[int], None]  # percent done

# table -> [(column, type, description)]: the data dictionary, and the only columns written.
DICTIONARY: dict[str, list[tuple[str, str, str]]] = {
    "patients": [
        ("patient", "string", "Pseudonym, valid in this export only"),
        ("sex_at_birth", "string", "female, male, intersex or unknown"),
        ("age_at_first_dose", "string", "Whole years; ages over 89 are one group, 90+"),
        ("birth_year", "string", "Year of birth after the date shift; blank for 90+"),
        ("zip3", "string", "First 3 ZIP digits where allowed by the ZIP3 table, else 000"),
        ("first_dose_year", "int64", "Year of the first dose after the date shift"),
        ("group", "string", "Route or protocol of the first dose (the cohort's grouping)"),
        ("dosed_sessions", "int64", "Sessions with a dose given"),
    ],
    "measures": [
        ("patient", "string", "Pseudonym"),
        ("instrument", "string", "phq9, madrs or qids-sr16"),
        ("score", "float64", "Total score"),
        ("day", "int64", "Days since the first dose (negative: before it)"),
    ],
    "adverse_events": [
        ("patient", "string", "Pseudonym"),
        ("event", "string", "Coded adverse event (no free text)"),
        ("grade", "int64", "CTCAE grade 1-5"),
        ("serious", "bool", "Serious adverse event"),
        ("day", "int64", "Days since the first dose"),
    ],
    "outcomes": [
        ("patient", "string", "Pseudonym"),
        ("response", "bool", "Response after induction (blank: cannot tell)"),
        ("remission", "bool", "Remission after induction (blank: cannot tell)"),
        ("days_to_first_response", "float64", "Days from first dose to first response"),
        ("first_response_seen", "bool", "false: censored at the last score"),
        ("durability_days", "float64", "Days from first response to relapse or last score"),
        ("relapsed", "bool", "true: relapse; false: censored"),
    ],
}
ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}


def _shifts(organization: Any, keys: set[int]) -> dict[int, int]:
    """Each patient's kept shift, creating (and keeping) one for patients without one yet."""
    shifts = {
        patient_id: days
        for patient_id, days in ResearchDateShift.objects.values_list("patient_id", "shift_days")
        if patient_id in keys
    }
    missing = keys - set(shifts)
    if missing:
        ResearchDateShift.objects.bulk_create(
            [
                ResearchDateShift(
                    organization=organization, patient_id=key, shift_days=new_shift_days()
                )
                for key in sorted(missing)
            ],
            batch_size=2000,
            ignore_conflicts=True,  # a concurrent export may have made one: re-read below
        )
        shifts = {
            patient_id: days
            for patient_id, days in ResearchDateShift.objects.values_list(
                "patient_id", "shift_days"
            )
            if patient_id in keys
        }
    return shifts


def _write(directory: Path, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns = DICTIONARY[table]
    names = [name for name, _, _ in columns]
    csv_path = directory / f"{table}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
    schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind, _ in columns])
    arrays = {name: [row.get(name) for row in rows] for name in names}
    parquet_path = directory / f"{table}.parquet"
    pq.write_table(pa.table(arrays, schema=schema), parquet_path)
    return [
        {
            "name": csv_path.name,
            "table": table,
            "format": "csv",
            "rows": len(rows),
            "bytes": csv_path.stat().st_size,
        },
        {
            "name": parquet_path.name,
            "table": table,
            "format": "parquet",
            "rows": len(rows),
            "bytes": parquet_path.stat().st_size,
        },
    ]


def _dictionary_file(directory: Path, export: DataExport) -> dict[str, Any]:
    path = directory / "data_dictionary.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "column", "type", "description"])
        for table, columns in DICTIONARY.items():
            for name, kind, description in columns:
                writer.writerow([table, name, kind, description])
        writer.writerow(
            ["(export)", "rule", "string", f"{export.rule_version}; ZIP3 table {export.zip3_table}"]
        )
    return {
        "name": path.name,
        "table": "data_dictionary",
        "format": "csv",
        "rows": sum(len(c) for c in DICTIONARY.values()) + 1,
        "bytes": path.stat().st_size,
    }


def _kept_outcomes(filters: CohortFilters) -> dict[int, dict[str, Any]]:
    """The cohort's outcome columns from the course summaries (the dashboard's numbers),
    instead of judging every course again."""
    rows, _ = cohort_rows(filters)
    kept = {}
    for key, response, remission, early, to_days, to_event, days, event in rows.values_list(
        "patient_id",
        "response",
        "remission",
        "early_verdicts",
        "to_response_days",
        "to_response_event",
        "durability_days",
        "durability_event",
    ).iterator(chunk_size=CHUNK):
        if filters.induction_days != DEFAULT_INDUCTION_DAYS:
            response, remission = verdicts_after(early, filters.induction_days)
        kept[key] = {
            "response": response,
            "remission": remission,
            "days_to_first_response": to_days,
            "first_response_seen": to_event,
            "durability_days": days,
            "relapsed": event,
        }
    return kept


def build_research_export(
    export: DataExport, *, progress: Progress
) -> tuple[int, list[dict[str, Any]]]:
    """Write the files of `export` (inside its organization's scope); returns (patients, files)."""
    from ketaclinic.sessions.models import AdverseEvent

    if export.rule_version != SAFE_HARBOR_RULE:
        raise ValueError(f"unknown de-identification rule {export.rule_version}")
    filters = CohortFilters(**export.parameters)
    members = cohort_members(filters, dose_times=False)
    kept = _kept_outcomes(filters)
    progress(20)
    keys = {m.patient_key for m in members}
    shifts = _shifts(export.organization, keys)
    details = {
        key: (sex, address)
        for key, sex, address in Patient.objects.values_list(
            "id", "sex_at_birth", "address"
        ).iterator(chunk_size=CHUNK)
        if key in keys
    }
    order = sorted(keys)
    random.SystemRandom().shuffle(order)  # pseudonyms carry no order of the patient keys
    names = {key: pseudonym(index + 1) for index, key in enumerate(order)}
    progress(35)

    policy = OutcomePolicy()
    patients, measures, outcomes = [], [], []
    first_dose = {}
    for member in sorted(members, key=lambda m: names[m.patient_key]):
        key, course = member.patient_key, member.course
        shift = shifts[key]
        start = course.first_dose_at
        first_dose[key] = start
        sex, address = details[key]
        ages = age_fields(member.birth_date, start.date(), shift)
        patients.append(
            {
                "patient": names[key],
                "sex_at_birth": sex,
                "age_at_first_dose": ages.age,
                "birth_year": ages.birth_year,
                "zip3": zip3(address, table=export.zip3_table),
                "first_dose_year": shifted_year(start, shift),
                "group": course.group,
                "dosed_sessions": member.sessions,
            }
        )
        for m in sorted(course.measurements, key=lambda m: m.taken_at):
            measures.append(
                {
                    "patient": names[key],
                    "instrument": m.instrument_id,
                    "score": float(m.score),
                    "day": days_between(start, m.taken_at),
                }
            )
        found = kept.get(key)
        if found is None:  # no summary yet (written around the services): judge it here
            outcome = course_outcome(course, policy=policy, induction_days=filters.induction_days)
            first, durable = outcome.to_first_response, outcome.durability
            found = {
                "response": outcome.response,
                "remission": outcome.remission,
                "days_to_first_response": first.time if first else None,
                "first_response_seen": first.event if first else None,
                "durability_days": durable.time if durable else None,
                "relapsed": durable.event if durable else None,
            }
        outcomes.append({"patient": names[key], **found})
    progress(60)
    events = []
    for patient_id, code, grade, serious, onset in (
        AdverseEvent.objects.order_by("onset_at")
        .values_list("patient_id", "event_code", "grade", "serious", "onset_at")
        .iterator(chunk_size=CHUNK)
    ):
        if patient_id in keys:
            events.append(
                {
                    "patient": names[patient_id],
                    "event": code,
                    "grade": grade,
                    "serious": serious,
                    "day": days_between(first_dose[patient_id], onset),
                }
            )
    progress(75)
    directory = export_directory(export)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for table, rows in (
        ("patients", patients),
        ("measures", measures),
        ("adverse_events", events),
        ("outcomes", outcomes),
    ):
        files += _write(directory, table, rows)
    files.append(_dictionary_file(directory, export))
    progress(100)
    return len(members), files
