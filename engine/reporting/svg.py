"""Inline SVG charts drawn in Python (no JavaScript library, no network): lines, heat grid, funnel, bars.

Every mark that stands for cases carries ``data-k`` = a drill-down key; the page's small
script shows the case ids behind that key when the mark is clicked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from html import escape

__all__ = ["bars", "funnel", "heat_grid", "line_chart"]

PALETTE = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828", "#00838f")


def _k(key: str | None) -> str:
    return f' data-k="{escape(key)}" class="drill"' if key else ""


def line_chart(labels: Sequence[str], series: Mapping[str, Sequence[tuple[float | None, str | None]]],
               *, unit: str = "", width: int = 620, height: int = 220, ymax: float | None = None) -> str:
    """Trend lines: one polyline per series over the period ``labels``; points are drillable."""
    pad_l, pad_b, pad_t, pad_r = 44, 38, 14, 12
    values = [v for s in series.values() for v, _ in s if v is not None]
    top = ymax if ymax is not None else max(values + [1.0]) * 1.1
    w, h = width - pad_l - pad_r, height - pad_b - pad_t
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return pad_l + (w * (i + 0.5) / n)

    def y(v: float) -> float:
        return pad_t + h - h * (v / top if top else 0)

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for frac in (0, 0.5, 1):
        yy = y(top * frac)
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e0e0e0"/>'
                   f'<text x="{pad_l - 6}" y="{yy + 4:.1f}" text-anchor="end" class="ax">{top * frac:.0f}{unit}</text>')
    longest = max((len(lb) for lb in labels), default=1)
    step = max(1, math.ceil(n * (longest * 6.2 + 12) / w))  # labels never overlap
    for i, lb in enumerate(labels):
        if i % step == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - 18}" text-anchor="middle" class="ax">{escape(lb)}</text>')
    for j, (name, pts) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        coords = [(x(i), y(v), v, k) for i, (v, k) in enumerate(pts) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for a, b, v, k in coords:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4.5" fill="{color}"{_k(k)}>'
                       f'<title>{escape(name)}: {v:.1f}{unit}</title></circle>')
        lx = pad_l + 8 + j * 150
        out.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="{height - 3}" class="ax">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def heat_grid(rows: Sequence[str], cols: Sequence[str], cells: Mapping[tuple[int, int], tuple[int, str]],
              *, cell: int = 22, title: str = "") -> str:
    """A rows x cols heat map (e.g. weekday x hour); ``cells[(r, c)] = (count, drill key)``."""
    left, top = 44, 22
    width, height = left + cell * len(cols) + 10, top + cell * len(rows) + 10
    peak = max([c for c, _ in cells.values()] + [1])
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for c, lb in enumerate(cols):
        if c % 2 == 0:
            out.append(f'<text x="{left + c * cell + cell / 2}" y="{top - 6}" text-anchor="middle" class="ax">{escape(lb)}</text>')
    for r, lb in enumerate(rows):
        out.append(f'<text x="{left - 6}" y="{top + r * cell + cell * 0.65}" text-anchor="end" class="ax">{escape(lb)}</text>')
        for c in range(len(cols)):
            count, key = cells.get((r, c), (0, ""))
            alpha = 0.06 + 0.94 * count / peak if count else 0.0
            fill = f"rgba(198,40,40,{alpha:.2f})" if count else "#fafafa"
            out.append(f'<rect x="{left + c * cell}" y="{top + r * cell}" width="{cell - 2}" height="{cell - 2}" '
                       f'rx="3" fill="{fill}"{_k(key if count else None)}><title>{escape(title)} '
                       f'{escape(lb)} {escape(cols[c])}: {count}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def funnel(stages: Sequence[tuple[str, int, str, str]], *, width: int = 620) -> str:
    """A funnel of levels: ``(label, cases, drill key, note)`` per stage, widths relative to the widest."""
    bar_h, gap, left, right = 34, 10, 92, 170
    height = len(stages) * (bar_h + gap) + 8
    first = max([count for _, count, _, _ in stages] + [1])  # some cases start below e-level
    span = width - left - right
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for i, (label, count, key, note) in enumerate(stages):
        w = max(3.0, span * count / first)
        x0 = left + (span - w) / 2
        y0 = 4 + i * (bar_h + gap)
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<text x="{left - 8}" y="{y0 + bar_h / 2 + 5}" text-anchor="end" class="fn">{escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y0}" width="{w:.1f}" height="{bar_h}" rx="5" fill="{color}" '
                   f'opacity="0.85"{_k(key)}><title>{escape(label)}: {count}</title></rect>')
        out.append(f'<text x="{left + span + 8}" y="{y0 + bar_h / 2 + 5}" class="fn"><tspan font-weight="700">'
                   f'{count}</tspan> {escape(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(items: Sequence[tuple[str, float, str | None]], *, width: int = 420, unit: str = "") -> str:
    """Horizontal bars ``(label, value, drill key)``, longest first as given."""
    bar_h, left = 20, 170
    height = len(items) * (bar_h + 6) + 6
    peak = max([v for _, v, _ in items] + [1.0])
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for i, (label, value, key) in enumerate(items):
        y0 = 4 + i * (bar_h + 6)
        w = max(2.0, (width - left - 50) * value / peak)
        out.append(f'<text x="{left - 6}" y="{y0 + 14}" text-anchor="end" class="ax">{escape(label[:28])}</text>'
                   f'<rect x="{left}" y="{y0}" width="{w:.1f}" height="{bar_h}" rx="3" fill="#1565c0"{_k(key)}>'
                   f'<title>{escape(label)}: {value:.0f}{unit}</title></rect>'
                   f'<text x="{left + w + 5:.1f}" y="{y0 + 14}" class="ax">{value:.0f}{unit}</text>')
    out.append("</svg>")
    return "".join(out)
