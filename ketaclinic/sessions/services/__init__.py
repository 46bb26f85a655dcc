"""Writes of the monitored treatment session, one module per workflow phase. Each service: permission, the
safety rules as hard stops, one transaction, one audit event (`sessions.<thing>.<verb>`), side effects on
commit.

The pure core decides (calculate_dose, check_predose_gate, classify_vitals, evaluate_discharge,
next_state, requires_escalation, pmf_missing_fields); these modules load inputs, store the result
beside the rule id/version, and move the state machine.
"""

from ketaclinic.sessions.services._common import (
    CADSS_MAX,
    COMPUTED_ITEMS,
    MOAAS_RANGE,
    VITAL_FIELDS,
    session_policy,
)
from ketaclinic.sessions.services.checkin import (
    session_abort,
    session_check_in,
    session_frequency_override,
    session_schedule,
)
from ketaclinic.sessions.services.discharge import (
    ASSESSMENT_FIELDS,
    discharge_check,
    session_discharge,
)
from ketaclinic.sessions.services.dosing import (
    dose_administer,
    dose_complete,
    dose_order_sign,
)
from ketaclinic.sessions.services.monitoring import (
    VITALS_RELATED,
    RecordedVitals,
    adverse_event_record,
    intervention_record,
    observation_record,
    vitals_record,
)
from ketaclinic.sessions.services.notes import (
    note_amend,
    note_save,
    note_sign,
)
from ketaclinic.sessions.services.pmf import (
    PMF_MANUAL_FIELDS,
    pmf_auto_fields,
    pmf_mark_submitted,
    pmf_update,
    rems_enroll,
)
from ketaclinic.sessions.services.prechecks import (
    precheck_record,
)

__all__ = [
    "ASSESSMENT_FIELDS",
    "CADSS_MAX",
    "COMPUTED_ITEMS",
    "MOAAS_RANGE",
    "PMF_MANUAL_FIELDS",
    "VITAL_FIELDS",
    "VITALS_RELATED",
    "adverse_event_record",
    "discharge_check",
    "dose_administer",
    "dose_complete",
    "dose_order_sign",
    "intervention_record",
    "note_amend",
    "note_save",
    "note_sign",
    "observation_record",
    "pmf_auto_fields",
    "pmf_mark_submitted",
    "pmf_update",
    "precheck_record",
    "rems_enroll",
    "session_abort",
    "session_check_in",
    "session_discharge",
    "session_frequency_override",
    "session_policy",
    "session_schedule",
    "RecordedVitals",
    "vitals_record",
]
