"""Which patients a cohort holds: one parser for the dashboard's form and the JSON API's query."""

from __future__ import annotations

from datetime import date
from typing import Literal

from ninja import Field, Schema

from ketaclinic.outcomes.cohort import (
    DEFAULT_INDUCTION_DAYS,
    MAX_INDUCTION_DAYS,
    MIN_INDUCTION_DAYS,
)

# Age bands for grouping only (not clinical thresholds); the last one stops at 89 because
# ages over 89 are never shown apart (HIPAA Safe Harbor, docs/sources/outcomes.md section 4).
AGE_BANDS: dict[str, tuple[int, int]] = {
    "18-29": (18, 29),
    "30-44": (30, 44),
    "45-64": (45, 64),
    "65-89": (65, 89),
    "90+": (90, 200),
}
INSTRUMENTS = {"phq9": "PHQ-9", "madrs": "MADRS", "qids-sr16": "QIDS-SR16"}
ROUTES = ("intravenous", "intramuscular", "intranasal", "sublingual", "oral")
GROUPINGS = {"route": "route", "protocol": "protocol", "none": "whole cohort"}


class CohortFilters(Schema):
    instrument: Literal["phq9", "madrs", "qids-sr16"] = "phq9"
    route: Literal["", "intravenous", "intramuscular", "intranasal", "sublingual", "oral"] = ""
    protocol: str = Field(
        default="", max_length=100, description="Protocol key, e.g. ketamine-iv-6"
    )
    phase: str = Field(
        default="", max_length=60, description="Treatment-plan phase, e.g. maintenance"
    )
    condition: str = Field(
        default="", max_length=20, description="ICD-10-CM code or prefix, e.g. F33"
    )
    trd: Literal["", "met", "not_met", "undetermined"] = ""
    age_band: Literal["", "18-29", "30-44", "45-64", "65-89", "90+"] = ""
    first_dose_from: date | None = None
    first_dose_to: date | None = None
    group_by: Literal["route", "protocol", "none"] = "route"
    induction_days: int = Field(
        default=DEFAULT_INDUCTION_DAYS, ge=MIN_INDUCTION_DAYS, le=MAX_INDUCTION_DAYS
    )

    def described(self) -> list[str]:
        """The filters in words, for the dashboard and the disclosure log."""
        parts = [f"instrument {INSTRUMENTS[self.instrument]}"]
        for label, value in (
            ("route", self.route),
            ("protocol", self.protocol),
            ("phase", self.phase),
            ("condition", self.condition),
            ("TRD", self.trd.replace("_", " ")),
            ("age", self.age_band),
        ):
            if value:
                parts.append(f"{label} {value}")
        if self.first_dose_from:
            parts.append(f"first dose from {self.first_dose_from.isoformat()}")
        if self.first_dose_to:
            parts.append(f"first dose to {self.first_dose_to.isoformat()}")
        return parts
