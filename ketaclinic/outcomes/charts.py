"""Pure: outcome charts as inline SVG strings (no JavaScript, no inline CSS: CSP-safe).

Every mark carries a <title>, so hovering (or a screen reader) gives the number; the tables
under each chart on the page are the record. Standard library and the stats dataclasses only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ketaclinic.outcomes.stats import SurvivalFit

WIDTH = 640
KM_LEFT = 100
LEFT, RIGHT, TOP = 48, 16, 12
# Colour-blind-safe series colours (Okabe-Ito), presentation attributes only.
SERIES = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
INK, MUTED = "#1b1f24", "#5a6270"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, places: int = 1) -> str:
    """A figure as a person reads it: no trailing zeros, no exponent ("12", "12.5", "-")."""
    if value is None:
        return "-"
    text = f"{value:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _svg_open(chart_id: str, title: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{chart_id}-t" class="outcome-chart" id="{chart_id}">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
    ]


def _nice_ticks(high: float, count: int = 5) -> list[float]:
    if high <= 0:
        return [0.0]
    raw = high / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    step = max(1.0, round(raw / magnitude) * magnitude)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def km_svg(
    *, chart_id: str, title: str, fits: Mapping[str, SurvivalFit], time_label: str = "days"
) -> str:
    """Kaplan-Meier step curves with their 95% bands, censor ticks and numbers at risk."""
    if not fits:
        return ""
    rows = len(fits)
    plot_h = 220
    height = TOP + plot_h + 40 + 16 * (rows + 1)
    end = max((p.time for fit in fits.values() for p in fit.curve), default=1.0) or 1.0
    ticks = _nice_ticks(end)
    end = ticks[-1]
    left = KM_LEFT  # room for the group names of the at-risk table
    plot_w = WIDTH - left - RIGHT

    def x(t: float) -> float:
        return round(left + plot_w * t / end, 1)

    def y(s: float) -> float:
        return round(TOP + plot_h * (1 - s), 1)

    parts = _svg_open(chart_id, title, height)
    for s in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" y1="{y(s)}" x2="{left + plot_w}" y2="{y(s)}" stroke="#e3e6ea"/>'
            f'<text x="{left - 6}" y="{y(s) + 4}" font-size="10" text-anchor="end" '
            f'fill="{INK}">{round(s * 100)}%</text>'
        )
    for t in ticks:
        parts.append(
            f'<text x="{x(t)}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle" '
            f'fill="{INK}">{number(t, 0)}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{TOP + plot_h + 28}" font-size="10" '
        f'text-anchor="middle" fill="{MUTED}">{escape(time_label)}</text>'
    )
    at_risk_top = TOP + plot_h + 44
    parts.append(
        f'<text x="4" y="{at_risk_top}" font-size="10" fill="{MUTED}">Number at risk</text>'
    )
    for index, (name, fit) in enumerate(fits.items()):
        colour = SERIES[index % len(SERIES)]
        band_upper, band_lower, line = [], [], [f"{x(0)},{y(1)}"]
        previous = 1.0
        previous_band = (1.0, 1.0)
        for point in fit.curve:
            if point.events:
                line += [f"{x(point.time)},{y(previous)}", f"{x(point.time)},{y(point.survival)}"]
                previous = point.survival
            lower, upper = point.ci_lower, point.ci_upper
            if lower is not None and upper is not None:
                band_upper += [
                    f"{x(point.time)},{y(previous_band[1])}",
                    f"{x(point.time)},{y(upper)}",
                ]
                band_lower += [
                    f"{x(point.time)},{y(previous_band[0])}",
                    f"{x(point.time)},{y(lower)}",
                ]
                previous_band = (lower, upper)
        last_time = fit.curve[-1].time
        line.append(f"{x(last_time)},{y(previous)}")
        if band_upper:
            polygon = [f"{x(0)},{y(1)}", *band_upper, *reversed(band_lower), f"{x(0)},{y(1)}"]
            parts.append(
                f'<polygon class="km-band" points={quoteattr(" ".join(polygon))} '
                f'fill="{colour}" fill-opacity="0.15" stroke="none"/>'
            )
        parts.append(
            f'<polyline class="km-curve" points={quoteattr(" ".join(line))} fill="none" '
            f'stroke="{colour}" stroke-width="2"><title>{escape(name)}: median '
            f"{number(fit.median.time)} {escape(time_label)}</title></polyline>"
        )
        survival = 1.0
        for point in fit.curve:
            survival = point.survival
            mark = (
                f'<circle class="km-step" cx="{x(point.time)}" cy="{y(survival)}" r="3" '
                f'fill="{colour}" fill-opacity="0.01"><title>{escape(name)}, '
                f"{number(point.time)} {escape(time_label)}: {pct(survival)} "
                f"(95% CI {pct(point.ci_lower)} to {pct(point.ci_upper)}), "
                f"{point.at_risk} at risk</title></circle>"
            )
            parts.append(mark)
            if point.censored:
                parts.append(
                    f'<line class="km-censor" x1="{x(point.time)}" y1="{y(survival) - 4}" '
                    f'x2="{x(point.time)}" y2="{y(survival) + 4}" stroke="{colour}"/>'
                )
        row_y = at_risk_top + 16 * (index + 1)
        parts.append(
            f'<text x="4" y="{row_y}" font-size="10" fill="{colour}">{escape(name[:16])}</text>'
        )
        for t in ticks:
            at_risk = _at_risk(fit, t)
            parts.append(
                f'<text class="km-at-risk" x="{x(t)}" y="{row_y}" font-size="10" '
                f'text-anchor="middle" fill="{INK}">{at_risk}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _at_risk(fit: SurvivalFit, t: float) -> int:
    """Number still at risk at time t (R's n.risk shown under plots)."""
    for point in fit.curve:
        if point.time >= t:
            return point.at_risk
    return 0


@dataclass(frozen=True, slots=True)
class RateBar:
    label: str
    rate: float | None
    ci_lower: float | None
    ci_upper: float | None
    detail: str


def rate_bars_svg(*, chart_id: str, title: str, bars: Sequence[RateBar]) -> str:
    """Horizontal bars (0-100%) with Wilson interval whiskers."""
    if not bars:
        return ""
    row = 34
    height = TOP + row * len(bars) + 24
    left = 150
    plot_w = WIDTH - left - RIGHT

    def x(value: float) -> float:
        return round(left + plot_w * value, 1)

    parts = _svg_open(chart_id, title, height)
    for value in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{x(value)}" y1="{TOP}" x2="{x(value)}" y2="{TOP + row * len(bars)}" '
            f'stroke="#e3e6ea"/><text x="{x(value)}" y="{height - 6}" font-size="10" '
            f'text-anchor="middle" fill="{INK}">{round(value * 100)}%</text>'
        )
    for index, bar in enumerate(bars):
        top = TOP + row * index + 6
        parts.append(
            f'<text x="{left - 8}" y="{top + 15}" font-size="11" text-anchor="end" '
            f'fill="{INK}">{escape(bar.label)}</text>'
        )
        if bar.rate is None:
            continue
        hover = (
            f"<title>{escape(bar.label)}: {pct(bar.rate)} (95% CI {pct(bar.ci_lower)} to "
            f"{pct(bar.ci_upper)}), {escape(bar.detail)}</title>"
        )
        parts.append(
            f'<rect class="rate-bar" x="{left}" y="{top}" width="{x(bar.rate) - left}" '
            f'height="20" fill="{SERIES[index % len(SERIES)]}">{hover}</rect>'
        )
        if bar.ci_lower is not None and bar.ci_upper is not None:
            mid = top + 10
            parts.append(
                f'<line class="rate-ci" x1="{x(bar.ci_lower)}" y1="{mid}" x2="{x(bar.ci_upper)}" '
                f'y2="{mid}" stroke="{INK}" stroke-width="1.5">{hover}</line>'
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class BandPoint:
    x: float
    mean: float
    ci_lower: float | None
    ci_upper: float | None
    n: int


def mean_band_svg(
    *, chart_id: str, title: str, points: Sequence[BandPoint], x_label: str, y_label: str
) -> str:
    """A mean line with its 95% confidence band, e.g. change from baseline by week."""
    if not points:
        return ""
    plot_h = 200
    height = TOP + plot_h + 36
    plot_w = WIDTH - LEFT - RIGHT
    values = [p.mean for p in points]
    values += [v for p in points for v in (p.ci_lower, p.ci_upper) if v is not None]
    low, high = min(0.0, min(values)), max(0.0, max(values))
    span = (high - low) or 1.0
    x_end = max(p.x for p in points) or 1.0

    def x(value: float) -> float:
        return round(LEFT + plot_w * value / x_end, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - (value - low) / span), 1)

    parts = _svg_open(chart_id, title, height)
    parts.append(
        f'<line x1="{LEFT}" y1="{y(0)}" x2="{LEFT + plot_w}" y2="{y(0)}" stroke="{MUTED}"/>'
    )
    for value in sorted({low, 0.0, high}):
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4}" font-size="10" text-anchor="end" '
            f'fill="{INK}">{number(value)}</text>'
        )
    banded = [p for p in points if p.ci_lower is not None and p.ci_upper is not None]
    if len(banded) >= 2:
        upper = [f"{x(p.x)},{y(p.ci_upper)}" for p in banded]  # type: ignore[arg-type]
        lower = [f"{x(p.x)},{y(p.ci_lower)}" for p in reversed(banded)]  # type: ignore[arg-type]
        parts.append(
            f'<polygon class="mean-band" points={quoteattr(" ".join(upper + lower))} '
            f'fill="{SERIES[0]}" fill-opacity="0.18" stroke="none"/>'
        )
    line = " ".join(f"{x(p.x)},{y(p.mean)}" for p in points)
    parts.append(
        f'<polyline points={quoteattr(line)} fill="none" stroke="{SERIES[0]}" stroke-width="2"/>'
    )
    for p in points:
        parts.append(
            f'<circle class="mean-point" cx="{x(p.x)}" cy="{y(p.mean)}" r="3" fill="{SERIES[0]}">'
            f"<title>{escape(x_label)} {number(p.x, 0)}: {number(p.mean)} {escape(y_label)} "
            f"(95% CI {number(p.ci_lower)} to {number(p.ci_upper)}), n = {p.n}</title></circle>"
        )
        parts.append(
            f'<text x="{x(p.x)}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle" '
            f'fill="{INK}">{number(p.x, 0)}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{height - 4}" font-size="10" text-anchor="middle" '
        f'fill="{MUTED}">{escape(x_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
