"""Versions written on the clinic's screens (or the JSON API) between two FHIR writes.

Every FHIR create, update and delete keeps the version it served (fhir/history.py). A change made
elsewhere moves the row's version too; without more, that version would vanish from `_history`
at the next change. So just before a row FHIR has written is changed again, by anyone, the
version being replaced is kept, as a read served it (the received JSON laid over where it is
kept at that version): `vread` returns it unchanged and `_history` lists it.

Only resources with a stored version are followed (one indexed lookup per change of such a
row); rows no FHIR client wrote cost that lookup only. The hook runs from
`core.models.ClockStampField` (an update that moves `updated_at`), not from a pre_save signal,
so the bulk INSERT paths (`core.rows.insert`) stay as they are: a new row has nothing to keep.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, models, router
from django_scopes import scope

from ketaclinic.core import rows
from ketaclinic.fhir.common import version_id
from ketaclinic.fhir.history_models import ResourceVersion

# The instance attribute marking a row whose previous version this hook already looked after:
# a second save of the same instance in one write replaces a version nobody was served.
_SEEN = "_fhir_previous_version_kept"
_LATEST_SQL = (
    "SELECT version_id, method FROM fhir_resourceversion"
    " WHERE organization_id = %s AND resource_type = %s AND resource_id = %s"
    " ORDER BY id DESC LIMIT 1"
)


def _types() -> dict[type[models.Model], str]:
    from ketaclinic.consent.models import ConsentSignature
    from ketaclinic.measures.models import QuestionnaireResponse
    from ketaclinic.patients.models import (
        Allergy,
        BodyHeight,
        BodyWeight,
        Condition,
        MedicationStatement,
        Patient,
        VitalSign,
    )
    from ketaclinic.scheduling.models import Appointment
    from ketaclinic.sessions.models import AdverseEvent, DoseAdministration, TreatmentSession

    return {
        Patient: "Patient",
        Condition: "Condition",
        MedicationStatement: "MedicationStatement",
        Allergy: "AllergyIntolerance",
        BodyWeight: "Observation",
        BodyHeight: "Observation",
        VitalSign: "Observation",
        QuestionnaireResponse: "QuestionnaireResponse",
        TreatmentSession: "Encounter",
        DoseAdministration: "MedicationAdministration",
        AdverseEvent: "AdverseEvent",
        ConsentSignature: "Consent",
        Appointment: "Appointment",
    }


TYPES: dict[type[models.Model], str] = {}


def keep_previous_version(instance: models.Model) -> None:
    resource_type = TYPES.get(type(instance))
    if resource_type is None or instance.pk is None or getattr(instance, _SEEN, False):
        return
    setattr(instance, _SEEN, True)
    resource_id = str(getattr(instance, "public_id", ""))
    organization_id = getattr(instance, "organization_id", None)
    if organization_id is None:
        return
    # Every save of such a row pays this lookup (a session's, at each batch of vitals): SQL
    # built once rather than a queryset compiled per save, which cost most of the hook's CPU.
    latest = rows.execute(
        connections[router.db_for_read(ResourceVersion)],
        _LATEST_SQL,
        (organization_id, resource_type, resource_id),
    )
    if latest is None or latest[1] == ResourceVersion.Method.DELETE:
        return  # no FHIR client wrote it (or it is deleted there): nothing to keep
    stamp = getattr(instance, "updated_at", None)
    if stamp is not None and version_id(stamp) == latest[0]:
        return  # the version being replaced is the one FHIR stored
    _keep(instance, resource_type, resource_id, organization_id, latest[0])


def _keep(
    instance: models.Model,
    resource_type: str,
    resource_id: str,
    organization_id: Any,
    stored: str,
) -> None:
    from ketaclinic.fhir.received import overlay
    from ketaclinic.fhir.registry import HANDLERS

    with scope(organization=organization_id):
        previous = type(instance)._base_manager.filter(pk=instance.pk).first()
        if previous is None:
            return
        vid = version_id(previous.updated_at)  # type: ignore[attr-defined]
        if (
            vid == stored
            or ResourceVersion._base_manager.filter(
                organization_id=organization_id,
                resource_type=resource_type,
                resource_id=resource_id,
                version_id=vid,
            ).exists()
        ):
            return
        data = overlay([HANDLERS[resource_type].to_fhir(previous)])[0]
        if data.get("id") != resource_id or (data.get("meta") or {}).get("versionId") != vid:
            return
        ResourceVersion._base_manager.create(
            organization_id=organization_id,
            resource_type=resource_type,
            resource_id=resource_id,
            resource_uuid=getattr(instance, "public_id", None),
            version_id=vid,
            method=ResourceVersion.Method.UPDATE,
            recorded_at=previous.updated_at,  # type: ignore[attr-defined]
            resource=data,
        )


def register() -> None:
    from ketaclinic.core.models import BEFORE_CHANGE

    TYPES.update(_types())
    if keep_previous_version not in BEFORE_CHANGE:
        BEFORE_CHANGE.append(keep_previous_version)
