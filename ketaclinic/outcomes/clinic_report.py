"""The clinic outcomes report: the dashboard's figures (pictures first, numbers below, every
definition shown) for one cohort, on screen and as the PDF the background worker draws."""

from __future__ import annotations

from typing import Any

from ketaclinic.outcomes import charts, selectors
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.rules import OutcomePolicy


def definitions(policy: OutcomePolicy) -> list[dict[str, str]]:
    """The rules the figures use, in words, with their sources (docs/sources/outcomes.md)."""
    rows = [
        {
            "term": "Response",
            "rule": f"a fall of at least {policy.response_reduction_percent}% from baseline "
            "(the last score at or before the first dose)",
            "source": "clinical reference 4.2, confirmed",
        }
    ]
    for instrument, rule in policy.remission_rules.items():
        rows.append(
            {
                "term": f"Remission ({instrument.upper()})",
                "rule": f"score {rule.describe()}",
                "source": rule.source.replace("clinical-reference §", "clinical reference "),
            }
        )
    for instrument, relapse in policy.relapse_rules.items():
        rows.append(
            {
                "term": f"Relapse ({instrument.upper()})",
                "rule": f"after a response, {relapse.consecutive} consecutive scores of "
                f"{relapse.threshold} or more, {relapse.min_days_apart}-"
                f"{relapse.max_days_apart} days apart",
                "source": "clinical reference 4.2, wording unconfirmed: a clinic setting",
            }
        )
    return rows


def draw_charts(report: selectors.CohortReport) -> dict[str, str]:
    summary = report.summary
    bars = [
        charts.RateBar(
            f"{label}, all",
            rate.rate,
            rate.ci_lower,
            rate.ci_upper,
            f"{rate.successes} of {rate.n}",
        )
        for label, rate in (("Response", summary.response), ("Remission", summary.remission))
    ]
    for name, (response, remission) in summary.by_group.items():
        bars.append(
            charts.RateBar(
                f"Response, {name}"[:24],
                response.rate,
                response.ci_lower,
                response.ci_upper,
                f"{response.successes} of {response.n}",
            )
        )
        bars.append(
            charts.RateBar(
                f"Remission, {name}"[:24],
                remission.rate,
                remission.ci_lower,
                remission.ci_upper,
                f"{remission.successes} of {remission.n}",
            )
        )
    weeks = [
        charts.BandPoint(w.week, w.mean, w.ci_lower, w.ci_upper, w.n)
        for w in summary.change_by_week
    ]
    dissociation = [
        charts.BandPoint(index + 1, row.mean, row.ci_lower, row.ci_upper, row.patients)
        for index, row in enumerate(report.dissociation)
        if row.mean is not None
    ]
    return {
        "dissociation": charts.mean_band_svg(
            chart_id="dissociation",
            title="Mean dissociation (CADSS) by response after induction",
            points=dissociation,
            x_label="1 responders, 2 non-responders",
            y_label="CADSS",
        )
        if len(dissociation) == 2
        else "",
        "rates": charts.rate_bars_svg(
            chart_id="rates", title="Response and remission after induction", bars=bars
        ),
        "change": charts.mean_band_svg(
            chart_id="change",
            title="Mean change from baseline by week since the first dose",
            points=weeks,
            x_label="week",
            y_label="points",
        ),
        "to_response": charts.km_svg(
            chart_id="to-response",
            title="Patients not yet responding, by days since the first dose",
            fits={"all": summary.to_first_response} if summary.to_first_response else {},
        ),
        "durability": charts.km_svg(
            chart_id="durability",
            title="Durability: responders without relapse, by days since response",
            fits=summary.durability,
        ),
        "maintenance": charts.km_svg(
            chart_id="maintenance",
            title="Durability by how often responders were dosed after responding",
            fits=summary.durability_by_maintenance,
        ),
    }


def context(
    report: selectors.CohortReport,
    filters: CohortFilters,
    *,
    pictures: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the dashboard and its PDF show of a cohort (the pictures drawn unless given)."""
    return {
        "report": report,
        "summary": report.summary,
        "charts": draw_charts(report) if pictures is None else pictures,
        "definitions": definitions(OutcomePolicy()),
        "described": ", ".join(filters.described()),
        "bp": [
            {
                "severity": severity,
                "sessions": count,
                "per_100": report.safety.bp_per_100_sessions(severity),
            }
            for severity, count in report.safety.bp_excursions.items()
        ],
        "grades": [
            {"grade": grade, "count": count, "per_100": report.safety.per_100_sessions(grade)}
            for grade, count in report.safety.adverse_events_by_grade.items()
        ],
    }
