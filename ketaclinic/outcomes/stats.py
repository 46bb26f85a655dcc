"""Outcome statistics computed the way R's `survival` package computes them by default.

Pure module (numpy and scipy, no Django). Every function takes plain numbers and returns plain
floats (None where R prints NA), so the service layer, the JSON API and the reports show the same
figures. What R does and where lifelines differs is written down in docs/sources/outcomes.md.

- `kaplan_meier`: the product-limit curve with Greenwood's variance and the "log" confidence
  interval (`survfit(conf.type = "log")`, R's default), the number at risk at every time, and
  quantiles by R's rule (`quantile.survfit`): the p-quantile is the first time the curve falls to
  1 - p or below, and where the curve sits exactly on 1 - p the midpoint to the next step.
- `logrank`: the k-group log-rank test (`survdiff(rho = 0)`): chi-square, degrees of freedom, p.
- `wilson_interval` / `proportion`: a rate with its Wilson score interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

KM_RULE = "km-greenwood-log@1"
LOGRANK_RULE = "logrank-survdiff@1"
WILSON_RULE = "wilson-score@1"

# qnorm(0.975) as R computes it; written out so the interval never depends on a rounded 1.96.
Z_95 = 1.959963984540054
# quantile.survfit's default tolerance, sqrt(.Machine$double.eps): a curve within this of 1 - p
# is "exactly on" the quantile and takes the midpoint rule.
QUANTILE_TOLERANCE = math.sqrt(2.220446049250313e-16)
QUARTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The curve just after `time`; `at_risk` is the number at risk just before it."""

    time: float
    survival: float
    at_risk: int
    events: int
    censored: int
    std_err: float | None  # of the cumulative hazard (R's `std.err`); None once undefined
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True, slots=True)
class Quantile:
    time: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True, slots=True)
class SurvivalFit:
    n: int
    events: int
    curve: tuple[CurvePoint, ...]
    quantiles: Mapping[str, Quantile]  # "25", "50", "75"
    rule: str = KM_RULE

    @property
    def median(self) -> Quantile:
        return self.quantiles["50"]


@dataclass(frozen=True, slots=True)
class LogRank:
    chisq: float
    df: int
    p: float | None  # None when no two groups have expected events (R prints no test)
    observed: Mapping[str, float]
    expected: Mapping[str, float]
    rule: str = LOGRANK_RULE


@dataclass(frozen=True, slots=True)
class Proportion:
    """`successes` of `n` evaluable patients, with the Wilson 95% interval (None when n is 0)."""

    successes: int
    n: int
    not_evaluable: int
    rate: float | None
    ci_lower: float | None
    ci_upper: float | None
    rule: str = WILSON_RULE


def _as_arrays(times: Sequence[float], events: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    time_array = np.asarray(times, dtype=float)
    event_array = np.asarray(events, dtype=bool)
    if time_array.ndim != 1 or time_array.shape != event_array.shape:
        raise ValueError("times and events must be two lists of the same length")
    if time_array.size and (not np.all(np.isfinite(time_array)) or time_array.min() < 0):
        raise ValueError("times must be finite and not negative")
    return time_array, event_array


def _event_table(
    times: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique times with the number at risk just before, events and censorings at each."""
    unique, inverse = np.unique(times, return_inverse=True)
    removed = np.bincount(inverse, minlength=unique.size)
    died = np.bincount(inverse, weights=events.astype(float), minlength=unique.size).astype(int)
    at_risk = times.size - np.concatenate(([0], np.cumsum(removed)[:-1]))
    return unique, at_risk, died, removed - died


def kaplan_meier(times: Sequence[float], events: Sequence[bool], *, z: float = Z_95) -> SurvivalFit:
    """R's `survfit(Surv(times, events) ~ 1)` with its defaults (Greenwood, log interval)."""
    time_array, event_array = _as_arrays(times, events)
    if time_array.size == 0:
        raise ValueError("a survival curve needs at least one patient")
    unique, at_risk, died, censored = _event_table(time_array, event_array)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - died / at_risk)
        # Greenwood: sum of d / (n (n - d)); a step where everyone left dies has no variance
        # (R carries Inf and prints NA for the interval from there on).
        terms = np.where(died > 0, died / (at_risk * (at_risk - died)), 0.0)
        std_err = np.sqrt(np.cumsum(terms))
        lower = survival * np.exp(-z * std_err)
        upper = np.minimum(survival * np.exp(z * std_err), 1.0)
    undefined = (survival <= 0) | ~np.isfinite(std_err)
    curve = tuple(
        CurvePoint(
            time=float(unique[i]),
            survival=float(survival[i]),
            at_risk=int(at_risk[i]),
            events=int(died[i]),
            censored=int(censored[i]),
            std_err=None if not np.isfinite(std_err[i]) else float(std_err[i]),
            ci_lower=None if undefined[i] else float(lower[i]),
            ci_upper=None if undefined[i] else float(upper[i]),
        )
        for i in range(unique.size)
    )
    lower_curve = np.where(undefined, np.nan, lower)
    upper_curve = np.where(undefined, np.nan, upper)
    quantiles = {}
    for p in QUARTILES:
        quantiles[f"{round(p * 100)}"] = Quantile(
            time=_quantile(unique, survival, p),
            # The lower band crosses first, so it bounds the quantile from below.
            ci_lower=_quantile(unique, lower_curve, p),
            ci_upper=_quantile(unique, upper_curve, p),
        )
    return SurvivalFit(
        n=int(time_array.size), events=int(event_array.sum()), curve=curve, quantiles=quantiles
    )


def _quantile(times: np.ndarray, survival: np.ndarray, p: float) -> float | None:
    """Where a horizontal line at 1 - p meets the step curve, by R's quantile.survfit rule.

    Work on the distribution F = 1 - S with a point (0, 0) in front. Keep only the first time at
    which each level of F is reached (censorings add no level). The quantile is the first time F
    reaches p; if F sits on p (within the tolerance) it is the midpoint between that time and the
    next step, or the last follow-up time when the flat runs to the end of the curve. Undefined
    points of a band (R's NA) are left out, as R's approx() leaves them out.
    """
    last_time = float(times[-1])
    xs = np.concatenate(([0.0], times))
    ys = np.concatenate(([0.0], 1.0 - survival))
    first_of_level = np.ones(ys.size, dtype=bool)
    first_of_level[1:] = ys[1:] != ys[:-1]
    # R's duplicated() also treats a repeated NA as a duplicate.
    both_nan = np.isnan(ys[1:]) & np.isnan(ys[:-1])
    first_of_level[1:] &= ~both_nan
    xs, ys = xs[first_of_level], ys[first_of_level]
    ends_defined = not np.isnan(ys[-1])
    defined = ~np.isnan(ys)
    xs_defined, ys_defined = xs[defined], ys[defined]
    if ys_defined.size == 0 or ys_defined.max() < p:
        return None
    tol = QUANTILE_TOLERANCE
    reach = np.flatnonzero(ys_defined >= p - tol)
    beyond = np.flatnonzero(ys_defined >= p + tol)
    if reach.size == 0:
        return None
    first = float(xs_defined[reach[0]])
    if beyond.size:
        return (first + float(xs_defined[beyond[0]])) / 2
    if ends_defined and abs(p - ys[-1]) < tol:
        return (first + last_time) / 2
    return None


def logrank(groups: Mapping[str, tuple[Sequence[float], Sequence[bool]]]) -> LogRank:
    """R's `survdiff(Surv(time, status) ~ group)` (rho = 0).

    Groups with no expected events are left out of the test, as survdiff leaves them out; with
    fewer than two left there is no test (chi-square 0, df 0, p None).
    """
    if len(groups) < 2:
        raise ValueError("the log-rank test compares two or more groups")
    names = list(groups)
    arrays = [_as_arrays(*groups[name]) for name in names]
    event_times = np.unique(np.concatenate([t[e] for t, e in arrays]))
    k, m = len(names), event_times.size
    at_risk = np.zeros((k, m))
    deaths = np.zeros((k, m))
    for g, (t, e) in enumerate(arrays):
        sorted_t = np.sort(t)
        # at risk at time s: patients whose time is >= s
        at_risk[g] = sorted_t.size - np.searchsorted(sorted_t, event_times, side="left")
        deaths[g] = np.bincount(np.searchsorted(event_times, t[e]), minlength=m)
    total_at_risk = at_risk.sum(axis=0)
    total_deaths = deaths.sum(axis=0)
    share = at_risk / total_at_risk
    observed = deaths.sum(axis=1)
    expected = (share * total_deaths).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(
            total_at_risk > 1,
            total_deaths * (total_at_risk - total_deaths) / (total_at_risk - 1),
            0.0,
        )
    variance = np.einsum("t,gt,ht->gh", weight, share, -share)
    variance[np.diag_indices(k)] += (weight * share).sum(axis=1)
    kept = np.flatnonzero(expected > 0)
    observed_map = {name: float(observed[i]) for i, name in enumerate(names)}
    expected_map = {name: float(expected[i]) for i, name in enumerate(names)}
    if kept.size < 2:
        return LogRank(0.0, 0, None, observed_map, expected_map)
    difference = (observed - expected)[kept][1:]
    sub_variance = variance[np.ix_(kept, kept)][1:, 1:]
    statistic = float(difference @ np.linalg.solve(sub_variance, difference))
    df = int(kept.size - 1)
    return LogRank(statistic, df, float(chi2.sf(statistic, df)), observed_map, expected_map)


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson's score interval for successes/n (no continuity correction); None when n is 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError("successes must lie between 0 and n")
    if n == 0:
        return None
    rate = successes / n
    z2 = z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(verdicts: Sequence[bool | None]) -> Proportion:
    """A rate over patients whose verdict is known; "cannot tell" (None) is counted apart."""
    successes = sum(1 for v in verdicts if v is True)
    evaluable = sum(1 for v in verdicts if v is not None)
    return proportion_of(successes, evaluable, len(verdicts) - evaluable)


def proportion_of(successes: int, evaluable: int, not_evaluable: int) -> Proportion:
    """The same rate from counts (as a database's GROUP BY gives them)."""
    interval = wilson_interval(successes, evaluable)
    return Proportion(
        successes=successes,
        n=evaluable,
        not_evaluable=not_evaluable,
        rate=successes / evaluable if evaluable else None,
        ci_lower=interval[0] if interval else None,
        ci_upper=interval[1] if interval else None,
    )
