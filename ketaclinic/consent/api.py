"""JSON API for consent (mounted at /api/v1/): templates and their published versions, signing in
clinic, revoking, portal invitations. Same services and rules as the staff screens; a FHIR Consent
names the version id these routes return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.consent import selectors, services
from ketaclinic.consent.models import ConsentSignature, ConsentTemplate, ConsentTemplateVersion
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.patients.selectors import patient_get_for_actor

router = Router(tags=["consent"])
R = ERROR_RESPONSES


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class AcknowledgementIO(Schema):
    key: str = Field(..., max_length=41)
    text: str = Field(..., max_length=2000)


class VersionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    template: uuid.UUID = Field(..., alias="template.public_id")
    kind: str = Field(..., alias="template.kind")
    route: str = Field(..., alias="template.route")
    setting: str = Field(..., alias="template.setting")
    version: int
    title: str
    body: str
    acknowledgements: list[AcknowledgementIO]
    content_hash: str
    published_at: datetime


class TemplateOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    kind: str
    route: str
    setting: str
    is_active: bool
    draft_title: str = Field(..., alias="title")
    draft_body: str = Field(..., alias="body")
    draft_acknowledgements: list[AcknowledgementIO] = Field(..., alias="acknowledgements")
    current_version: int | None
    draft_differs_from_current: bool


class TemplateIn(Schema):
    kind: Literal["treatment", "kap", "research"]
    route: str = Field("", max_length=32)
    setting: Literal["clinic", "home", "any"]
    title: str = Field(..., max_length=200)
    body: str = Field(..., max_length=100_000)
    acknowledgements: list[AcknowledgementIO] = Field(..., max_length=50)


class TemplatePatch(Schema):
    title: str | None = Field(None, max_length=200)
    body: str | None = Field(None, max_length=100_000)
    acknowledgements: list[AcknowledgementIO] | None = Field(None, max_length=50)


class SignatureOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    template_version: uuid.UUID = Field(..., alias="template_version.public_id")
    version: int = Field(..., alias="template_version.version")
    title: str = Field(..., alias="template_version.title")
    kind: str
    route: str
    setting: str
    channel: str
    meaning: str
    signed_at: datetime
    printed_name: str
    witness: str | None
    content_hash: str
    pdf_sha256: str
    revoked_at: datetime | None
    revocation_reason: str

    @staticmethod
    def resolve_witness(obj: ConsentSignature) -> str | None:
        return obj.witness.username if obj.witness else None


class SignIn(Schema):
    template_version: uuid.UUID
    printed_name: str = Field(..., min_length=1, max_length=200)
    acknowledged: list[str] = Field(..., max_length=50)
    drawn_signature: str = Field("", max_length=services.MAX_DRAWN_SIGNATURE)


class RevokeIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class InviteOut(Schema):
    account: uuid.UUID
    invitation_path: str
    new_account: bool


class VersionFilter(Schema):
    kind: Literal["treatment", "kap", "research"] | None = None
    route: str | None = Field(None, max_length=32)


def _template_out(template: ConsentTemplate, latest: ConsentTemplateVersion | None) -> Any:
    template.current_version = latest.version if latest else None  # type: ignore[attr-defined]
    differs = latest is None or services.content_hash(
        template.title, template.body, template.acknowledgements
    ) != (latest.content_hash if latest else "")
    template.draft_differs_from_current = differs  # type: ignore[attr-defined]
    return template


# --- templates and versions ---------------------------------------------------------------


@router.get("/consent/versions", response={200: list[VersionOut], **R})
def version_list(request: ActorRequest, filters: Query[VersionFilter]) -> Any:
    """The version of every active template that patients sign today (the latest published)."""
    _actor(request).require(Cap.CONSENT_VIEW)
    rows = [
        latest
        for template, latest in selectors.templates_with_versions()
        if template.is_active and latest is not None
    ]
    if filters.kind:
        rows = [v for v in rows if v.template.kind == filters.kind]
    if filters.route is not None:
        rows = [v for v in rows if v.template.route == filters.route]
    return rows


@router.get("/consent/versions/{version_id}", response={200: VersionOut, **R})
def version_read(request: ActorRequest, version_id: uuid.UUID) -> Any:
    _actor(request).require(Cap.CONSENT_VIEW)
    return selectors.version_get(version_id)


@router.get("/consent/templates", response={200: list[TemplateOut], **R})
def template_list(request: ActorRequest) -> Any:
    _actor(request).require(Cap.CONSENT_TEMPLATE_MANAGE)
    return [_template_out(t, latest) for t, latest in selectors.templates_with_versions()]


@router.post("/consent/templates", response={201: TemplateOut, **R})
def template_create(request: ActorRequest, payload: TemplateIn) -> Any:
    template = services.consent_template_create(actor=_actor(request), data=payload.dict())
    return Status(201, _template_out(template, None))


@router.post("/consent/templates/defaults", response={201: list[VersionOut], **R})
def template_defaults(request: ActorRequest) -> Any:
    """Create and publish the default templates the clinic does not have yet (as the UI's button)."""
    actor = _actor(request)
    actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    published = services.consent_templates_seed_defaults(
        organization=actor.organization, actor=actor
    )
    return Status(201, published)


@router.get("/consent/templates/{template_id}", response={200: TemplateOut, **R})
def template_read(request: ActorRequest, template_id: uuid.UUID) -> Any:
    template = selectors.template_get(_actor(request), template_id)
    return _template_out(template, selectors.version_latest(template))


@router.get("/consent/templates/{template_id}/versions", response={200: list[VersionOut], **R})
def template_versions(request: ActorRequest, template_id: uuid.UUID) -> Any:
    template = selectors.template_get(_actor(request), template_id)
    return list(template.versions.select_related("template").order_by("-version"))


@router.patch("/consent/templates/{template_id}", response={200: TemplateOut, **R})
def template_update(request: ActorRequest, template_id: uuid.UUID, payload: TemplatePatch) -> Any:
    """Edit the draft; patients keep signing the current version until the draft is published."""
    actor = _actor(request)
    template = selectors.template_get(actor, template_id)
    data = payload.dict(exclude_none=True)
    template = services.consent_template_update(actor=actor, template=template, data=data)
    return _template_out(template, selectors.version_latest(template))


@router.post("/consent/templates/{template_id}/publish", response={201: VersionOut, **R})
def template_publish(request: ActorRequest, template_id: uuid.UUID) -> Any:
    actor = _actor(request)
    template = selectors.template_get(actor, template_id)
    return Status(201, services.consent_template_publish(actor=actor, template=template))


# --- a patient's consents -----------------------------------------------------------------


@router.get("/patients/{patient_id}/consents", response={200: list[SignatureOut], **R})
def signature_list(request: ActorRequest, patient_id: uuid.UUID) -> Any:
    actor = _actor(request)
    patient = patient_get_for_actor(actor, patient_id, capability=Cap.CONSENT_VIEW)
    rows = selectors.signatures_for_patient(patient)
    for row in rows:
        row.patient = patient
    audit_record(actor=actor, action="consent.signatures.read", patient_id=patient.public_id)
    return rows


@router.post("/patients/{patient_id}/consents", response={201: SignatureOut, **R})
def signature_create(request: ActorRequest, patient_id: uuid.UUID, payload: SignIn) -> Any:
    """Signing in clinic: the patient signs, the calling staff member witnesses (as on the tablet)."""
    actor = _actor(request)
    patient = patient_get_for_actor(actor, patient_id, capability=Cap.CONSENT_RECORD)
    signature = services.consent_sign(
        actor=actor,
        patient=patient,
        template_version=selectors.version_get(payload.template_version),
        witness=actor.user,
        signature=services.SignatureInput(
            printed_name=payload.printed_name,
            acknowledged=payload.acknowledged,
            drawn_signature=payload.drawn_signature,
            client_address=actor.client_address,
            user_agent=request.headers.get("User-Agent", ""),
        ),
    )
    return Status(201, signature)


@router.get("/consents/{signature_id}", response={200: SignatureOut, **R})
def signature_read(request: ActorRequest, signature_id: uuid.UUID) -> Any:
    actor = _actor(request)
    actor.require(Cap.CONSENT_VIEW)
    signature = selectors.signature_get(signature_id)
    audit_record(
        actor=actor,
        action="consent.signature.read",
        patient_id=signature.patient.public_id,
        obj=signature,
    )
    return signature


@router.post("/consents/{signature_id}/revoke", response={200: SignatureOut, **R})
def signature_revoke(request: ActorRequest, signature_id: uuid.UUID, payload: RevokeIn) -> Any:
    """Withdraw a consent on the patient's word; the reason records what the patient said."""
    actor = _actor(request)
    actor.require(Cap.CONSENT_RECORD)
    signature = selectors.signature_get(signature_id)
    return services.consent_revoke(actor=actor, signature=signature, reason=payload.reason)


@router.post("/patients/{patient_id}/portal-invitations", response={201: InviteOut, **R})
def portal_invite(request: ActorRequest, patient_id: uuid.UUID) -> Any:
    """A one-time portal invitation (a new account, or a fresh link for one not yet activated)."""
    actor = _actor(request)
    patient = patient_get_for_actor(actor, patient_id, capability=Cap.CONSENT_RECORD)
    account = selectors.portal_account_for_patient(patient)
    new_account = account is None
    if account is None:
        account, token = services.portal_invite(actor=actor, patient=patient)
    else:
        token = services.portal_reinvite(actor=actor, account=account)
    return Status(
        201,
        {
            "account": account.public_id,
            "invitation_path": f"/portal/invite/{token}/",
            "new_account": new_account,
        },
    )
