"""Pure: a score trajectory as an inline SVG string (no JavaScript, no CSS, CSP-safe).

Severity bands are shaded behind the line, treatment sessions are dashed vertical markers, and
every point carries a <title> so a screen reader (and a hover) gives date and score. The chart is
an illustration; the table beside it in the template is the record. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30
# Therapy visits beside the dosing sessions (blue dashes): kind -> (stroke, what the title says).
VISIT_MARKERS = {
    "preparation": ("#1e7b34", "Preparation visit"),
    "integration": ("#6f3fa0", "Integration visit"),
}
# Light to dark as severity rises; presentation attributes only (CSP forbids inline styles).
BAND_FILLS = ("#e6f4ea", "#f3f7d9", "#fff3cd", "#ffe0c2", "#fbd0d0", "#f4b6b6")


@dataclass(frozen=True, slots=True)
class Band:
    low: Decimal
    high: Decimal
    label: str


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    score: Decimal


def trajectory_svg(
    *,
    chart_id: str,
    title: str,
    points: Sequence[Point],
    bands: Sequence[Band],
    score_range: tuple[Decimal, Decimal] | None,
    sessions: Sequence[datetime] = (),
    visits: Sequence[tuple[datetime, str]] = (),
) -> str:
    """`visits`: therapy visits to mark beside the dosing sessions, as (when, kind) with kind
    "preparation" or "integration" (dotted green and purple lines, each with a <title>)."""
    if not points:
        return ""
    times = [p.at for p in points] + list(sessions) + [at for at, _ in visits]
    start, end = min(times), max(times)
    if end - start < timedelta(days=1):
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    scores = [p.score for p in points]
    low, high = score_range or (min(Decimal(0), min(scores)), max(scores) or Decimal(1))
    span_t = (end - start).total_seconds()
    span_y = float(high - low) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return round(LEFT + plot_w * (moment - start).total_seconds() / span_t, 1)

    def y(value: Decimal) -> float:
        return round(TOP + plot_h * (1 - float(value - low) / span_y), 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="{chart_id}-t" class="trajectory" id="{chart_id}">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
    ]
    for index, band in enumerate(bands):
        # A band covers its whole-number scores: from low - 0.5 to high + 0.5, clipped.
        top_v = min(high, band.high + Decimal("0.5"))
        bottom_v = max(low, band.low - Decimal("0.5"))
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{y(top_v)}" width="{plot_w}" '
            f'height="{round(y(bottom_v) - y(top_v), 1)}" fill="{BAND_FILLS[index % 6]}">'
            f"<title>{escape(band.label)} ({band.low}-{band.high})</title></rect>"
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{y(top_v) + 11}" font-size="9" '
            f'text-anchor="end" fill="#5a6270">{escape(band.label)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#5a6270"/>'
    )
    for value in (low, high):
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4}" font-size="10" text-anchor="end" '
            f'fill="#1b1f24">{value}</text>'
        )
    for moment in (start, end):
        parts.append(
            f'<text x="{x(moment)}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle" '
            f'fill="#1b1f24">{moment:%Y-%m-%d}</text>'
        )
    for moment in sessions:
        parts.append(
            f'<line class="session" x1="{x(moment)}" y1="{TOP}" x2="{x(moment)}" '
            f'y2="{TOP + plot_h}" stroke="#0b5cad" stroke-dasharray="3 3">'
            f"<title>Treatment session {moment:%Y-%m-%d}</title></line>"
        )
    for moment, kind in visits:
        colour, label = VISIT_MARKERS.get(kind, ("#5a6270", "Therapy visit"))
        parts.append(
            f'<line class="visit visit-{escape(kind)}" x1="{x(moment)}" y1="{TOP}" '
            f'x2="{x(moment)}" y2="{TOP + plot_h}" stroke="{colour}" stroke-dasharray="1 3" '
            f'stroke-width="2"><title>{label} {moment:%Y-%m-%d}</title></line>'
        )
    ordered = sorted(points, key=lambda p: p.at)
    coords = " ".join(f"{x(p.at)},{y(p.score)}" for p in ordered)
    parts.append(
        f'<polyline points={quoteattr(coords)} fill="none" stroke="#1b1f24" stroke-width="2"/>'
    )
    for p in ordered:
        parts.append(
            f'<circle class="point" cx="{x(p.at)}" cy="{y(p.score)}" r="4" fill="#1b1f24">'
            f"<title>{p.at:%Y-%m-%d}: {p.score}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
