"""Outcome charts: the pictures carry the same numbers as the tables (at risk, hover titles)."""

from __future__ import annotations

import re

from ketaclinic.outcomes.charts import (
    BandPoint,
    RateBar,
    km_svg,
    mean_band_svg,
    number,
    rate_bars_svg,
)
from ketaclinic.outcomes.stats import kaplan_meier


def test_km_plot_shows_numbers_at_risk_under_the_axis_ticks() -> None:
    fit = kaplan_meier([5, 8, 12, 20, 30], [True, False, True, True, False])
    svg = km_svg(chart_id="km", title="t", fits={"iv <script>": fit})
    at_risk = re.findall(r'class="km-at-risk"[^>]*>(\d+)<', svg)
    assert at_risk[0] == "5"  # everyone at time 0
    assert at_risk[-1] == "1"  # the last tick is the last follow-up, still at risk
    assert "&lt;script&gt;" in svg
    assert "<script>" not in svg
    assert svg.count('class="km-censor"') == 2
    assert "3 at risk" in svg  # the hover title of the step at week 12


def test_rates_and_means_hover_with_their_intervals() -> None:
    bars = rate_bars_svg(
        chart_id="r", title="t", bars=[RateBar("Response", 0.5, 0.3, 0.7, "5 of 10")]
    )
    assert "50.0% (95% CI 30.0% to 70.0%), 5 of 10" in bars
    band = mean_band_svg(
        chart_id="m",
        title="t",
        points=[BandPoint(1, -3.5, -5, -2, 10), BandPoint(2, -6.25, -8, -4.5, 9)],
        x_label="week",
        y_label="points",
    )
    assert "week 2: -6.2 points (95% CI -8 to -4.5), n = 9" in band
    assert band.count('class="mean-band"') == 1


def test_numbers_read_without_trailing_zeros_or_exponents() -> None:
    assert [number(v) for v in (12.0, 12.5, 1e6, -0.04, None)] == [
        "12", "12.5", "1000000", "0", "-",
    ]  # fmt: skip
    assert km_svg(chart_id="x", title="t", fits={}) == ""
