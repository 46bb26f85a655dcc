"""Consent <-> ConsentSignature (a patient's signed consent to one published template version).

Created only through `consent.services.consent_sign`, so a FHIR client passes the same checks as the
clinic tablet: the current version of an active template, every acknowledgement ticked, the
patient's full name typed, a staff witness (the token's user, as on the tablet, who must be allowed
to witness). The server sets the signing time; a stated `dateTime` is ignored.

Mapping (R4B Consent):
- status: `active`, or `inactive` once revoked (provision.period.end = the revocation time);
- scope: consentscope `research` for the research-use template, `treatment` for the others;
- category: LOINC 59284-0 "Patient Consent" (FHIR R4 consent-category value set), plus the
  template's kind (treatment, kap, research) in our own code system;
- patient; performer = the patient, with the name they typed as `display`; dateTime = signed;
- policy[0].uri names the template version signed, with its version number and SHA-256 content
  hash as extensions; sourceAttachment describes the stored signed PDF (its SHA-256 likewise);
- provision: permit, the route (screening route) and setting as codes, one nested provision per
  acknowledgement item ticked;
- verification (in-clinic signing only): verified with the patient, the staff witness named in an
  extension.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.consent import selectors as consent_selectors
from ketaclinic.consent import services
from ketaclinic.consent.models import ConsentSignature
from ketaclinic.core.errors import Conflict, NotFound, ValidationFailed
from ketaclinic.fhir.common import emit, instant, meta, reference_id
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, as_uuid, date_q, order, patient_ids, token
from ketaclinic.patients import selectors as patient_selectors
from ketaclinic.patients.models import Patient

SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
# FHIR R4 ValueSet consent-category includes LOINC 59284-0 "Patient Consent".
PATIENT_CONSENT = {"system": LOINC, "code": "59284-0", "display": "Patient Consent"}
KIND_SYSTEM = "urn:ketaclinic:consent-kind"
ROUTE_SYSTEM = "urn:ketaclinic:screening-route"
SETTING_SYSTEM = "urn:ketaclinic:consent-setting"
ACK_SYSTEM = "urn:ketaclinic:consent-acknowledgement"
USER_SYSTEM = "urn:ketaclinic:user"
VERSION_URN = "urn:ketaclinic:consent-template-version:"
EXT = "https://ketaclinic.org/fhir/StructureDefinition/"
EXT_VERSION = EXT + "consent-template-version-number"
EXT_CONTENT_HASH = EXT + "consent-content-sha256"
EXT_PDF_HASH = EXT + "consent-pdf-sha256"
EXT_WITNESS = EXT + "consent-witness"
EXT_MEANING = EXT + "signature-meaning"

# Where each field a consent service names lives in the Consent resource.
FIELD_PATHS = {
    "printed_name": "Consent.performer[0].display",
    "acknowledged": "Consent.provision.provision",
    "witness": "Consent.verification",
    "drawn_signature": "Consent",
}


def _concept(system: str, code: str, display: str = "") -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def signature_to_fhir(row: ConsentSignature) -> dict[str, Any]:
    version = row.template_version
    template = version.template
    patient_ref = {"reference": f"Patient/{row.patient.public_id}"}
    scope = "research" if row.kind == "research" else "treatment"
    codes = []
    if row.route:
        codes.append(_concept(ROUTE_SYSTEM, row.route))
    codes.append(_concept(SETTING_SYSTEM, row.setting))
    period = {"start": instant(row.signed_at)}
    if row.revoked_at:
        period["end"] = instant(row.revoked_at)
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "id": str(row.public_id),
        "meta": meta(row),
        "status": "inactive" if row.revoked_at else "active",
        "scope": {
            "coding": [{"system": SCOPE_SYSTEM, "code": scope}],
            "text": template.get_kind_display(),
        },
        "category": [
            {"coding": [PATIENT_CONSENT]},
            _concept(KIND_SYSTEM, row.kind, template.get_kind_display()),
        ],
        "patient": patient_ref,
        "dateTime": instant(row.signed_at),
        "performer": [{**patient_ref, "display": row.printed_name}],
        "organization": [{"display": row.organization.name}],
        "sourceAttachment": {
            "extension": [{"url": EXT_PDF_HASH, "valueString": row.pdf_sha256}],
            "contentType": "application/pdf",
            "title": f"Signed copy: {version.title} (version {version.version})",
            "creation": instant(row.signed_at),
        },
        "policy": [
            {
                "extension": [
                    {"url": EXT_VERSION, "valueInteger": version.version},
                    {"url": EXT_CONTENT_HASH, "valueString": row.content_hash},
                ],
                "authority": "urn:ketaclinic",
                "uri": f"{VERSION_URN}{version.public_id}",
            }
        ],
        "provision": {
            "extension": [{"url": EXT_MEANING, "valueString": row.meaning}],
            "type": "permit",
            "period": period,
            "code": codes,
            "provision": [
                {
                    "type": "permit",
                    "code": [_concept(ACK_SYSTEM, item["key"], item["text"])],
                }
                for item in version.acknowledgements
                if item["key"] in row.acknowledged
            ],
        },
    }
    if row.witness is not None:
        data["verification"] = [
            {
                "extension": [
                    {
                        "url": EXT_WITNESS,
                        "valueReference": {
                            "identifier": {"system": USER_SYSTEM, "value": row.witness.username},
                            "display": row.witness.display_name,
                        },
                    }
                ],
                "verified": True,
                "verifiedWith": patient_ref,
                "verificationDate": instant(row.signed_at),
            }
        ]
    return data


def to_fhir(row: ConsentSignature) -> dict[str, Any]:
    return emit(signature_to_fhir(row))


# --- read and search ------------------------------------------------------------------------


def _queryset() -> QuerySet[ConsentSignature]:
    return ConsentSignature.objects.select_related(
        "patient", "organization", "template_version__template", "witness"
    ).defer("pdf", "drawn_signature")


def read(actor: Actor, resource_id: str) -> ConsentSignature:
    actor.require(Cap.CONSENT_VIEW)
    key = as_uuid(resource_id)
    row = _queryset().filter(public_id=key).first() if key else None
    if row is None:
        raise NotFound("No such Consent.")
    return row


def _status_q(value: str) -> Q:
    _, code = token(value)
    if code == "active":
        return Q(revoked_at__isnull=True)
    if code == "inactive":
        return Q(revoked_at__isnull=False)
    return Q(pk__in=[])  # draft, proposed, rejected, entered-in-error: never stored


def search(actor: Actor, params: list[tuple[str, list[str]]], sort: str) -> QuerySet:
    actor.require(Cap.CONSENT_VIEW)
    queryset = _queryset()
    for name, values in params:
        if name == "patient":
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "status":
            queryset = queryset.filter(any_of(values, _status_q))
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("signed_at", v)))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    return order(queryset, sort, {"date": "signed_at"}, "-date")


# --- create ---------------------------------------------------------------------------------


def _invalid(path: str, message: str, status: int = 422) -> FhirError:
    return FhirError(status, f"{path}: {message}", expressions=[(path, message)])


def _patient(actor: Actor, resource: Any) -> Patient:
    ref = resource.patient
    patient_id = reference_id(ref.reference if ref else None, "Patient")
    if patient_id is None:
        raise _invalid("Consent.patient", "a reference to a Patient of this server is required")
    return patient_selectors.patient_get_for_actor(actor, patient_id, capability=Cap.CONSENT_RECORD)


def _version_id(resource: Any) -> uuid.UUID:
    uris = [p.uri for p in resource.policy or [] if p.uri]
    keys = [as_uuid(u[len(VERSION_URN) :]) for u in uris if u.startswith(VERSION_URN)]
    if len(keys) != 1 or keys[0] is None:
        raise _invalid(
            "Consent.policy",
            f"exactly one policy.uri {VERSION_URN}<id> naming the consent form version signed",
        )
    return keys[0]


def _printed_name(resource: Any, patient: Patient) -> str:
    for performer in resource.performer or []:
        if reference_id(performer.reference, "Patient") == str(patient.public_id):
            return performer.display or ""
    raise _invalid(
        "Consent.performer",
        "the patient must be the performer, with the full name they typed as display",
    )


def _acknowledged(resource: Any) -> list[str]:
    keys = []
    provision = resource.provision
    for inner in (provision.provision if provision else None) or []:
        if inner.type not in (None, "permit"):
            continue
        for concept in inner.code or []:
            keys += [c.code for c in concept.coding or [] if c.system == ACK_SYSTEM and c.code]
    return keys


def _check_scope(resource: Any, kind: str) -> None:
    wanted = "research" if kind == "research" else "treatment"
    codes = {c.code for c in (resource.scope.coding or []) if c.system == SCOPE_SYSTEM}
    if codes and wanted not in codes:
        raise _invalid("Consent.scope", f"this consent form is a {wanted} consent")


def create(actor: Actor, resource: Any) -> ConsentSignature:
    """Record a consent signed in clinic, through consent_sign (the token's user witnesses)."""
    actor.require(Cap.CONSENT_RECORD)
    if resource.status != "active":
        raise _invalid("Consent.status", "a new consent is recorded as active")
    patient = _patient(actor, resource)
    try:
        version = consent_selectors.version_get(_version_id(resource))
    except NotFound:
        raise _invalid("Consent.policy", "no such consent form version") from None
    _check_scope(resource, version.template.kind)
    try:
        signature = services.consent_sign(
            actor=actor,
            patient=patient,
            template_version=version,
            witness=actor.user,
            signature=services.SignatureInput(
                printed_name=_printed_name(resource, patient),
                acknowledged=_acknowledged(resource),
                client_address=actor.client_address or "",
                user_agent="FHIR API",
            ),
        )
    except ValidationFailed as exc:
        expressions = [(FIELD_PATHS.get(e.field, "Consent"), e.message) for e in exc.errors]
        raise FhirError(422, exc.detail, expressions=expressions) from None
    except Conflict as exc:  # the form was replaced by a newer version
        raise _invalid("Consent.policy", exc.detail) from None
    return read(actor, str(signature.public_id))
