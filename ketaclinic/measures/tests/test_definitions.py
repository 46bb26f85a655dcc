"""Every shipped instrument definition loads, is internally consistent, and carries what the
clinical reference says it should (codes, critical items, licensing flags)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ketaclinic.measures.definitions import (
    CANONICAL_BASE,
    DefinitionError,
    current_instruments,
    get_instrument,
    instrument_from_dict,
    load_instruments,
    reachable_total_range,
)

INSTRUMENT_DIR = Path(__file__).resolve().parents[1] / "instruments"
EXPECTED_IDS = {
    "phq9",
    "phq2",
    "gad7",
    "qids-sr16",
    "madrs",
    "pcl5",
    "cssrs-screener",
    "cadss",
    "ybocs",
    "mdq",
    "peg",
    "audit-c",
    "dast10",
}


def raw_definition(name: str) -> dict[str, Any]:
    return json.loads((INSTRUMENT_DIR / f"{name}.v1.json").read_text(encoding="utf-8"))


def test_every_definition_file_loads_and_none_is_skipped() -> None:
    files = sorted(INSTRUMENT_DIR.glob("*.json"))
    assert len(files) == len(load_instruments())
    assert {instrument.id for instrument in current_instruments()} == EXPECTED_IDS


@pytest.mark.parametrize("instrument", current_instruments(), ids=lambda i: i.id)
def test_definition_identity_is_stable_and_versioned(instrument: Any) -> None:
    assert instrument.rule_id == f"{instrument.id}@{instrument.version}"
    assert instrument.canonical_url == CANONICAL_BASE + instrument.id
    assert get_instrument(instrument.id, instrument.version) is instrument
    assert instrument.sources, "every definition cites its sources"
    assert instrument.scoring.source
    assert instrument.missing_answers.source


BANDED = [i for i in current_instruments() if i.severity_bands]


def test_banded_instruments_are_those_with_bands_in_the_reference() -> None:
    assert {i.id for i in BANDED} == {"phq9", "gad7", "qids-sr16", "madrs", "ybocs", "dast10"}


@pytest.mark.parametrize("instrument", BANDED, ids=lambda i: i.id)
def test_every_whole_total_falls_in_exactly_one_severity_band(instrument: Any) -> None:
    low, high = instrument.scoring.total_range
    for total in range(int(low), int(high) + 1):
        matching = [b for b in instrument.severity_bands if b.contains(Decimal(total))]
        assert len(matching) == 1, total


@pytest.mark.parametrize("instrument", current_instruments(), ids=lambda i: i.id)
def test_declared_total_range_is_what_the_items_can_reach(instrument: Any) -> None:
    assert reachable_total_range(instrument) == instrument.scoring.total_range


@pytest.mark.parametrize(
    ("instrument_id", "total_range"),
    [
        ("phq9", (0, 27)),
        ("phq2", (0, 6)),
        ("gad7", (0, 21)),
        ("qids-sr16", (0, 27)),
        ("madrs", (0, 60)),
        ("pcl5", (0, 80)),
        ("cadss", (0, 92)),
        ("ybocs", (0, 40)),
        ("mdq", (0, 13)),
        ("peg", (0, 10)),
        ("audit-c", (0, 12)),
        ("dast10", (0, 10)),
    ],
)
def test_total_ranges_match_the_clinical_reference(
    instrument_id: str, total_range: tuple[int, int]
) -> None:
    assert get_instrument(instrument_id).scoring.total_range == tuple(map(Decimal, total_range))


def test_the_cssrs_screener_has_no_total() -> None:
    assert get_instrument("cssrs-screener").scoring.total_range is None


@pytest.mark.parametrize(
    ("instrument_id", "panel", "total"),
    [
        ("phq9", "44249-1", "44261-6"),
        ("phq2", "55757-9", "55758-7"),
        ("gad7", "69737-5", "70274-6"),
        ("audit-c", "72109-2", "75626-2"),
        ("peg", "91148-7", "91147-9"),
        ("dast10", None, "82667-7"),
        ("pcl5", None, None),
        ("cssrs-screener", None, None),
        ("madrs", None, None),
        ("qids-sr16", None, None),
        ("ybocs", None, None),
        ("cadss", None, None),
        ("mdq", None, None),
    ],
)
def test_loinc_codes_are_those_of_the_reference_and_no_unconfirmed_ones(
    instrument_id: str, panel: str | None, total: str | None
) -> None:
    loinc = get_instrument(instrument_id).loinc
    assert (loinc.panel, loinc.total) == (panel, total)


def test_the_wrong_cssrs_panel_code_is_not_used_anywhere() -> None:
    # clinical-reference §5.2: 73831-0 is an adolescent depression screen, not the C-SSRS.
    assert all("73831-0" not in (i.loinc.panel or "") for i in current_instruments())


def test_phq9_points_at_the_loinc_form_and_has_loinc_item_codes() -> None:
    phq9 = get_instrument("phq9")
    assert phq9.loinc_form_canonical == "http://loinc.org/q/44249-1"
    assert phq9.item("9").loinc_code() == "44260-8"
    assert [phq9.item(str(n)).loinc_code() for n in range(1, 10)] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    assert [o.codes[0].code for o in phq9.item("1").options] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
    ]


@pytest.mark.parametrize(
    ("instrument_id", "critical_link_ids"),
    [
        ("phq9", ["9"]),
        ("qids-sr16", ["12"]),
        ("madrs", ["10"]),
        ("cssrs-screener", ["4", "5", "6"]),
        ("phq2", []),
        ("gad7", []),
        ("pcl5", []),
    ],
)
def test_critical_items_are_the_references(
    instrument_id: str, critical_link_ids: list[str]
) -> None:
    rules = get_instrument(instrument_id).critical_items
    assert [rule.link_id for rule in rules] == critical_link_ids


def test_phq9_item9_threshold_is_fixed_at_any_answer_above_not_at_all() -> None:
    (rule,) = get_instrument("phq9").critical_items
    assert (rule.threshold, rule.policy_key) == (1, None)


@pytest.mark.parametrize("instrument_id", ["madrs", "qids-sr16"])
def test_unconfirmed_alert_levels_are_clinic_policy_with_the_conservative_default(
    instrument_id: str,
) -> None:
    instrument = get_instrument(instrument_id)
    (rule,) = instrument.critical_items
    assert rule.policy_key is not None
    policy = instrument.policy_value(rule.policy_key)
    assert policy.confirmed is False
    assert policy.default == instrument.item(rule.link_id).min_value + 1


@pytest.mark.parametrize("instrument", current_instruments(), ids=lambda i: i.id)
def test_licensed_instruments_carry_labels_but_never_item_text(instrument: Any) -> None:
    for item in instrument.items:
        assert item.label()
        if item.licensed_text_required:
            assert not item.texts


@pytest.mark.parametrize(
    ("instrument_id", "licensed"),
    [
        ("phq9", False),
        ("gad7", False),
        ("madrs", True),
        ("ybocs", True),
        ("cadss", True),
        ("mdq", True),
        ("dast10", True),
        ("pcl5", False),
        ("peg", False),
        ("audit-c", False),
    ],
)
def test_licensed_text_flag_follows_the_references_licensing_column(
    instrument_id: str, licensed: bool
) -> None:
    assert all(i.licensed_text_required is licensed for i in get_instrument(instrument_id).items)


def test_spanish_is_offered_only_for_the_free_pfizer_phq_translations() -> None:
    spanish = {i.id for i in current_instruments() if (lang := i.language("es")) and lang.available}
    assert spanish == {"phq9", "phq2"}
    phq9 = get_instrument("phq9")
    assert phq9.item("9").texts["es"].startswith("Pensamientos de que estaría mejor muerto(a)")
    assert [o.label("es") for o in phq9.item("1").options][0] == "Ningún día"


def test_dast10_reverse_scores_item_3_only() -> None:
    dast = get_instrument("dast10")
    assert [i.link_id for i in dast.items if i.reverse_scored] == ["3"]
    assert dast.item("3").score(0) == 1
    assert dast.item("3").score(1) == 0


def test_qids_domains_take_the_maximum_of_sleep_appetite_and_psychomotor_items() -> None:
    domains = {d.id: d.link_ids for d in get_instrument("qids-sr16").domains}
    assert domains["sleep"] == ("1", "2", "3", "4")
    assert domains["appetite-weight"] == ("6", "7", "8", "9")
    assert domains["psychomotor"] == ("15", "16")
    assert len(domains) == 9


def test_get_instrument_refuses_an_unknown_id_or_version() -> None:
    with pytest.raises(KeyError):
        get_instrument("hamd17")
    with pytest.raises(KeyError):
        get_instrument("phq9", 99)


# --- the loader refuses inconsistent definitions -------------------------------------------------


def broken(mutate: Any, name: str = "phq9") -> dict[str, Any]:
    raw = copy.deepcopy(raw_definition(name))
    mutate(raw)
    return raw


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["severity_bands"]["bands"].__setitem__(
                1, {"min": 6, "max": 9, "code": "mild", "label": "Mild"}
            ),
            "gap or overlap",
        ),
        (lambda r: r["scoring"].__setitem__("total_range", [0, 30]), "items reach"),
        (lambda r: r["scoring"].__setitem__("rule", "median"), "unknown scoring rule"),
        (lambda r: r["critical_items"][0].__setitem__("threshold", 4), "outside item"),
        (lambda r: r["items"][1].__setitem__("link_id", "1"), "duplicate item link_id"),
        (lambda r: r["licence"].__setitem__("licensed_text_required", True), "licensed"),
        (lambda r: r["items"][0]["text"].pop("es"), "language es"),
        (lambda r: r.__setitem__("canonical_url", "https://example.org/phq9"), "canonical_url"),
        (lambda r: r["subscales"][0].__setitem__("link_ids", ["1", "99"]), "unknown item 99"),
        (
            lambda r: r.__setitem__(
                "missing_answers", {"rule": "prorate", "max_missing": 1, "source": "x"}
            ),
            "proration",
        ),
        (lambda r: r.__setitem__("format", 2), "format"),
        (lambda r: r.pop("licence"), "malformed"),
    ],
)
def test_inconsistent_definitions_are_refused_at_load_time(mutate: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        instrument_from_dict(broken(mutate))


def test_an_item_may_depend_only_on_an_earlier_item() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["items"][0]["enable_when"] = {"link_id": "2", "equals": 1}

    with pytest.raises(DefinitionError, match="not an earlier item"):
        instrument_from_dict(broken(mutate, "cssrs-screener"))


def test_a_policy_default_outside_its_range_is_refused() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["policy_values"][0]["default"] = 7

    with pytest.raises(DefinitionError, match="outside"):
        instrument_from_dict(broken(mutate, "madrs"))
