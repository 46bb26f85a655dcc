"""Pure: read a FHIR R4 QuestionnaireResponse (as a parsed JSON dict) into item answers for one
instrument definition, ready for `score_response`.

Three shapes are understood, because real senders use all of them:
- our own Questionnaire (`linkId` = the definition's link id, e.g. "9");
- LOINC-coded forms such as the NLM/LHC-Forms and US Core PHQ-9 (`linkId` "/44260-8" or
  "44260-8", answers as LOINC answer codes like LA6568-5, with or without a system);
- the HL7 SDC example form (`linkId` "H1/T1/Q9", answers as local SDC codes, totals in a nested
  group), via the aliases each definition lists.

An answer is resolved from its code against the definition's own options; an ordinal weight the
sender attached is used only when the code is not recognised, and a disagreement is reported,
never silently trusted. A total stated inside the response is returned for comparison only: the
score is always recomputed from the answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from ketaclinic.measures.definitions import AnswerOption, Instrument, Item
from ketaclinic.measures.scoring import ScoreResult, ScoringError

DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# Extensions a sender may use to carry an answer's numeric weight.
WEIGHT_EXTENSIONS = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/ordinalValue",
        "http://hl7.org/fhir/StructureDefinition/itemWeight",
        "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value",
    }
)
USABLE_STATUSES = frozenset({"completed", "amended"})


class AnswerExtractionError(ScoringError):
    """The response cannot be read as answers to this instrument; `field` names the linkId."""


@dataclass(frozen=True, slots=True)
class ExtractedAnswers:
    rule: str
    answers: Mapping[str, int | None]
    stated_total: Decimal | None
    stated_total_link_id: str | None
    declined: tuple[str, ...]
    unrecognized_link_ids: tuple[str, ...]
    warnings: tuple[str, ...]
    questionnaire: str | None
    status: str | None


@dataclass(frozen=True, slots=True)
class StatedTotalCheck:
    status: Literal["absent", "consistent", "inconsistent"]
    stated: Decimal | None
    computed: Decimal | None
    message: str


def answers_from_questionnaire_response(
    instrument: Instrument, qr: Mapping[str, Any]
) -> ExtractedAnswers:
    """Map a QuestionnaireResponse's answers onto `instrument`'s items.

    Raises AnswerExtractionError for a response it cannot use safely: not a
    QuestionnaireResponse, no item of this instrument, several answers to one item, two
    conflicting answers to the same item, or an answer that matches none of the item's options.
    """
    if qr.get("resourceType") != "QuestionnaireResponse":
        raise AnswerExtractionError("resourceType", "expected a QuestionnaireResponse")
    item_by_alias = _item_aliases(instrument)
    total_aliases = _total_aliases(instrument)

    answers: dict[str, int | None] = {}
    declined: list[str] = []
    unrecognized: list[str] = []
    warnings: list[str] = []
    stated_total: Decimal | None = None
    stated_total_link_id: str | None = None

    for response_item in _walk(qr.get("item", ())):
        link_id = str(response_item.get("linkId", ""))
        entries = response_item.get("answer") or []
        if link_id in total_aliases:
            if entries:
                total = _stated_total(link_id, entries)
                if stated_total is not None and total != stated_total:
                    warnings.append(
                        f"{link_id}: a second stated total {total} differs from "
                        f"{stated_total}; the first is kept"
                    )
                elif stated_total is None:
                    stated_total, stated_total_link_id = total, link_id
            continue
        item = item_by_alias.get(link_id)
        if item is None:
            if entries:
                unrecognized.append(link_id)
            continue
        if not entries:
            continue
        if len(entries) > 1:
            raise AnswerExtractionError(
                link_id, f"item {item.link_id} takes one answer, the response gives {len(entries)}"
            )
        value, note = _answer_value(item, link_id, entries[0])
        if note:
            warnings.append(note)
        if value is None:
            declined.append(item.link_id)
        if item.link_id in answers and answers[item.link_id] != value:
            raise AnswerExtractionError(
                link_id,
                f"item {item.link_id} is answered twice with "
                f"different values ({answers[item.link_id]}, {value})",
            )
        answers[item.link_id] = value

    if not answers:
        raise AnswerExtractionError(
            "item", f"the response holds no answer to any item of {instrument.rule_id}"
        )
    questionnaire = qr.get("questionnaire")
    warnings.extend(_form_warnings(instrument, questionnaire, qr.get("status")))
    return ExtractedAnswers(
        rule=instrument.rule_id,
        answers=MappingProxyType(answers),
        stated_total=stated_total,
        stated_total_link_id=stated_total_link_id,
        declined=tuple(declined),
        unrecognized_link_ids=tuple(unrecognized),
        warnings=tuple(warnings),
        questionnaire=questionnaire,
        status=qr.get("status"),
    )


def check_stated_total(extracted: ExtractedAnswers, result: ScoreResult) -> StatedTotalCheck:
    """Compare the total a sender wrote into the response with the total we computed."""
    stated, computed = extracted.stated_total, result.total
    if stated is None:
        return StatedTotalCheck("absent", None, computed, "the response states no total")
    if computed is not None and stated == computed:
        return StatedTotalCheck(
            "consistent", stated, computed, f"stated total {stated} matches the answers"
        )
    return StatedTotalCheck(
        "inconsistent",
        stated,
        computed,
        f"stated total {stated} ({extracted.stated_total_link_id}) does not match {computed} "
        f"computed from the answers by {result.rule}; the computed total is the one recorded",
    )


# --- helpers ---------------------------------------------------------------------------------


def _walk(items: Any) -> Iterator[Mapping[str, Any]]:
    """Every item, depth first, including items nested under groups and under answers."""
    for item in items or ():
        yield item
        yield from _walk(item.get("item"))
        for answer in item.get("answer") or ():
            yield from _walk(answer.get("item"))


def _item_aliases(instrument: Instrument) -> dict[str, Item]:
    aliases: dict[str, Item] = {}
    for item in instrument.items:
        names = [item.link_id, *item.fhir_link_ids]
        loinc = item.loinc_code()
        if loinc:
            names += [loinc, "/" + loinc]
        for name in names:
            aliases[name] = item
    return aliases


def _total_aliases(instrument: Instrument) -> frozenset[str]:
    names = set(instrument.total_fhir_link_ids)
    if instrument.loinc.total:
        names |= {instrument.loinc.total, "/" + instrument.loinc.total}
    return frozenset(names)


def _answer_value(
    item: Item, link_id: str, entry: Mapping[str, Any]
) -> tuple[int | None, str | None]:
    """The option value of one answer entry, and a warning if the sender's data disagreed."""
    if "valueCoding" in entry:
        return _coding_value(item, link_id, entry)
    for key in ("valueInteger", "valueDecimal"):
        if key in entry:
            return _ordinal_value(item, link_id, entry[key]), None
    if "valueBoolean" in entry:
        if item.values != frozenset({0, 1}):
            raise AnswerExtractionError(link_id, f"item {item.link_id} is not a yes/no item")
        return (1 if entry["valueBoolean"] else 0), None
    kinds = ", ".join(sorted(key for key in entry if key.startswith("value"))) or "none"
    raise AnswerExtractionError(
        link_id, f"unsupported answer type ({kinds}) for item {item.link_id}"
    )


def _coding_value(
    item: Item, link_id: str, entry: Mapping[str, Any]
) -> tuple[int | None, str | None]:
    coding = entry["valueCoding"]
    system, code = coding.get("system"), coding.get("code")
    if system == DATA_ABSENT_REASON:
        return None, f"{link_id}: item {item.link_id} not answered ({code})"
    weight = _sender_weight(coding)
    if weight is None:
        weight = _sender_weight(entry)
    option = _option_for_code(item, link_id, system, code)
    if option is not None:
        if weight is not None and weight != option.value:
            return option.value, (
                f"{link_id}: the sender's weight {weight} for {code} disagrees with "
                f"{item.link_id}'s definition ({option.value}); scored from the definition"
            )
        return option.value, None
    if weight is not None:
        value = _ordinal_value(item, link_id, weight)
        return (
            value,
            f"{link_id}: unknown code {system or ''}#{code}; scored from its weight {value}",
        )
    raise AnswerExtractionError(
        link_id, f"answer {system or ''}#{code} is not an option of item {item.link_id}"
    )


def _option_for_code(
    item: Item, link_id: str, system: str | None, code: str | None
) -> AnswerOption | None:
    if not code:
        return None
    matches = [
        option
        for option in item.options
        if any(c.code == code and (system is None or c.system == system) for c in option.codes)
    ]
    if len(matches) > 1:
        raise AnswerExtractionError(link_id, f"code {code} without a system is ambiguous")
    return matches[0] if matches else None


def _sender_weight(element: Mapping[str, Any]) -> Decimal | None:
    for extension in element.get("extension") or ():
        if extension.get("url") in WEIGHT_EXTENSIONS:
            for key in ("valueDecimal", "valueInteger"):
                if key in extension:
                    return Decimal(str(extension[key]))
    return None


def _ordinal_value(item: Item, link_id: str, raw: Any) -> int:
    try:
        number = Decimal(str(raw))
    except InvalidOperation as exc:
        raise AnswerExtractionError(link_id, f"answer {raw!r} is not a number") from exc
    if (
        isinstance(raw, bool)
        or number != number.to_integral_value()
        or int(number) not in item.values
    ):
        allowed = ", ".join(str(v) for v in sorted(item.values))
        raise AnswerExtractionError(
            link_id, f"answer {raw} is not an option of item {item.link_id} (allowed: {allowed})"
        )
    return int(number)


def _stated_total(link_id: str, entries: list[Mapping[str, Any]]) -> Decimal:
    entry = entries[0]
    raw: Any
    if "valueQuantity" in entry:
        raw = entry["valueQuantity"].get("value")
    else:
        raw = next(
            (entry[key] for key in ("valueDecimal", "valueInteger", "valueString") if key in entry),
            None,
        )
    try:
        return Decimal(str(raw))
    except InvalidOperation as exc:
        raise AnswerExtractionError(link_id, f"stated total {raw!r} is not a number") from exc


def _form_warnings(instrument: Instrument, questionnaire: Any, status: Any) -> list[str]:
    warnings = []
    if status not in USABLE_STATUSES:
        warnings.append(f"response status is {status!r}, not completed or amended")
    if isinstance(questionnaire, str):
        url = questionnaire.split("|", 1)[0]
        known = {instrument.canonical_url, *instrument.known_questionnaires}
        if instrument.loinc_form_canonical:
            known.add(instrument.loinc_form_canonical)
        if url not in known:
            warnings.append(
                f"questionnaire {url} is not a known form of {instrument.rule_id}; "
                "answers were matched by link id and LOINC code"
            )
    return warnings
