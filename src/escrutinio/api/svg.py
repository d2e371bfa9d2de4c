"""Charts drawn on the server as inline SVG (no JavaScript, no CDN): the margin timeline
with its lead changes, the projection fan over time, and the interval bars of one
projection. Presentation only: every number drawn comes from an analysis result.

Each chart has a ``<title>`` and ``<desc>`` for screen readers and is followed on the page
by a table with the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

#: candidate colours in contest order (Okabe-Ito based, readable for colour-blind people)
PALETTE = ("#0b5fa5", "#c24e00", "#117a53", "#8a3ea8", "#8a6d00", "#b8336a", "#006b75",
           "#5a6e00")
FAN_LEVELS = ("0.99", "0.95", "0.9", "0.8", "0.5")


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _fmt(v: float) -> str:
    av = abs(v)
    if av >= 1e6:
        s = f"{v / 1e6:.1f}M"
    elif av >= 1e3:
        s = f"{v / 1e3:.0f}k"
    else:
        s = f"{v:.0f}"
    return s.replace("-", "−")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** len(str(int(abs(raw)))) / 10 if raw >= 1 else 1
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = (lo // step) * step
    ticks = []
    t = start
    while t <= hi + step / 2:
        if t >= lo - 1e-9:
            ticks.append(t)
        t += step
    return ticks


class _Frame:
    """Plot area with linear scales."""

    def __init__(self, width: int, height: int, x0: float, x1: float, y0: float, y1: float,
                 left: int = 64, right: int = 16, top: int = 16, bottom: int = 40) -> None:
        self.w, self.h = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)

    def x(self, v: float) -> float:
        return round(self.left + (v - self.x0) / (self.x1 - self.x0)
                     * (self.w - self.left - self.right), 1)

    def y(self, v: float) -> float:
        return round(self.top + (self.y1 - v) / (self.y1 - self.y0)
                     * (self.h - self.top - self.bottom), 1)


def _svg_open(width: int, height: int, title: str, desc: str, ident: str) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{ident}-t">{escape(title)}</title>',
            f'<desc id="{ident}-d">{escape(desc)}</desc>']


def _time_axis(f: _Frame, times: Sequence[float], labels: Sequence[str]) -> list[str]:
    """Labels under an ordinal axis (one slot per snapshot, however far apart in time:
    a count night has bursts and gaps); at most ~7 labels, the last always shown."""
    out = [f'<line class="axis" x1="{f.left}" x2="{f.w - f.right}" y1="{f.h - f.bottom}" '
           f'y2="{f.h - f.bottom}"/>']
    n = len(times)
    if not n:
        return out
    k = max(1, math.ceil(n / 7))
    shown = list(range(0, n, k))
    if shown[-1] != n - 1:
        if n - 1 - shown[-1] <= k / 2 and len(shown) > 1:
            shown[-1] = n - 1
        else:
            shown.append(n - 1)
    for i in shown:
        x = f.x(times[i])
        anchor = "end" if i == n - 1 and n > 1 else ("start" if i == 0 and n > 1 else "middle")
        out.append(f'<text class="tick" x="{x}" y="{f.h - f.bottom + 16}" '
                   f'text-anchor="{anchor}">{escape(labels[i])}</text>')
    return out


def _value_axis(f: _Frame) -> list[str]:
    out = []
    for t in _nice_ticks(f.y0, f.y1):
        y = f.y(t)
        out.append(f'<line class="grid" x1="{f.left}" x2="{f.w - f.right}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="tick" x="{f.left - 6}" y="{y + 4}" '
                   f'text-anchor="end">{_fmt(t)}</text>')
    if f.y0 < 0 < f.y1:
        y = f.y(0)
        out.append(f'<line class="zero" x1="{f.left}" x2="{f.w - f.right}" y1="{y}" y2="{y}"/>')
    return out


def timeline_svg(times: Sequence[datetime], margins: Sequence[int], tick_labels: Sequence[str],
                 point_titles: Sequence[str], flips: Sequence[int], *, title: str, desc: str,
                 above: str, below: str, colours: tuple[str, str], flip_label: str,
                 current: int | None = None, width: int = 760, height: int = 300) -> str:
    """Margin (first − second candidate) over time; ``flips`` are indices of the points
    after a lead change; ``current`` is highlighted (replay)."""
    ts = [float(i) for i in range(len(times))]  # ordinal: one slot per snapshot
    lo, hi = min([0, *margins]), max([0, *margins])
    pad = 0.08 * (hi - lo or 1)
    f = _Frame(width, height, 0, max(len(ts) - 1, 1), lo - pad, hi + pad)
    out = _svg_open(width, height, title, desc, "tl")
    if f.y1 > 0:
        out.append(f'<rect class="band-above" x="{f.left}" y="{f.top}" '
                   f'width="{width - f.left - f.right}" height="{max(0, f.y(0) - f.top)}" '
                   f'fill="{colours[0]}"/>')
        out.append(f'<text class="region" x="{f.left + 8}" y="{f.top + 16}" '
                   f'fill="{colours[0]}">{escape(above)}</text>')
    if f.y0 < 0:
        y = f.y(0)
        out.append(f'<rect class="band-below" x="{f.left}" y="{y}" '
                   f'width="{width - f.left - f.right}" height="{max(0, f.h - f.bottom - y)}" '
                   f'fill="{colours[1]}"/>')
        out.append(f'<text class="region" x="{f.left + 8}" y="{f.h - f.bottom - 8}" '
                   f'fill="{colours[1]}">{escape(below)}</text>')
    out += _value_axis(f) + _time_axis(f, ts, tick_labels)
    for i in flips:
        x = (f.x(ts[i - 1]) + f.x(ts[i])) / 2 if i > 0 else f.x(ts[i])
        out.append(f'<line class="flip" x1="{x}" x2="{x}" y1="{f.top}" '
                   f'y2="{f.h - f.bottom}"/>')
        right = x > f.left + 0.7 * (f.w - f.left - f.right)  # keep the label inside
        out.append(f'<text class="flip-label" x="{x - 4 if right else x + 4}" '
                   f'y="{f.h - f.bottom - 24}" text-anchor="{"end" if right else "start"}">'
                   f'{escape(flip_label)}</text>')
    if ts:
        pts = " ".join(f"{f.x(t)},{f.y(m)}" for t, m in zip(ts, margins, strict=True))
        out.append(f'<polyline class="line" points="{pts}"/>')
        for i, (t, m, tt) in enumerate(zip(ts, margins, point_titles, strict=True)):
            cls = "dot current" if i == current else "dot"
            fill = colours[0] if m >= 0 else colours[1]
            r = 6 if i == current else 3.5
            out.append(f'<circle class="{cls}" cx="{f.x(t)}" cy="{f.y(m)}" r="{r}" '
                       f'fill="{fill}"><title>{escape(tt)}</title></circle>')
    out.append("</svg>")
    return "\n".join(out)


def fan_svg(times: Sequence[datetime], medians: Sequence[float],
            intervals: Sequence[dict[str, tuple[float, float]]], raw: Sequence[int],
            tick_labels: Sequence[str], *, title: str, desc: str,
            final: float | None = None, final_label: str = "",
            current: int | None = None, width: int = 760, height: int = 320) -> str:
    """The projection fan over time: nested central intervals of the final margin, the
    projected median and the raw counted margin."""
    ts = [float(i) for i in range(len(times))]  # ordinal: one slot per snapshot
    vals = [*raw, *medians, 0]
    for iv in intervals:  # the scale follows the 90% bands; wider bands are clipped
        vals.extend(iv.get("0.9", ()))
    if final is not None:
        vals.append(final)
    lo, hi = min(vals), max(vals)
    pad = 0.06 * (hi - lo or 1)
    f = _Frame(width, height, 0, max(len(ts) - 1, 1), lo - pad, hi + pad)
    out = _svg_open(width, height, title, desc, "fan")
    out.append(f'<defs><clipPath id="fan-clip"><rect x="{f.left}" y="{f.top}" '
               f'width="{width - f.left - f.right}" height="{height - f.top - f.bottom}"/>'
               '</clipPath></defs>')
    out += _value_axis(f) + _time_axis(f, ts, tick_labels)
    out.append('<g clip-path="url(#fan-clip)">')
    for k, lev in enumerate(FAN_LEVELS):
        pts = [(t, iv[lev]) for t, iv in zip(ts, intervals, strict=True) if lev in iv]
        if len(pts) < 1:
            continue
        upper = " ".join(f"{f.x(t)},{f.y(b[1])}" for t, b in pts)
        lower = " ".join(f"{f.x(t)},{f.y(b[0])}" for t, b in reversed(pts))
        out.append(f'<polygon class="fan fan{k}" points="{upper} {lower}">'
                   f'<title>{float(lev) * 100:g}%</title></polygon>')
    out.append("</g>")
    if final is not None:
        y = f.y(final)
        out.append(f'<line class="final" x1="{f.left}" x2="{f.w - f.right}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="final-label" x="{f.w - f.right - 4}" y="{y - 6}" '
                   f'text-anchor="end">{escape(final_label)}</text>')
    if ts:
        med = " ".join(f"{f.x(t)},{f.y(m)}" for t, m in zip(ts, medians, strict=True))
        out.append(f'<polyline class="median" points="{med}"/>')
        rl = " ".join(f"{f.x(t)},{f.y(m)}" for t, m in zip(ts, raw, strict=True))
        out.append(f'<polyline class="raw" points="{rl}"/>')
        if current is not None and 0 <= current < len(ts):
            out.append(f'<circle class="dot current" cx="{f.x(ts[current])}" '
                       f'cy="{f.y(medians[current])}" r="6"/>')
    out.append("</svg>")
    return "\n".join(out)


def interval_svg(intervals: Sequence[tuple[float, float, float]], median: float,
                 counted: float, *, title: str, desc: str, median_label: str,
                 counted_label: str, left_label: str, right_label: str,
                 colours: tuple[str, str], width: int = 760, height: int = 170) -> str:
    """One projection's final margin: nested intervals (level, lower, upper) as bands on
    a margin axis, with the median, the counted margin and the tie line."""
    vals = [0.0, median, counted, *[v for _, a, b in intervals for v in (a, b)]]
    lo, hi = min(vals), max(vals)
    pad = 0.08 * (hi - lo or 1)
    x0, x1 = lo - pad, hi + pad
    left, right = 16, 16

    def x(v: float) -> float:
        return round(left + (v - x0) / (x1 - x0) * (width - left - right), 1)

    out = _svg_open(width, height, title, desc, "iv")
    mid = 70
    for k, (lev, a, b) in enumerate(sorted(intervals, key=lambda t: -t[0])):
        h = 16 + 8 * k
        out.append(f'<rect class="fan fan{min(k, 4)}" x="{x(a)}" y="{mid - h / 2}" '
                   f'width="{max(1.0, x(b) - x(a))}" height="{h}"><title>{lev * 100:g}%: '
                   f'{_fmt(a)} … {_fmt(b)}</title></rect>')
    for t in _nice_ticks(x0, x1, 6):
        out.append(f'<text class="tick" x="{x(t)}" y="{mid + 62}" text-anchor="middle">'
                   f'{_fmt(t)}</text>')
    if x0 < 0 < x1:
        out.append(f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="{mid - 48}" '
                   f'y2="{mid + 46}"/>')
    out.append(f'<line class="median-mark" x1="{x(median)}" x2="{x(median)}" y1="{mid - 30}" '
               f'y2="{mid + 30}"/><text class="mark-label" x="{x(median)}" y="{mid - 36}" '
               f'text-anchor="middle">{escape(median_label)}</text>')
    out.append(f'<circle class="counted-mark" cx="{x(counted)}" cy="{mid + 38}" r="5"/>'
               f'<text class="mark-label" x="{x(counted)}" y="{mid + 50}" '
               f'text-anchor="middle" dy="0">{escape(counted_label)}</text>')
    out.append(f'<text class="region" x="{left}" y="14" fill="{colours[1]}">'
               f'{escape(left_label)}</text>')
    out.append(f'<text class="region" x="{width - right}" y="14" text-anchor="end" '
               f'fill="{colours[0]}">{escape(right_label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
