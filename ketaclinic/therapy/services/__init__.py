"""Writes of the therapy app, split by workflow: the team, visits and notes, psychotherapy notes,
messages and therapy measures. Every public name is importable from the package."""

from ketaclinic.therapy.services.messages import message_mark_read, message_send
from ketaclinic.therapy.services.process_notes import (
    break_glass_review,
    process_note_break_glass,
    process_note_read,
    process_note_write,
)
from ketaclinic.therapy.services.team import measure_plan_add, team_assign, team_unassign
from ketaclinic.therapy.services.visits import (
    risk_flag_raise,
    visit_amend,
    visit_create,
    visit_save,
    visit_sign,
)

__all__ = [
    "break_glass_review",
    "measure_plan_add",
    "message_mark_read",
    "message_send",
    "process_note_break_glass",
    "process_note_read",
    "process_note_write",
    "risk_flag_raise",
    "team_assign",
    "team_unassign",
    "visit_amend",
    "visit_create",
    "visit_save",
    "visit_sign",
]
