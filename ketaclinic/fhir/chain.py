"""Chained search on the patient: `subject:Patient.identifier=...`, `patient.identifier=...`,
`subject.name=...`. The chained part runs as a Patient search (strict, within the caller's
permissions); its matches replace the chain with `patient=<ids>`."""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import MAX_COUNT

# subject:Patient.identifier / patient.identifier
_CHAIN = re.compile(r"^(patient|subject)(?::Patient)?\.([A-Za-z_][A-Za-z0-9_-]*(?::[a-z]+)?)$")
NO_MATCH = "00000000-0000-0000-0000-000000000000"


def resolve(actor: Actor, handler: Any, query: QueryDict, base_url: str) -> QueryDict:
    chained = [name for name in query if _CHAIN.match(name)]
    if not chained:
        return query
    from ketaclinic.fhir.registry import HANDLERS, run_search

    out = query.copy()
    for name in chained:
        match = _CHAIN.match(name)
        assert match is not None
        reference, patient_param = match.groups()
        if reference not in handler.search_params:
            continue  # an unknown parameter: reported or refused as any other
        inner = QueryDict(mutable=True)
        inner.setlist(patient_param, query.getlist(name))
        inner["_count"] = str(MAX_COUNT)
        found = run_search(actor, HANDLERS["Patient"], inner, base_url, strict=True)
        if found["total"] > MAX_COUNT:
            raise FhirError(
                400,
                f"{name} matches {found['total']} patients; narrow it to at most {MAX_COUNT}.",
            )
        ids = [e["resource"]["id"] for e in found["entry"] if e["search"]["mode"] == "match"]
        out.pop(name)
        out.appendlist(reference, ",".join(ids) or NO_MATCH)
    return out
