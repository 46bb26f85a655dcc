"""Questionnaire definitions as data: one versioned JSON file per instrument, loaded into frozen
dataclasses.

The JSON files under `instruments/` are the record; this module only reads and checks them. A
definition that contradicts itself (a severity band with a gap, a total range that the items cannot
reach, a rule that names an unknown item) fails loudly at load time rather than mis-scoring a
patient later. Pure: standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, NoReturn

DEFINITION_FORMAT = 1
LOINC_SYSTEM = "http://loinc.org"
CANONICAL_BASE = "https://ketaclinic.org/fhir/Questionnaire/"

# Scoring rules that scoring.py implements. Kept here so a definition naming an unknown rule is
# refused at load time without this module importing the scorer.
SCORING_RULES = frozenset({"sum", "mean", "domain_max_sum", "cssrs_screener", "mdq"})
SCREEN_RULES = frozenset({"total_at_least", "total_at_least_by_sex", "mdq_three_part"})
EXTRA_RULES = frozenset({"pcl5_dsm5_provisional"})

Respondent = Literal["self", "clinician"]
MissingRule = Literal["refuse", "prorate"]


class DefinitionError(ValueError):
    """An instrument definition file is malformed or inconsistent."""

    def __init__(self, instrument_id: str, message: str) -> None:
        super().__init__(f"{instrument_id}: {message}")
        self.instrument_id = instrument_id
        self.message = message


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy, all the way down: loaded definitions are shared by every caller."""
    return MappingProxyType({key: _frozen_value(value) for key, value in mapping.items()})


def _frozen_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _frozen(value)
    if isinstance(value, list | tuple):
        return tuple(_frozen_value(element) for element in value)
    return value


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str


@dataclass(frozen=True, slots=True)
class AnswerOption:
    value: int
    labels: Mapping[str, str]
    codes: tuple[Coding, ...] = ()

    def label(self, language: str = "en") -> str:
        return self.labels.get(language) or self.labels["en"]


@dataclass(frozen=True, slots=True)
class EnableWhen:
    """The item is asked only when another item's answer equals `equals` (FHIR enableWhen)."""

    link_id: str
    equals: int


@dataclass(frozen=True, slots=True)
class Item:
    link_id: str
    labels: Mapping[str, str]
    texts: Mapping[str, str]
    licensed_text_required: bool
    options: tuple[AnswerOption, ...]
    codes: tuple[Coding, ...]
    fhir_link_ids: tuple[str, ...]
    required: bool
    scored: bool
    reverse_scored: bool
    enable_when: EnableWhen | None

    @property
    def min_value(self) -> int:
        return min(option.value for option in self.options)

    @property
    def max_value(self) -> int:
        return max(option.value for option in self.options)

    @property
    def values(self) -> frozenset[int]:
        return frozenset(option.value for option in self.options)

    def label(self, language: str = "en") -> str:
        return self.labels.get(language) or self.labels["en"]

    def score(self, value: int) -> int:
        """The item's contribution to the total: reverse-scored items count from the other end."""
        if self.reverse_scored:
            return self.min_value + self.max_value - value
        return value

    def loinc_code(self) -> str | None:
        return next((c.code for c in self.codes if c.system == LOINC_SYSTEM), None)


@dataclass(frozen=True, slots=True)
class SeverityBand:
    low: Decimal
    high: Decimal
    code: str
    label: str

    def contains(self, total: Decimal) -> bool:
        return self.low <= total <= self.high


@dataclass(frozen=True, slots=True)
class CriticalItemRule:
    """An answer at or above `threshold` on `link_id` needs a clinician now (e.g. PHQ-9 item 9).

    When `policy_key` is set the clinic may configure the threshold; `threshold` is the default.
    """

    link_id: str
    threshold: int
    policy_key: str | None
    finding: str
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class Subscale:
    id: str
    label: str
    link_ids: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Domain:
    """A QIDS-style domain: the domain scores the highest of its items."""

    id: str
    label: str
    link_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """A threshold a clinic may configure, with the default this definition ships."""

    key: str
    default: Decimal
    applies_to: str  # "total" or "item:<link_id>"
    confirmed: bool  # False where clinical-reference marks the number [U]
    description: str
    source: str


@dataclass(frozen=True, slots=True)
class ScreenRule:
    rule: str
    parameters: Mapping[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class ExtraRule:
    rule: str
    parameters: Mapping[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class ScoringRule:
    rule: str
    parameters: Mapping[str, Any]
    total_range: tuple[Decimal, Decimal] | None
    source: str


@dataclass(frozen=True, slots=True)
class MissingAnswerPolicy:
    rule: MissingRule
    max_missing: int
    source: str


@dataclass(frozen=True, slots=True)
class LoincCodes:
    panel: str | None
    total: str | None
    status: str
    source: str


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    available: bool
    note: str


@dataclass(frozen=True, slots=True)
class Instrument:
    id: str
    version: int
    title: str
    short_title: str
    respondent: Respondent
    recall_period: str
    stem: Mapping[str, str]
    items: tuple[Item, ...]
    scoring: ScoringRule
    subscales: tuple[Subscale, ...]
    domains: tuple[Domain, ...]
    severity_bands: tuple[SeverityBand, ...]
    severity_source: str
    critical_items: tuple[CriticalItemRule, ...]
    policy_values: tuple[PolicyValue, ...]
    screen: ScreenRule | None
    extra_rules: tuple[ExtraRule, ...]
    missing_answers: MissingAnswerPolicy
    loinc: LoincCodes
    canonical_url: str
    loinc_form_canonical: str | None
    known_questionnaires: tuple[str, ...]
    total_fhir_link_ids: tuple[str, ...]
    licence_note: str
    languages: tuple[Language, ...]
    sources: tuple[str, ...]

    @property
    def rule_id(self) -> str:
        """The id@version stored beside every score computed from this definition."""
        return f"{self.id}@{self.version}"

    @property
    def link_ids(self) -> tuple[str, ...]:
        return tuple(item.link_id for item in self.items)

    @property
    def wording_withheld(self) -> str:
        """Why a rater does not read the scale's own wording here: "numbers" when its items show
        only their numbers (CADSS), "labels" when they show short labels, "" when the wording is
        reproduced. Set by the definition's licence (docs/sources/measures.md)."""
        if not any(item.licensed_text_required for item in self.items):
            return ""
        numbered = f"{self.short_title} item ".lower()
        labels = [item.labels.get("en", "").lower() for item in self.items]
        return "numbers" if all(label.startswith(numbered) for label in labels) else "labels"

    @property
    def recall_period_plain(self) -> str:
        """The recall period without the clinical reference's evidence tags ("[U]")."""
        return re.sub(r"\s*\[[A-Z]\]", "", self.recall_period)

    def item(self, link_id: str) -> Item:
        for item in self.items:
            if item.link_id == link_id:
                return item
        raise KeyError(link_id)

    def has_item(self, link_id: str) -> bool:
        return any(item.link_id == link_id for item in self.items)

    def policy_value(self, key: str) -> PolicyValue:
        for value in self.policy_values:
            if value.key == key:
                return value
        raise KeyError(key)

    def language(self, code: str) -> Language | None:
        return next((lang for lang in self.languages if lang.code == code), None)


# --- loading -------------------------------------------------------------------------------


def _codings(raw: Iterable[Mapping[str, str]]) -> tuple[Coding, ...]:
    return tuple(Coding(system=c["system"], code=c["code"]) for c in raw)


def _option(raw: Mapping[str, Any]) -> AnswerOption:
    return AnswerOption(
        value=int(raw["value"]),
        labels=_frozen(raw["label"]),
        codes=_codings(raw.get("codes", ())),
    )


def _item(
    raw: Mapping[str, Any],
    answer_sets: Mapping[str, tuple[AnswerOption, ...]],
    licensed_text_required: bool,
    instrument_id: str,
) -> Item:
    link_id = str(raw["link_id"])
    set_name = raw["answer_set"]
    if set_name not in answer_sets:
        raise DefinitionError(instrument_id, f"item {link_id} uses unknown answer set {set_name!r}")
    enable_when = raw.get("enable_when")
    return Item(
        link_id=link_id,
        labels=_frozen(raw["label"]),
        texts=_frozen(raw.get("text", {})),
        licensed_text_required=licensed_text_required,
        options=answer_sets[set_name],
        codes=_codings(raw.get("codes", ())),
        fhir_link_ids=tuple(raw.get("fhir_link_ids", ())),
        required=bool(raw.get("required", True)),
        scored=bool(raw.get("scored", True)),
        reverse_scored=bool(raw.get("reverse_scored", False)),
        enable_when=(
            EnableWhen(link_id=str(enable_when["link_id"]), equals=int(enable_when["equals"]))
            if enable_when
            else None
        ),
    )


def instrument_from_dict(raw: Mapping[str, Any]) -> Instrument:
    """Build and check an Instrument from its JSON form. Raises DefinitionError."""
    instrument_id = str(raw.get("id", "?"))
    if raw.get("format") != DEFINITION_FORMAT:
        raise DefinitionError(instrument_id, f"expected format {DEFINITION_FORMAT}")
    try:
        instrument = _build(raw)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DefinitionError):
            raise
        raise DefinitionError(instrument_id, f"malformed definition: {exc!r}") from exc
    _check(instrument)
    return instrument


def _build(raw: Mapping[str, Any]) -> Instrument:
    instrument_id = str(raw["id"])
    licence = raw["licence"]
    answer_sets = {
        name: tuple(_option(option) for option in options)
        for name, options in raw["answer_sets"].items()
    }
    items = tuple(
        _item(item, answer_sets, bool(licence["licensed_text_required"]), instrument_id)
        for item in raw["items"]
    )
    scoring = raw["scoring"]
    total_range = scoring.get("total_range")
    bands = raw.get("severity_bands") or {"bands": [], "source": ""}
    loinc = raw.get("loinc", {})
    screen = raw.get("screen")
    fhir = raw.get("fhir", {})
    return Instrument(
        id=instrument_id,
        version=int(raw["version"]),
        title=raw["title"],
        short_title=raw["short_title"],
        respondent=raw["respondent"],
        recall_period=raw["recall_period"],
        stem=_frozen(raw.get("stem", {})),
        items=items,
        scoring=ScoringRule(
            rule=scoring["rule"],
            parameters=_frozen(scoring.get("parameters", {})),
            total_range=(
                (Decimal(str(total_range[0])), Decimal(str(total_range[1])))
                if total_range is not None
                else None
            ),
            source=scoring["source"],
        ),
        subscales=tuple(
            Subscale(
                id=s["id"], label=s["label"], link_ids=tuple(s["link_ids"]), source=s["source"]
            )
            for s in raw.get("subscales", ())
        ),
        domains=tuple(
            Domain(id=d["id"], label=d["label"], link_ids=tuple(d["link_ids"]))
            for d in scoring.get("parameters", {}).get("domains", ())
        ),
        severity_bands=tuple(
            SeverityBand(
                low=Decimal(str(b["min"])),
                high=Decimal(str(b["max"])),
                code=b["code"],
                label=b["label"],
            )
            for b in bands["bands"]
        ),
        severity_source=bands["source"],
        critical_items=tuple(
            CriticalItemRule(
                link_id=str(c["link_id"]),
                threshold=int(c["threshold"]),
                policy_key=c.get("policy_key"),
                finding=c["finding"],
                label=c["label"],
                source=c["source"],
            )
            for c in raw.get("critical_items", ())
        ),
        policy_values=tuple(
            PolicyValue(
                key=p["key"],
                default=Decimal(str(p["default"])),
                applies_to=p["applies_to"],
                confirmed=bool(p["confirmed"]),
                description=p["description"],
                source=p["source"],
            )
            for p in raw.get("policy_values", ())
        ),
        screen=(
            ScreenRule(
                rule=screen["rule"],
                parameters=_frozen(screen.get("parameters", {})),
                source=screen["source"],
            )
            if screen
            else None
        ),
        extra_rules=tuple(
            ExtraRule(
                rule=e["rule"], parameters=_frozen(e.get("parameters", {})), source=e["source"]
            )
            for e in raw.get("extra_rules", ())
        ),
        missing_answers=MissingAnswerPolicy(
            rule=raw["missing_answers"]["rule"],
            max_missing=int(raw["missing_answers"].get("max_missing", 0)),
            source=raw["missing_answers"]["source"],
        ),
        loinc=LoincCodes(
            panel=loinc.get("panel"),
            total=loinc.get("total"),
            status=loinc.get("status", "U"),
            source=loinc.get("source", ""),
        ),
        canonical_url=raw["canonical_url"],
        loinc_form_canonical=raw.get("loinc_form_canonical"),
        known_questionnaires=tuple(fhir.get("known_questionnaires", ())),
        total_fhir_link_ids=tuple(fhir.get("total_link_ids", ())),
        licence_note=licence["note"],
        languages=tuple(
            Language(code=code, available=bool(lang["available"]), note=lang.get("note", ""))
            for code, lang in raw["languages"].items()
        ),
        sources=tuple(raw["sources"]),
    )


# --- consistency checks ----------------------------------------------------------------------


def reachable_total_range(instrument: Instrument) -> tuple[Decimal, Decimal] | None:
    """The lowest and highest total the items can produce under the instrument's scoring rule."""
    rule = instrument.scoring.rule
    scored = [item for item in instrument.items if item.scored]
    if rule == "sum":
        return (
            Decimal(sum(i.min_value for i in scored)),
            Decimal(sum(i.max_value for i in scored)),
        )
    if rule == "mean":
        count = Decimal(len(scored))
        return (
            Decimal(sum(i.min_value for i in scored)) / count,
            Decimal(sum(i.max_value for i in scored)) / count,
        )
    if rule == "domain_max_sum":
        low = sum(min(instrument.item(x).min_value for x in d.link_ids) for d in instrument.domains)
        high = sum(
            max(instrument.item(x).max_value for x in d.link_ids) for d in instrument.domains
        )
        return (Decimal(low), Decimal(high))
    if rule == "mdq":
        symptoms = [instrument.item(x) for x in instrument.scoring.parameters["symptom_items"]]
        return (
            Decimal(sum(i.min_value for i in symptoms)),
            Decimal(sum(i.max_value for i in symptoms)),
        )
    return None


def _check(instrument: Instrument) -> None:
    def fail(message: str) -> NoReturn:
        raise DefinitionError(instrument.id, message)

    if instrument.canonical_url != CANONICAL_BASE + instrument.id:
        fail(f"canonical_url must be {CANONICAL_BASE + instrument.id}")
    if instrument.respondent not in ("self", "clinician"):
        fail(f"unknown respondent {instrument.respondent!r}")
    if instrument.version < 1:
        fail("version must be a positive integer")

    link_ids = instrument.link_ids
    if len(set(link_ids)) != len(link_ids):
        fail("duplicate item link_id")
    aliases = [alias for item in instrument.items for alias in item.fhir_link_ids]
    if len(set(aliases)) != len(aliases) or set(aliases) & set(link_ids):
        fail("a FHIR link id alias is used twice")
    for item in instrument.items:
        values = [option.value for option in item.options]
        if len(set(values)) != len(values) or not values:
            fail(f"item {item.link_id} has duplicate or no answer values")
        if "en" not in item.labels:
            fail(f"item {item.link_id} has no English label")
        if item.licensed_text_required and item.texts:
            fail(f"item {item.link_id} carries text although the text is licensed")
        if (
            item.enable_when
            and item.enable_when.link_id not in link_ids[: link_ids.index(item.link_id)]
        ):
            # Asking order is item order, so an item can only depend on one asked before it.
            fail(f"item {item.link_id} depends on {item.enable_when.link_id}, not an earlier item")

    scoring = instrument.scoring
    if scoring.rule not in SCORING_RULES:
        fail(f"unknown scoring rule {scoring.rule!r}")
    for domain in instrument.domains:
        _require_items(instrument, domain.link_ids, f"domain {domain.id}")
    if scoring.rule == "domain_max_sum":
        covered = sorted(x for d in instrument.domains for x in d.link_ids)
        scored = sorted(i.link_id for i in instrument.items if i.scored)
        if covered != scored:
            fail("domains must cover every scored item exactly once")
    for key, value in scoring.parameters.items():
        # Parameters that name items: "*_item" / "*_items", and every C-SSRS role.
        if key.endswith("_items"):
            _require_items(instrument, value, f"scoring parameter {key}")
        elif key.endswith("_item") or scoring.rule == "cssrs_screener":
            _require_items(instrument, (value,), f"scoring parameter {key}")
    for subscale in instrument.subscales:
        _require_items(instrument, subscale.link_ids, f"subscale {subscale.id}")

    reachable = reachable_total_range(instrument)
    if scoring.total_range != reachable:
        fail(f"declared total range {scoring.total_range} but the items reach {reachable}")
    _check_bands(instrument, fail)

    policy_keys = {p.key for p in instrument.policy_values}
    for policy in instrument.policy_values:
        if not policy.key.startswith(instrument.id + "."):
            fail(f"policy key {policy.key} must start with '{instrument.id}.'")
        _check_policy_default(instrument, policy, fail)
    for rule in instrument.critical_items:
        _require_items(instrument, (rule.link_id,), "critical item rule")
        item = instrument.item(rule.link_id)
        if not item.min_value < rule.threshold <= item.max_value:
            fail(f"critical threshold {rule.threshold} outside item {rule.link_id}'s range")
        if rule.policy_key is not None and rule.policy_key not in policy_keys:
            fail(f"critical rule names unknown policy key {rule.policy_key}")
    if instrument.screen is not None:
        if instrument.screen.rule not in SCREEN_RULES:
            fail(f"unknown screen rule {instrument.screen.rule!r}")
        named_keys = list(instrument.screen.parameters.get("policy_keys", {}).values())
        if "policy_key" in instrument.screen.parameters:
            named_keys.append(instrument.screen.parameters["policy_key"])
        for key in named_keys:
            if key not in policy_keys:
                fail(f"screen names unknown policy key {key}")
    for extra in instrument.extra_rules:
        if extra.rule not in EXTRA_RULES:
            fail(f"unknown extra rule {extra.rule!r}")

    missing = instrument.missing_answers
    if missing.rule not in ("refuse", "prorate"):
        fail(f"unknown missing-answer rule {missing.rule!r}")
    if missing.rule == "prorate" and (
        scoring.rule != "sum" or instrument.subscales or missing.max_missing < 1
    ):
        fail("proration is supported only for plain sums without subscales, with max_missing>=1")
    english = instrument.language("en")
    if english is None or not english.available:
        fail("English must be available")
    for lang in instrument.languages:
        if lang.available and lang.code != "en":
            for item in instrument.items:
                untranslated = (item.texts and lang.code not in item.texts) or any(
                    lang.code not in option.labels for option in item.options
                )
                if untranslated:
                    fail(
                        f"language {lang.code} is marked available but item {item.link_id} lacks it"
                    )


def _require_items(instrument: Instrument, link_ids: Iterable[str], where: str) -> None:
    for link_id in link_ids:
        if not instrument.has_item(link_id):
            raise DefinitionError(instrument.id, f"{where} names unknown item {link_id}")


def _check_bands(instrument: Instrument, fail: Callable[[str], NoReturn]) -> None:
    bands = instrument.severity_bands
    if not bands:
        return
    total_range = instrument.scoring.total_range
    if total_range is None:
        fail("severity bands need a total range")
        return
    if bands[0].low != total_range[0] or bands[-1].high != total_range[1]:
        fail("severity bands must start and end at the total range")
    for lower, upper in zip(bands, bands[1:], strict=False):
        # Totals are whole numbers for every banded instrument; the next band starts one above.
        if upper.low != lower.high + 1:
            fail(f"severity bands {lower.code} and {upper.code} leave a gap or overlap")
    codes = [band.code for band in bands]
    if len(set(codes)) != len(codes):
        fail("duplicate severity band code")


def _check_policy_default(
    instrument: Instrument, policy: PolicyValue, fail: Callable[[str], NoReturn]
) -> None:
    low, high = policy_value_range(instrument, policy)
    if not low <= policy.default <= high:
        fail(f"policy default {policy.key}={policy.default} is outside {low}..{high}")


def policy_value_range(instrument: Instrument, policy: PolicyValue) -> tuple[Decimal, Decimal]:
    """The values a clinic may set for this policy: within the total or the item's range."""
    if policy.applies_to == "total":
        if instrument.scoring.total_range is None:
            raise DefinitionError(instrument.id, f"{policy.key} applies to a total it lacks")
        return instrument.scoring.total_range
    if policy.applies_to.startswith("item:"):
        item = instrument.item(policy.applies_to.removeprefix("item:"))
        # An alert level of the item's minimum would fire on every answer; start one above.
        return (Decimal(item.min_value + 1), Decimal(item.max_value))
    raise DefinitionError(instrument.id, f"{policy.key} has unknown applies_to")


# --- the shipped library ---------------------------------------------------------------------


def _instrument_files() -> list[Any]:
    folder = resources.files(__package__).joinpath("instruments")
    return sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )


@cache
def load_instruments() -> Mapping[str, Instrument]:
    """Every shipped definition, keyed by rule id ("phq9@1").

    Old versions stay in the library so that a stored score can always be explained by the exact
    definition that produced it. Each file is named `<id>.v<version>.json`.
    """
    loaded: dict[str, Instrument] = {}
    for entry in _instrument_files():
        raw = json.loads(entry.read_text(encoding="utf-8"))
        instrument = instrument_from_dict(raw)
        expected = f"{instrument.id}.v{instrument.version}.json"
        if entry.name != expected:
            raise DefinitionError(instrument.id, f"file {entry.name} must be named {expected}")
        loaded[instrument.rule_id] = instrument
    return MappingProxyType(loaded)


def get_instrument(instrument_id: str, version: int | None = None) -> Instrument:
    """A shipped definition; the newest version unless one is asked for. KeyError if unknown."""
    if version is not None:
        return load_instruments()[f"{instrument_id}@{version}"]
    versions = [i for i in load_instruments().values() if i.id == instrument_id]
    if not versions:
        raise KeyError(instrument_id)
    return max(versions, key=lambda instrument: instrument.version)


def current_instruments() -> tuple[Instrument, ...]:
    """The newest version of every shipped instrument, ordered by id."""
    ids = sorted({instrument.id for instrument in load_instruments().values()})
    return tuple(get_instrument(instrument_id) for instrument_id in ids)
