"""`make bench`'s alternation summary: issue 13's 16-client ratios, one per round, reported as the
median of the rounds with their range (bench/alternation.py)."""

from __future__ import annotations

from typing import Any

from bench import alternation


def _pass(throughput: float, cpu_ms: float | None, errors: int = 0) -> dict[str, Any]:
    return {"throughput": throughput, "server_cpu_ms_per_request": cpu_ms, "errors": errors}


def _round(number: int, write: tuple, bare: tuple, create: tuple) -> dict[str, Any]:
    return {"round": number, "write": _pass(*write), "bare": _pass(*bare),
            "fhir_create": _pass(*create)}  # fmt: skip


def test_each_round_gives_its_own_ratios_and_the_median_is_reported_with_the_range() -> None:
    rounds = [
        # A noisy neighbour doubles everything in round 2: its ratios are still the same.
        _round(1, (700, 1.6), (1000, 0.8), (630, 2.0)),
        _round(2, (350, 3.2), (500, 1.6), (315, 4.0)),
        _round(3, (600, 1.8), (1000, 0.75), (420, 2.4)),
    ]
    summary = alternation.summarize(rounds)["summary"]
    assert summary["write_cpu_vs_bare"] == {"median": 2.0, "min": 2.0, "max": 2.4}
    assert summary["write_vs_bare"] == {"median": 0.7, "min": 0.6, "max": 0.7}
    assert summary["fhir_create_vs_write"] == {"median": 0.9, "min": 0.7, "max": 0.9}
    assert summary["fhir_create_cpu_ms"]["median"] == 2.4


def test_a_round_without_a_cpu_figure_is_left_out_and_errors_are_counted() -> None:
    rounds = [
        _round(1, (700, 1.6), (1000, 0.8), (630, 2.0, 3)),
        _round(2, (700, None), (1000, 0.8), (630, 2.0)),
    ]
    result = alternation.summarize(rounds)
    assert result["summary"]["write_cpu_vs_bare"]["median"] == 2.0
    assert result["errors"] == 3


def test_the_table_shows_each_median_beside_its_target() -> None:
    data = {"alternation": alternation.summarize([_round(1, (700, 1.6), (1000, 0.8), (630, 2.0))])}
    rows, errors = alternation.rows(data)
    text = {label.strip(): ratio for label, _value, _baseline, ratio in rows}
    assert text["server CPU per write vs bare"] == "2.00x (target <= 2x)"
    assert text["FHIR create vs write API, throughput"] == "0.90x (target >= 0.9x)"
    assert errors == 0
    assert alternation.ratios(data)["alternation_write_cpu_vs_bare_median"] == 2.0
    assert alternation.rows({}) == ([], 0)
