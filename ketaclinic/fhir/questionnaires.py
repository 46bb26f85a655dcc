"""Questionnaire (one per instrument definition) and QuestionnaireResponse <-> measures.

Questionnaires are built from the definition files (measures/instruments/*.json): canonical URL
https://ketaclinic.org/fhir/Questionnaire/<id>, the LOINC panel as `code`, the LOINC form canonical
(e.g. http://loinc.org/q/44249-1) as `derivedFrom`. Answer options carry their LOINC answer codes
where the definition has them, otherwise a code of this server's answer CodeSystem (the option
value), and always the ordinalValue extension.

A posted QuestionnaireResponse names its questionnaire by our canonical, by the LOINC form
canonical, or by a form the definition lists as known (US Core, HL7 SDC). Its answers are read by
measures.fhir_answers (our link ids, LOINC link ids such as "/44250-9", LOINC answer codes such as
LA6568-5, ordinal values) and recorded through measures.services.response_record: the same scorer,
validation and safety alerts as the chart and the JSON API. An answer problem (out of range,
unknown item, missing required item) is a 422 OperationOutcome naming the item; nothing is written.

A total stated inside the response is checked, never trusted. On a mismatch the response is still
recorded (with the computed total: refusing it would drop a positive suicide item the sender's
arithmetic has nothing to do with), and the mismatch is reported as an OperationOutcome issue of
severity `warning`: returned when the client sends `Prefer: return=OperationOutcome`, in a Bundle
entry's `response.outcome`, and kept in an audit event `fhir.questionnaireresponse.total-mismatch`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import Q

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound, ValidationFailed
from ketaclinic.fhir.common import (
    as_datetime,
    emit,
    first_identifier_key,
    identifier_from_external,
    instant,
    meta,
    reference_id,
    resolve_patient,
)
from ketaclinic.fhir.outcome import FhirError, _issue
from ketaclinic.fhir.search import any_of, as_uuid, date_q, patient_ids, token
from ketaclinic.measures import selectors, services
from ketaclinic.measures.definitions import (
    LOINC_SYSTEM,
    AnswerOption,
    Instrument,
    Item,
    current_instruments,
    get_instrument,
)
from ketaclinic.measures.fhir_answers import (
    DATA_ABSENT_REASON,
    AnswerExtractionError,
    ExtractedAnswers,
    answers_from_questionnaire_response,
)
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.patients.models import ChartEntry

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ANSWER_SYSTEM_BASE = "https://ketaclinic.org/fhir/CodeSystem/"
TOTAL_MISMATCH_ACTION = "fhir.questionnaireresponse.total-mismatch"


def answer_system(instrument: Instrument) -> str:
    """This server's CodeSystem for options the definition gives no code (code = the value)."""
    return f"{ANSWER_SYSTEM_BASE}{instrument.id}-answers"


def answer_coding(instrument: Instrument, option: AnswerOption) -> dict[str, str]:
    code = next((c for c in option.codes if c.system == LOINC_SYSTEM), None) or (
        option.codes[0] if option.codes else None
    )
    if code is not None:
        return {"system": code.system, "code": code.code, "display": option.label("en")}
    return {
        "system": answer_system(instrument),
        "code": str(option.value),
        "display": option.label("en"),
    }


def _option(item: Item, value: int) -> AnswerOption:
    return next(option for option in item.options if option.value == value)


# --- Questionnaire --------------------------------------------------------------------------


def _computable_name(instrument: Instrument) -> str:
    name = re.sub(r"[^A-Za-z0-9]", "", instrument.short_title) or instrument.id
    return name[0].upper() + name[1:]


def _questionnaire_item(instrument: Instrument, item: Item) -> dict[str, Any]:
    data: dict[str, Any] = {
        "linkId": item.link_id,
        # Licensed wording is never shipped: the short label stands in until a clinic loads it.
        "text": item.texts.get("en") or item.label("en"),
        "type": "choice",
        "required": item.required,
        "answerOption": [
            {
                "extension": [{"url": ORDINAL, "valueDecimal": item.score(option.value)}],
                "valueCoding": answer_coding(instrument, option),
            }
            for option in item.options
        ],
    }
    if item.codes:
        data["code"] = [{"system": c.system, "code": c.code} for c in item.codes]
    if item.enable_when is not None:
        other = instrument.item(item.enable_when.link_id)
        data["enableWhen"] = [
            {
                "question": other.link_id,
                "operator": "=",
                "answerCoding": answer_coding(instrument, _option(other, item.enable_when.equals)),
            }
        ]
    return data


def questionnaire_to_fhir(instrument: Instrument) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.id,
        "url": instrument.canonical_url,
        "version": str(instrument.version),
        "name": _computable_name(instrument),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "ketaclinic",
        "description": (
            f"{instrument.short_title} ({instrument.respondent}-rated, recall period "
            f"{instrument.recall_period}). Scoring: {instrument.scoring.source}"
        ),
        "copyright": instrument.licence_note,
        "item": [_questionnaire_item(instrument, item) for item in instrument.items],
    }
    if instrument.loinc.panel:
        data["code"] = [{"system": LOINC_SYSTEM, "code": instrument.loinc.panel}]
    if instrument.loinc_form_canonical:
        data["derivedFrom"] = [instrument.loinc_form_canonical]
    return emit(data)


def questionnaire_get(resource_id: str) -> Instrument:
    try:
        return get_instrument(resource_id)
    except KeyError:
        raise NotFound("No such Questionnaire.") from None


def questionnaires_search(params: list[tuple[str, list[str]]]) -> list[Instrument]:
    """Every current instrument matching all parameters (each an OR of its values)."""
    found = []
    for instrument in current_instruments():
        if all(_questionnaire_matches(instrument, name, values) for name, values in params):
            found.append(instrument)
    return found


def _questionnaire_matches(instrument: Instrument, name: str, values: list[str]) -> bool:
    if name == "_id":
        return instrument.id in values
    if name == "url":
        return any(_canonical_matches(instrument.canonical_url, instrument, v) for v in values)
    if name == "code":
        for value in values:
            system, code = token(value)
            if system not in (None, "", LOINC_SYSTEM):
                continue
            if code and code == instrument.loinc.panel:
                return True
        return False
    if name == "version":
        return str(instrument.version) in values
    raise FhirError(400, f"Unsupported search parameter {name!r}.")


def _canonical_matches(url: str, instrument: Instrument, value: str) -> bool:
    base, _, version = value.partition("|")
    return base == url and (not version or version == str(instrument.version))


# --- which instrument a response answers ---------------------------------------------------


LOINC_FORM_BASE = "http://loinc.org/q/"


def instrument_for_questionnaire(questionnaire: str | None) -> Instrument:
    """The instrument a QuestionnaireResponse.questionnaire names (canonical, optionally |version)."""
    field = "QuestionnaireResponse.questionnaire"
    if not questionnaire:
        raise FhirError(
            422,
            "QuestionnaireResponse.questionnaire is required: name the form by its canonical URL.",
            expressions=[(field, "required")],
        )
    url, _, version = questionnaire.partition("|")
    for instrument in current_instruments():
        names = {instrument.canonical_url, *instrument.known_questionnaires}
        if instrument.loinc_form_canonical:
            names.add(instrument.loinc_form_canonical)
        if instrument.loinc.panel:
            # Every instrument with a LOINC panel answers to its LOINC form canonical (GAD-7:
            # http://loinc.org/q/69737-5), as PHQ-9 always has.
            names.add(f"{LOINC_FORM_BASE}{instrument.loinc.panel}")
        if url in names:
            if version and url == instrument.canonical_url:
                try:
                    return get_instrument(instrument.id, int(version))
                except (KeyError, ValueError):
                    raise FhirError(
                        422,
                        f"{instrument.short_title} has no version {version!r}.",
                        expressions=[(field, "unknown version")],
                    ) from None
            return instrument
    raise FhirError(
        422,
        f"Unknown questionnaire {questionnaire!r}; use one of this server's Questionnaire URLs "
        "(GET Questionnaire) or a LOINC form canonical such as http://loinc.org/q/44249-1.",
        expressions=[(field, "unknown questionnaire")],
    )


def _instrument_ids_for(values: list[str]) -> list[str]:
    ids = []
    for value in values:
        local = reference_id(value, "Questionnaire")
        if local and "://" not in value:
            ids.append(local)
            continue
        try:
            ids.append(instrument_for_questionnaire(value).id)
        except FhirError:
            continue
    return ids


# --- QuestionnaireResponse: create -----------------------------------------------------------


def _item_expression(link_id: str) -> str:
    return f"QuestionnaireResponse.repeat(item).where(linkId='{link_id}')"


def _aliases(item: Item) -> set[str]:
    names = {item.link_id, *item.fhir_link_ids}
    loinc = item.loinc_code()
    if loinc:
        names |= {loinc, "/" + loinc}
    return names


def _walk(items: Any) -> Any:
    for item in items or ():
        yield item
        yield from _walk(item.get("item"))
        for answer in item.get("answer") or ():
            yield from _walk(answer.get("item"))


def _sender_link_ids(instrument: Instrument, data: dict[str, Any]) -> dict[str, str]:
    """Our link id -> the linkId the sender used for it."""
    sent = {str(i.get("linkId", "")) for i in _walk(data.get("item"))}
    found = {}
    for item in instrument.items:
        match = next((name for name in sorted(_aliases(item)) if name in sent), None)
        if match:
            found[item.link_id] = match
    return found


def _local_codes_as_values(instrument: Instrument, data: dict[str, Any]) -> None:
    """Our own answer CodeSystem's codes are the option values: read them as ordinal answers."""
    system = answer_system(instrument)
    for item in _walk(data.get("item")):
        for answer in item.get("answer") or ():
            coding = answer.get("valueCoding")
            if isinstance(coding, dict) and coding.get("system") == system:
                del answer["valueCoding"]
                answer["valueInteger"] = coding.get("code")


def _answer_error(exc: AnswerExtractionError) -> FhirError:
    if exc.field in ("item", "resourceType"):
        expression = f"QuestionnaireResponse.{exc.field}"
    else:
        expression = _item_expression(exc.field)
    return FhirError(
        422,
        f"The answers do not fit the questionnaire: {exc.message}.",
        expressions=[(expression, f"{exc.field}: {exc.message}")],
    )


def _service_error(
    exc: ValidationFailed, instrument: Instrument, sent: dict[str, str]
) -> FhirError:
    expressions = []
    for error in exc.errors:
        if error.field.startswith("answers."):
            link_id = error.field.removeprefix("answers.")
            item = instrument.item(link_id) if instrument.has_item(link_id) else None
            name = sent.get(link_id) or (
                f"/{item.loinc_code()}" if item and item.loinc_code() else link_id
            )
            label = f"item {link_id}" + (f" ({item.label('en')})" if item else "")
            expressions.append((_item_expression(name), f"{label}: {error.message}"))
        elif error.field == "completed_at":
            expressions.append(("QuestionnaireResponse.authored", error.message))
        else:
            expressions.append((f"QuestionnaireResponse.{error.field}", error.message))
    return FhirError(422, exc.detail, expressions=expressions)


def _identifier_key(resource: Any) -> str:
    """QuestionnaireResponse.identifier is a single Identifier (0..1), not a list."""
    identifier = resource.identifier
    return first_identifier_key(SimpleNamespace(identifier=[identifier] if identifier else []))


def _language(resource: Any) -> str:
    code = (resource.language or "en").split("-", 1)[0].lower()
    return code if code in services.LANGUAGES else "en"


def _answered_by_patient(resource: Any) -> bool:
    for ref in (resource.author, resource.source):
        if ref is not None and ref.reference and reference_id(ref.reference, "Patient"):
            return True
    return False


def stated_total_issue(extracted: ExtractedAnswers, response: QuestionnaireResponse) -> dict | None:
    """A warning issue when the total the sender wrote disagrees with ours; None otherwise."""
    stated, computed = extracted.stated_total, response.score
    if stated is None or (computed is not None and Decimal(stated) == Decimal(computed)):
        return None
    link_id = extracted.stated_total_link_id or "total"
    message = (
        f"The stated total {stated} ({link_id}) is inconsistent with the answers: "
        f"{response.rule} computes {computed}. The computed total is the one recorded."
    )
    return _issue("business-rule", message, _item_expression(link_id), severity="warning")


def response_create(actor: Actor, resource: Any) -> QuestionnaireResponse:
    """Score and record a QuestionnaireResponse; the record carries `fhir_issues` (warnings)."""
    actor.require(Cap.MEASURE_RECORD)
    instrument = instrument_for_questionnaire(resource.questionnaire)
    if resource.status not in ("completed", "amended"):
        raise FhirError(
            422,
            f"Only a completed response is scored (status {resource.status!r}).",
            expressions=[("QuestionnaireResponse.status", "use completed or amended")],
        )
    patient = resolve_patient(actor, resource.subject, "QuestionnaireResponse.subject")
    data = resource.model_dump(mode="json", exclude_none=True)
    _local_codes_as_values(instrument, data)
    try:
        extracted = answers_from_questionnaire_response(instrument, data)
    except AnswerExtractionError as exc:
        raise _answer_error(exc) from None
    if extracted.unrecognized_link_ids:
        raise FhirError(
            422,
            f"The response answers items that {instrument.short_title} does not have.",
            expressions=[
                (_item_expression(link_id), f"unknown item {link_id!r}")
                for link_id in extracted.unrecognized_link_ids
            ],
        )
    sent = _sender_link_ids(instrument, data)
    try:
        response = services.response_record(
            actor=actor,
            patient=patient,
            instrument_id=instrument.id,
            answers=dict(extracted.answers),
            language=_language(resource),
            completed_at=as_datetime(resource.authored, "QuestionnaireResponse.authored"),
            external_id=_identifier_key(resource),
            source=ChartEntry.Source.PATIENT if _answered_by_patient(resource) else "",
        )
    except ValidationFailed as exc:
        raise _service_error(exc, instrument, sent) from None
    issues = [_issue("informational", w, severity="warning") for w in extracted.warnings]
    mismatch = stated_total_issue(extracted, response)
    if mismatch is not None:
        issues.insert(0, mismatch)
        audit_record(
            actor=actor,
            action=TOTAL_MISMATCH_ACTION,
            patient_id=patient.public_id,
            obj=response,
            detail={
                "stated": str(extracted.stated_total),
                "computed": str(response.score),
                "link_id": extracted.stated_total_link_id,
                "questionnaire": (resource.questionnaire or "")[:200],
            },
        )
    response.fhir_issues = issues  # type: ignore[attr-defined]
    return response


# --- QuestionnaireResponse: read, search, to FHIR -----------------------------------------


def response_read(actor: Actor, resource_id: str) -> QuestionnaireResponse:
    return selectors.response_get_for_actor(actor, resource_id)


def responses_search(actor: Actor, params: list[tuple[str, list[str]]], sort: str) -> Any:
    actor.require(Cap.MEASURE_VIEW)
    queryset = QuestionnaireResponse.objects.select_related("patient", "recorded_by")
    for name, values in params:
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "questionnaire":
            queryset = queryset.filter(instrument_id__in=_instrument_ids_for(values))
        elif name == "authored":
            queryset = queryset.filter(any_of(values, lambda v: date_q("completed_at", v)))
        elif name == "status":  # a correction is emitted as amended, every other as completed
            wanted = {token(v)[1] for v in values}
            status_q = Q(pk__in=[])
            if "completed" in wanted:
                status_q |= Q(corrects__isnull=True)
            if "amended" in wanted:
                status_q |= Q(corrects__isnull=False)
            queryset = queryset.filter(status_q)
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    prefix = "" if sort == "authored" else "-"
    return queryset.order_by(f"{prefix}completed_at", f"{prefix}pk")


def response_to_fhir(response: QuestionnaireResponse) -> dict[str, Any]:
    return emit(response_data(response))


def response_data(response: QuestionnaireResponse) -> dict[str, Any]:
    """The resource before `emit` (bulk export emits it with the rest of its stream)."""
    instrument = get_instrument(response.instrument_id, response.instrument_version)
    items = []
    for item in instrument.items:
        if item.link_id not in response.answers:
            continue
        value = response.answers[item.link_id]
        entry: dict[str, Any] = {"linkId": item.link_id, "text": item.label("en")}
        if value is None:
            coding = {"system": DATA_ABSENT_REASON, "code": "asked-declined"}
        else:
            coding = answer_coding(instrument, _option(item, int(value)))
        entry["answer"] = [{"valueCoding": coding}]
        items.append(entry)
    if instrument.loinc.total and response.score is not None:
        items.append(
            {
                "linkId": instrument.loinc.total,
                "text": f"{instrument.short_title} total score (computed by {response.rule})",
                "answer": [{"valueDecimal": float(response.score)}],
            }
        )
    patient_ref = {"reference": f"Patient/{response.patient.public_id}"}
    data: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.public_id),
        "meta": meta(response),
        "questionnaire": f"{instrument.canonical_url}|{instrument.version}",
        "status": "amended" if response.corrects_id else "completed",
        "subject": patient_ref,
        "authored": instant(response.completed_at),
        "language": response.language,
        "item": items,
    }
    if response.source == ChartEntry.Source.PATIENT:
        data["author"] = patient_ref
    elif response.recorded_by:
        data["author"] = {"display": response.recorded_by.display_name}
    identifier = identifier_from_external(response.external_id)
    if identifier:
        data["identifier"] = identifier[0]
    return data
