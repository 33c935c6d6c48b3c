"""Plots as inline SVG strings, written here with no plotting library and no JavaScript: line charts
(long series thinned with M4, see ``downsample``) and scatter charts with numeric or category x."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from yprov_wf.viz.downsample import m4

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="11"'
LOG_SPAN = 1000  # a y range over three decades or more (all values positive) is drawn on a log axis
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 62, 22, 26, 40


@dataclass(slots=True)
class Line:
    """One series of a line chart: x and y are numpy arrays (or sequences) of one length."""

    label: str
    x: Any
    y: Any


@dataclass(slots=True)
class Point:
    """One point of a scatter chart; ``x`` is a number or a category (any other value)."""

    label: str
    x: Any
    y: float


def line_chart(lines: Sequence[Line], *, title: str, x_label: str, y_label: str = "", width: int = 560,
               height: int = 300) -> str:
    """An SVG line chart; each line is thinned to at most ~4 points per horizontal pixel (M4), and y is
    drawn on a log axis when all values are positive and span ``LOG_SPAN`` or more."""
    buckets = max(1, width - _MARGIN_LEFT - _MARGIN_RIGHT)
    drawn = [(ln.label, *m4(ln.x, ln.y, buckets)) for ln in lines]
    xs = [x for _, x, _ in drawn if len(x)]
    ys = [y for _, _, y in drawn if len(y)]
    if not xs:
        return _empty(title, width, height)
    import numpy as np

    x_lo, x_hi = min(float(x[0]) for x in xs), max(float(x[-1]) for x in xs)
    y_lo, y_hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
    log_y = y_lo > 0 and y_hi / y_lo >= LOG_SPAN  # e.g. a loss falling over decades
    if log_y:
        drawn = [(label, x, np.log10(y)) for label, x, y in drawn]
        y_ticks = _log_ticks(math.log10(y_lo), math.log10(y_hi))
    else:
        y_ticks = _ticks(y_lo, y_hi)
    frame = _Frame(width, height, _ticks(x_lo, x_hi), y_ticks)
    parts = [frame.axes(title, x_label, f"{y_label} (log scale)".strip() if log_y else y_label)]
    for i, (_, x, y) in enumerate(drawn):
        if not len(x):
            continue
        color = PALETTE[i % len(PALETTE)]
        px, py = frame.px(x), frame.py(y)
        if len(x) == 1:
            parts.append(f'<circle cx="{px[0]:.1f}" cy="{py[0]:.1f}" r="3" fill="{color}"/>')
        else:
            points = " ".join(map("{:.1f},{:.1f}".format, px.tolist(), py.tolist()))
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                         f'stroke-linejoin="round" points="{points}"/>')
    parts.append(_legend([label for label, _, _ in drawn], width))
    return _svg(title, width, height, parts)


def scatter_chart(points: Sequence[Point], *, title: str, x_label: str, y_label: str, width: int = 420,
                  height: int = 280) -> str:
    """An SVG scatter chart of runs: numeric x on a linear axis, anything else as categories."""
    import numpy as np

    pts = [p for p in points if p.y is not None and math.isfinite(p.y)]
    if not pts:
        return _empty(title, width, height)
    numeric = all(isinstance(p.x, (int, float)) and not isinstance(p.x, bool) and math.isfinite(p.x) for p in pts)
    log_x = False
    if numeric:
        x = np.array([float(p.x) for p in pts])
        lo, hi = float(x.min()), float(x.max())
        log_x = lo > 0 and hi / lo >= 100  # e.g. learning rates: spread evenly on a log axis
        if log_x:
            x = np.log10(x)
            x_ticks = _log_ticks(float(x.min()), float(x.max()))
        else:
            pad = (hi - lo) * 0.05 or abs(lo) * 0.05 or 0.5
            x_ticks = _ticks(lo - pad, hi + pad)
    else:
        cats = sorted({str(p.x) for p in pts})
        x = np.array([cats.index(str(p.x)) for p in pts], dtype=float)
        x_ticks = [(-0.5, ""), *((float(i), c) for i, c in enumerate(cats)), (len(cats) - 0.5, "")]
    y = np.array([p.y for p in pts])
    y_pad = (float(y.max()) - float(y.min())) * 0.05
    frame = _Frame(width, height, x_ticks, _ticks(float(y.min()) - y_pad, float(y.max()) + y_pad))
    parts = [frame.axes(title, x_label + (" (log scale)" if log_x else ""), y_label)]
    for p, px, py in zip(pts, frame.px(x).tolist(), frame.py(y).tolist()):
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{PALETTE[0]}" fill-opacity="0.8">'
                     f'<title>{escape(p.label)}: {escape(str(p.x))} → {p.y:.6g}</title></circle>')
    return _svg(title, width, height, parts)


class _Frame:
    """Plot area geometry: maps data to pixels and draws axes, grid and tick labels."""

    def __init__(self, width: int, height: int, x_ticks: list[tuple[float, str]],
                 y_ticks: list[tuple[float, str]]) -> None:
        self.width, self.height = width, height
        self.x_ticks, self.y_ticks = x_ticks, y_ticks
        self.x0, self.x1 = x_ticks[0][0], x_ticks[-1][0]
        self.y0, self.y1 = y_ticks[0][0], y_ticks[-1][0]
        self.left, self.right = _MARGIN_LEFT, width - _MARGIN_RIGHT
        self.top, self.bottom = _MARGIN_TOP, height - _MARGIN_BOTTOM

    def px(self, x: Any) -> Any:
        return self.left + (x - self.x0) * ((self.right - self.left) / ((self.x1 - self.x0) or 1.0))

    def py(self, y: Any) -> Any:
        return self.bottom - (y - self.y0) * ((self.bottom - self.top) / ((self.y1 - self.y0) or 1.0))

    def axes(self, title: str, x_label: str, y_label: str) -> str:
        import numpy as np

        out = [f'<text x="{self.width / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
        for value, text in self.y_ticks:
            y = float(self.py(np.float64(value)))
            out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                       f'<text x="{self.left - 4}" y="{y + 3.5:.1f}" text-anchor="end">{escape(text)}</text>')
        for value, text in self.x_ticks:
            x = float(self.px(np.float64(value)))
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.bottom}" y2="{self.bottom + 4}" stroke="#555"/>'
                       f'<text x="{x:.1f}" y="{self.bottom + 15}" text-anchor="middle">{escape(text)}</text>')
        out.append(f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                   f'height="{self.bottom - self.top}" fill="none" stroke="#555"/>')
        out.append(f'<text x="{(self.left + self.right) / 2:.0f}" y="{self.height - 6}" '
                   f'text-anchor="middle">{escape(x_label)}</text>')
        if y_label:
            cy = (self.top + self.bottom) / 2
            out.append(f'<text x="12" y="{cy:.0f}" text-anchor="middle" '
                       f'transform="rotate(-90 12 {cy:.0f})">{escape(y_label)}</text>')
        return "".join(out)


def _legend(labels: list[str], width: int) -> str:
    if len(labels) < 2 and not any(labels):
        return ""
    out, y = [], _MARGIN_TOP + 12
    for i, label in enumerate(labels[:10]):
        color = PALETTE[i % len(PALETTE)]
        x = width - _MARGIN_RIGHT - 8
        out.append(f'<line x1="{x - 18}" x2="{x - 4}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2"/>'
                   f'<text x="{x - 22}" y="{y}" text-anchor="end" stroke="#fff" stroke-width="3" '
                   f'paint-order="stroke">{escape(label)}</text>')
        y += 14
    return '<g class="legend">' + "".join(out) + "</g>"


def _ticks(lo: float, hi: float, target: int = 5) -> list[tuple[float, str]]:
    """'Nice' ticks (1, 2, 2.5, 5 × 10^k) covering [lo, hi]; the first and last bound the axis."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi == lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start, stop = math.floor(lo / step), math.ceil(hi / step)
    big = max(abs(start * step), abs(stop * step))
    digits = max(1, math.floor(math.log10(big)) - math.floor(math.log10(step)) + 2) if big else 1
    return [(k * step, _fmt(k * step, digits)) for k in range(start, stop + 1)]


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks at the powers of ten covering [lo, hi] (given as log10 values)."""
    return [(float(k), _fmt(10.0 ** k)) for k in range(math.floor(lo), math.ceil(hi) + 1)]


def _fmt(v: float, digits: int = 2) -> str:
    """A tick label: plain for ordinary sizes, else with the significant digits that tell ticks apart."""
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits}g}"
    return f"{v:.6g}"


def _empty(title: str, width: int, height: int) -> str:
    return _svg(title, width, height, [
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#777">no finite values</text>',
    ])


def _svg(title: str, width: int, height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" {_FONT}><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")
