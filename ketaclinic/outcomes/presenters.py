"""Survival fits as the JSON the API answers and the dashboard's table reads (plain dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketaclinic.outcomes.stats import KM_RULE, LogRank, SurvivalFit


def fit_payload(fit: SurvivalFit) -> dict[str, Any]:
    return {
        "n": fit.n,
        "events": fit.events,
        "median": fit.median.time,
        "median_ci_lower": fit.median.ci_lower,
        "median_ci_upper": fit.median.ci_upper,
        "quartiles": {key: q.time for key, q in fit.quantiles.items()},
        "curve": [
            {
                "time": p.time,
                "survival": p.survival,
                "at_risk": p.at_risk,
                "ci_lower": p.ci_lower,
                "ci_upper": p.ci_upper,
            }
            for p in fit.curve
        ],
    }


def logrank_payload(test: LogRank | None) -> dict[str, Any] | None:
    if test is None:
        return None
    return {"chisq": test.chisq, "df": test.df, "p": test.p}


def survival_payload(fits: Mapping[str, SurvivalFit], test: LogRank | None) -> dict[str, Any]:
    return {
        "groups": {name: fit_payload(fit) for name, fit in fits.items()},
        "logrank": logrank_payload(test),
        "rule": KM_RULE,
    }
