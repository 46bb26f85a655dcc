"""What each DEA controlled-substance record must contain, when a theft/loss report is due, and
how long records are kept.

Pure data and arithmetic; the services build the records and call these checks before saving or
exporting. Field lists name their source next to each field: clinical-reference §6 where it
covers the field, otherwise the DEA form itself (cited in full, not yet in the reference).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

FORM_106_DEADLINE_RULE = "dea-form-106-deadline@1"
RETENTION_RULE = "cs-record-retention@1"
BIENNIAL_INVENTORY_RULE = "cs-biennial-inventory@1"

# clinical-reference §6 [C] #125 (21 CFR 1304.04(a)): records kept at least 2 years from their
# date. A clinic (or its state) may keep them longer, never shorter.
MINIMUM_RETENTION_YEARS = 2
# clinical-reference §6 [C] #130, #131 (1304.11): a new inventory at least every 2 years.
BIENNIAL_INVENTORY_YEARS = 2
# clinical-reference §6 [S] #134, #135 (21 CFR 1301.76(b), CFR text itself [U]): report theft or
# significant loss within one business day of discovery. The DEA Diversion Control page
# https://www.deadiversion.usdoj.gov/21cfr_reports/theft/index.html states the same rule.
FORM_106_BUSINESS_DAYS = 1

# Sources cited by the field lists below.
_CFR_1304_21 = "clinical-reference §6 [C] #126 (1304.21)"
_CFR_1304_22 = "clinical-reference §6 [C] #127, #128 (1304.22(c))"
_INVOICES = "clinical-reference §6 [C] #133 (CIII purchases documented by invoices)"
_WASTE_LOG = "clinical-reference §6 [S] #137, #138 (waste log)"
_INVENTORY = "clinical-reference §6 [C] #130, #131 (1304.11)"
_ESTIMATE = "clinical-reference §6 [C] #132 (estimated counts for opened CIII containers)"
_LEDGER = "clinical-reference §6 implementation notes; ARCHITECTURE §6 (every draw names a lot)"
_FORM_41 = "DEA Form 41, OMB 1117-0007 (form text: https://omb.report/icr/202401-1117-001)"
_FORM_106 = "DEA Form 106, OMB 1117-0001 (form text: https://omb.report/icr/201705-1117-003)"
_REVERSE = (
    "clinical-reference §6 [C] #136 (inventory sent to a reverse distributor instead of "
    "destruction on site) and [C] #127 (1304.22(c): quantities disposed of otherwise, with date, "
    "manner and quantity)"
)
_OPEN_OR_CLOSE = (
    "1304.11 via secondary summary, not in clinical-reference [U]; kept because asking for it "
    "is the conservative choice"
)


class ReportKind(StrEnum):
    ADMINISTRATION_LOG = "administration_log"
    RECEIPT = "receipt"
    WASTE_LOG = "waste_log"
    INITIAL_INVENTORY = "initial_inventory"
    BIENNIAL_INVENTORY = "biennial_inventory"
    DEA_FORM_41 = "dea_form_41"
    DEA_FORM_106 = "dea_form_106"
    REVERSE_DISTRIBUTOR = "reverse_distributor"


@dataclass(frozen=True, slots=True)
class RequiredField:
    name: str
    meaning: str
    source: str
    # Required only when another field holds this value, e.g. ("reported_to_police", True).
    required_if: tuple[str, object] | None = None


def _f(name: str, meaning: str, source: str) -> RequiredField:
    return RequiredField(name=name, meaning=meaning, source=source)


_LOCATION = _f("registered_location", "the DEA-registered location keeping it", _CFR_1304_21)
_SUBSTANCE = _f("substance_name", "name of the substance", _CFR_1304_22)
_FINISHED_FORM = _f("finished_form", "strength of the finished form, e.g. 50 mg/mL", _CFR_1304_22)
_CONTAINER = _f(
    "container_size", "units or volume per commercial container, e.g. 10 mL vial", _CFR_1304_22
)
_LOT = _f("lot", "lot (batch) number", _LEDGER)

_INVENTORY_HEADER = (
    _LOCATION,
    _f("dea_registration_number", "registration the inventory belongs to", _CFR_1304_21),
    _f("taken_on", "date the inventory was taken", _INVENTORY),
    _f("opening_or_close_of_business", "whether taken at opening or close", _OPEN_OR_CLOSE),
    _f("taken_by", "person who took the inventory", _INVENTORY),
)
_INVENTORY_ITEM = (
    _SUBSTANCE,
    _FINISHED_FORM,
    _CONTAINER,
    _LOT,
    _f("sealed_containers", "number of unopened containers (exact count)", _ESTIMATE),
    _f("opened_quantity", "contents of opened containers (0 if none)", _ESTIMATE),
    _f("opened_quantity_estimated", "whether the opened contents were estimated", _ESTIMATE),
)

REQUIRED_FIELDS: Mapping[ReportKind, tuple[RequiredField, ...]] = MappingProxyType(
    {
        ReportKind.ADMINISTRATION_LOG: (
            _LOCATION,
            _SUBSTANCE,
            _FINISHED_FORM,
            _CONTAINER,
            _LOT,
            _f("quantity_administered", "units or volume administered", _CFR_1304_22),
            _f("quantity_mg", "milligrams administered", "ARCHITECTURE §9 (doses in mg)"),
            _f("patient_name", "patient's name", _CFR_1304_22),
            _f("patient_address", "patient's address", _CFR_1304_22),
            _f("administered_on", "actual date of administration", _CFR_1304_21),
            _f("administered_by", "name or initials of the person administering", _CFR_1304_22),
        ),
        ReportKind.RECEIPT: (
            _LOCATION,
            _SUBSTANCE,
            _FINISHED_FORM,
            _CONTAINER,
            _LOT,
            _f("lot_expiry", "expiry of the lot (no draw after it)", _LEDGER),
            _f("containers_received", "number of containers received", _CFR_1304_22),
            _f("received_on", "actual date of receipt", _CFR_1304_21),
            _f("received_by", "person who received and checked the delivery", _LEDGER),
            _f("supplier_name", "supplier's name", _CFR_1304_22),
            _f("supplier_address", "supplier's address", _CFR_1304_22),
            _f("supplier_dea_number", "supplier's DEA registration number", _CFR_1304_22),
            _f("invoice_reference", "invoice or packing-slip number", _INVOICES),
        ),
        ReportKind.WASTE_LOG: (
            _LOCATION,
            _SUBSTANCE,
            _f("strength", "strength of the product wasted", _WASTE_LOG),
            _f("dosage_form", "form of the product wasted", _WASTE_LOG),
            _LOT,
            _f("quantity_wasted", "quantity wasted", _WASTE_LOG),
            _f("patient", "patient for whom the dose was drawn", _WASTE_LOG),
            _f("wasted_on", "actual date of the waste", _CFR_1304_21),
            _f("wasted_by_signature", "signature of the person wasting", _WASTE_LOG),
            _f("witness_signature", "signature of the witness", _WASTE_LOG),
            _f("rendered_non_retrievable", "how the waste was made non-retrievable", _WASTE_LOG),
        ),
        ReportKind.INITIAL_INVENTORY: _INVENTORY_HEADER,
        ReportKind.BIENNIAL_INVENTORY: (
            *_INVENTORY_HEADER,
            _f("previous_inventory_on", "date of the inventory before this one", _INVENTORY),
        ),
        ReportKind.DEA_FORM_41: (
            _f("registrant_name", "registered name", _FORM_41),
            _f("dea_registration_number", "registrant's DEA number", _FORM_41),
            _f("registered_address", "registered address", _FORM_41),
            _f("telephone", "current telephone number", _FORM_41),
            _f("contact_name", "contact person", _FORM_41),
            _f("destruction_date", "date of destruction", _FORM_41),
            _f("destruction_method", "method of destruction", _FORM_41),
            _f("destruction_location", "where the destruction took place", _FORM_41),
            _f("first_witness_name", "first authorized employee witness", _FORM_41),
            _f("first_witness_signature", "first witness's signature", _FORM_41),
            _f("second_witness_name", "second authorized employee witness", _FORM_41),
            _f("second_witness_signature", "second witness's signature", _FORM_41),
        ),
        ReportKind.DEA_FORM_106: (
            _f("registrant_name", "registered name", _FORM_106),
            _f("registrant_address", "registered address", _FORM_106),
            _f("telephone", "telephone number", _FORM_106),
            _f("dea_registration_number", "registrant's DEA number", _FORM_106),
            _f("theft_or_loss_date", "date of the theft or loss", _FORM_106),
            _f("discovered_at", "when it was discovered (starts the deadline)", _FORM_106),
            _f("principal_business", "principal business, e.g. hospital/clinic", _FORM_106),
            _f("county", "county of the registered location", _FORM_106),
            _f("theft_or_loss_type", "type, e.g. employee pilferage, lost in transit", _FORM_106),
            _f("reported_to_police", "whether police were told", _FORM_106),
            RequiredField(
                name="police_department",
                meaning="police department's name and telephone",
                source=_FORM_106,
                required_if=("reported_to_police", True),
            ),
            _f("thefts_or_losses_past_24_months", "number of earlier incidents", _FORM_106),
        ),
        ReportKind.REVERSE_DISTRIBUTOR: (
            _f("registrant_name", "registered name", _REVERSE),
            _f("dea_registration_number", "registrant's DEA number", _REVERSE),
            _f("registered_address", "registered address", _REVERSE),
            _f("reverse_distributor_name", "reverse distributor's name", _REVERSE),
            _f("reverse_distributor_address", "reverse distributor's address", _REVERSE),
            _f("reverse_distributor_dea_number", "reverse distributor's DEA number", _REVERSE),
            _f("destruction_date", "actual date handed to the reverse distributor", _CFR_1304_21),
            _f("destruction_method", "manner of disposal", _REVERSE),
            _f("invoice_reference", "invoice or transfer record number", _INVOICES),
        ),
    }
)

_NDC_OR_CODE = "NDC, or the DEA controlled-substance code number where there is no NDC"

# Report kinds whose data carries line items under "items", and what each item needs.
REQUIRED_ITEM_FIELDS: Mapping[ReportKind, tuple[RequiredField, ...]] = MappingProxyType(
    {
        ReportKind.INITIAL_INVENTORY: _INVENTORY_ITEM,
        ReportKind.BIENNIAL_INVENTORY: _INVENTORY_ITEM,
        ReportKind.DEA_FORM_41: (
            _f("ndc_or_dea_code", _NDC_OR_CODE, _FORM_41),
            _f("lot", "batch (lot) number", _FORM_41),
            _f("substance_name", "name of the substance", _FORM_41),
            _f("strength", "strength", _FORM_41),
            _f("dosage_form", "form", _FORM_41),
            _f("package_quantity", "units or volume in a full package", _FORM_41),
            _f("full_packages", "number of full packages destroyed", _FORM_41),
            _f("partial_package_count", "units or volume from opened packages", _FORM_41),
            _f("total_destroyed", "total destroyed", _FORM_41),
        ),
        ReportKind.REVERSE_DISTRIBUTOR: (
            _f("ndc_or_dea_code", _NDC_OR_CODE, _REVERSE),
            _f("lot", "batch (lot) number", _REVERSE),
            _f("substance_name", "name of the substance", _REVERSE),
            _f("strength", "strength", _REVERSE),
            _f("dosage_form", "form", _REVERSE),
            _f("package_quantity", "units or volume in a full package", _REVERSE),
            _f("full_packages", "number of full packages sent", _REVERSE),
            _f("partial_package_count", "units or volume from opened packages", _REVERSE),
            _f("total_destroyed", "total sent", _REVERSE),
        ),
        ReportKind.DEA_FORM_106: (
            # The online form asks for the NDC; a compounded troche has none.
            _f("ndc_or_dea_code", _NDC_OR_CODE, _FORM_106),
            _f("substance_name", "name of the substance", _FORM_106),
            _f("strength", "strength", _FORM_106),
            _f("dosage_form", "form", _FORM_106),
            _f("quantity_lost", "quantity stolen or lost", _FORM_106),
        ),
    }
)


def required_field_names(report_kind: ReportKind) -> tuple[str, ...]:
    return tuple(spec.name for spec in REQUIRED_FIELDS[report_kind])


def _is_missing(value: object) -> bool:
    """Absent, None, blank text or an empty collection. 0 and False are answers, not gaps."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set | frozenset):
        return not value
    return False


def _missing_in(
    specs: tuple[RequiredField, ...], data: Mapping[str, object], prefix: str
) -> list[str]:
    missing: list[str] = []
    for spec in specs:
        if spec.required_if is not None:
            other, trigger = spec.required_if
            if data.get(other) != trigger:
                continue
        if _is_missing(data.get(spec.name)):
            missing.append(prefix + spec.name)
    return missing


def missing_fields(report_kind: ReportKind, data: Mapping[str, object]) -> tuple[str, ...]:
    """Names of the required fields `data` leaves empty, in field-list order.

    Line items are checked under "items" and reported as "items[2].lot". A record is complete
    when the result is empty.
    """
    missing = _missing_in(REQUIRED_FIELDS[report_kind], data, "")
    item_specs = REQUIRED_ITEM_FIELDS.get(report_kind)
    if item_specs is not None:
        items = data.get("items")
        if not isinstance(items, list | tuple) or not items:
            missing.append("items")
        else:
            for index, item in enumerate(items):
                if not isinstance(item, Mapping):
                    missing.append(f"items[{index}]")
                    continue
                missing.extend(_missing_in(item_specs, item, f"items[{index}]."))
    return tuple(missing)


# --- Form 106 deadline -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Form106Deadline:
    discovered_at: datetime
    due_by: datetime
    rule: str = FORM_106_DEADLINE_RULE

    def is_overdue(self, now: datetime) -> bool:
        return now > self.due_by


def is_business_day(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def form_106_deadline(
    discovered_at: datetime, *, holidays: frozenset[date] = frozenset()
) -> Form106Deadline:
    """When the DEA must have the theft/significant-loss notice: one business day after discovery.

    Read conservatively as the same local clock time on the first business day after the day of
    discovery (Friday 15:00 -> Monday 15:00; Saturday 10:00 -> Monday 10:00). Business days are
    Monday to Friday minus `holidays`, which the clinic supplies (this module keeps no calendar).
    `discovered_at` must be aware and in the clinic's own time zone: the weekday is read there.
    """
    if discovered_at.tzinfo is None or discovered_at.utcoffset() is None:
        raise ValueError("discovered_at must carry the clinic's time zone")
    day = discovered_at.date()
    business_days_left = FORM_106_BUSINESS_DAYS
    while business_days_left:
        day += timedelta(days=1)
        if is_business_day(day, holidays):
            business_days_left -= 1
    due_by = datetime.combine(day, discovered_at.timetz())
    return Form106Deadline(discovered_at=discovered_at, due_by=due_by)


# --- Retention and the biennial inventory ------------------------------------------------------


def _years_later(start: date, years: int, *, leap_day_to_march: bool) -> date:
    """The same calendar date `years` later; 29 February moves to 1 March or 28 February."""
    year = start.year + years
    if start.month == 2 and start.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1) if leap_day_to_march else date(year, 2, 28)
    return start.replace(year=year)


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    record_date: date
    retention_years: int
    keep_until: date
    may_delete: bool
    rule: str = RETENTION_RULE


def retention_decision(
    record_date: date, today: date, retention_years: int = MINIMUM_RETENTION_YEARS
) -> RetentionDecision:
    """Whether a controlled-substance record may be deleted `today`.

    It is kept through the anniversary `retention_years` after its date (a 29 February record
    through 1 March, the later reading) and may be deleted only after that day.
    """
    if isinstance(retention_years, bool) or not isinstance(retention_years, int):
        raise TypeError("retention_years is a whole number of years")
    if retention_years < MINIMUM_RETENTION_YEARS:
        raise ValueError(
            f"retention can be raised above {MINIMUM_RETENTION_YEARS} years, never lowered"
        )
    keep_until = _years_later(record_date, retention_years, leap_day_to_march=True)
    return RetentionDecision(
        record_date=record_date,
        retention_years=retention_years,
        keep_until=keep_until,
        may_delete=today > keep_until,
    )


def may_delete(
    record_date: date, today: date, retention_years: int = MINIMUM_RETENTION_YEARS
) -> bool:
    """False while the record is inside its retention window (see `retention_decision`)."""
    return retention_decision(record_date, today, retention_years).may_delete


@dataclass(frozen=True, slots=True)
class BiennialInventoryDue:
    last_inventory_on: date
    due_on: date
    rule: str = BIENNIAL_INVENTORY_RULE


def next_biennial_inventory_due(last_inventory_on: date) -> BiennialInventoryDue:
    """The latest date for the next inventory: two years on (29 February -> 28 February, the
    earlier reading)."""
    due_on = _years_later(last_inventory_on, BIENNIAL_INVENTORY_YEARS, leap_day_to_march=False)
    return BiennialInventoryDue(last_inventory_on=last_inventory_on, due_on=due_on)
