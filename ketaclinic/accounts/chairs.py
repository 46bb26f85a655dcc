"""Which treatment chair (or room) can host which route. Pure module: no Django.

A chair is booked for the whole monitored session, so what it must have depends on the route:
an infusion pump for IV, a place to observe for at least two hours for intranasal esketamine
(docs/sources/sessions.md, "Chairs and esketamine observation"), and so on. The clinic says what each chair
has; this module says whether that is enough.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ChairCapability(StrEnum):
    IV_PUMP = "iv_pump"  # infusion pump and IV access
    INJECTION = "injection"  # intramuscular injection
    ESKETAMINE_OBSERVATION = "esketamine_observation"  # intranasal, 2 h observed, REMS setting
    ORAL = "oral"  # sublingual or oral dose taken in clinic


CAPABILITY_LABELS = {
    ChairCapability.IV_PUMP: "IV infusion (pump)",
    ChairCapability.INJECTION: "Intramuscular injection",
    ChairCapability.ESKETAMINE_OBSERVATION: "Esketamine nasal spray with 2-hour observation",
    ChairCapability.ORAL: "Sublingual or oral dose",
}

NEEDED_FOR_ROUTE = {
    "intravenous": ChairCapability.IV_PUMP,
    "intramuscular": ChairCapability.INJECTION,
    "intranasal": ChairCapability.ESKETAMINE_OBSERVATION,
    "sublingual": ChairCapability.ORAL,
    "oral": ChairCapability.ORAL,
}


def chair_refusal(capabilities: Iterable[str], route: str) -> str | None:
    """None when a chair with `capabilities` can host a session by `route`, else why not."""
    needed = NEEDED_FOR_ROUTE.get(route)
    if needed is None or needed.value in set(capabilities):
        return None
    return f"this chair is not set up for {CAPABILITY_LABELS[needed].lower()}"
