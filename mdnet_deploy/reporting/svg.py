"""The four chart types the HTML report needs, drawn as inline SVG strings.

Why hand-built SVG rather than a plotting library: the report must open from
an e-mail attachment with no server and no network, stay small (a 20-row
report is tens of kB, where Plotly's inlined bundle alone is 4.6 MB) and add
nothing to the device-side install. Four chart types cover the report:
``scatter`` (Pareto plots, with error bars and fronts), ``hbars`` (per-layer
profiles, sensitivity ranking), ``lines`` (power traces, guard steps) and
``ranges`` (latency distributions). Hover text is SVG ``<title>`` (the
browser's own tooltip, no script); every drawn data element has the class
``mark`` so a test can check that a chart is not an empty frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

W, H = 640, 400
PAD_L, PAD_R, PAD_T, PAD_B = 64, 24, 16, 48
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
SHAPES = ("circle", "square", "triangle", "diamond")
#: A scatter's x axis turns logarithmic when its largest value is this many times its smallest.
LOG_RATIO = 10.0


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _f(v: float) -> str:
    return f"{v:.1f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


class _Axes:
    """Linear data -> pixel mapping with a little margin around the data."""

    def __init__(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        width: int = W,
        height: int = H,
        y_from_zero: bool = False,
        pad_l: int = PAD_L,
        log_x: bool = False,
    ) -> None:
        self.w, self.h, self.pad_l, self.log_x = width, height, pad_l, log_x
        if log_x:
            xs = [math.log10(x) for x in xs]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y_from_zero:
            y0 = min(0.0, y0)
        dx = (x1 - x0) or (abs(x0) * 0.1 or 1.0)
        dy = (y1 - y0) or (abs(y0) * 0.1 or 1.0)
        self.x0, self.x1 = x0 - 0.06 * dx, x1 + 0.06 * dx
        self.y0, self.y1 = (y0 if y_from_zero and y0 == 0 else y0 - 0.08 * dy), y1 + 0.08 * dy

    def px(self, x: float) -> float:
        if self.log_x:
            x = math.log10(max(x, 1e-12))
        return self.pad_l + (x - self.x0) / (self.x1 - self.x0) * (self.w - self.pad_l - PAD_R)

    def x_ticks(self) -> list[float]:
        if not self.log_x:
            return nice_ticks(self.x0, self.x1)
        # 1, 2, 5 in every decade the axis spans (values, not logarithms)
        ticks = [m * 10.0**e for e in range(math.floor(self.x0), math.ceil(self.x1) + 1) for m in (1, 2, 5)]
        return [t for t in ticks if self.x0 <= math.log10(t) <= self.x1]

    def py(self, y: float) -> float:
        return self.h - PAD_B - (y - self.y0) / (self.y1 - self.y0) * (self.h - PAD_T - PAD_B)

    def frame(self, x_label: str, y_label: str, y_ticks: bool = True, x_integer: bool = False) -> list[str]:
        out = [
            f'<rect class="frame" x="{self.pad_l}" y="{PAD_T}" width="{self.w - self.pad_l - PAD_R}" '
            f'height="{self.h - PAD_T - PAD_B}" fill="none" stroke="#999"/>'
        ]
        for t in self.x_ticks():
            if x_integer and t != int(t):
                continue
            x = self.px(t)
            out.append(
                f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{PAD_T}" y2="{self.h - PAD_B}" stroke="#eee"/>'
                f'<text x="{_f(x)}" y="{self.h - PAD_B + 16}" text-anchor="middle">{_fmt_tick(t)}</text>'
            )
        for t in nice_ticks(self.y0, self.y1) if y_ticks else []:
            y = self.py(t)
            out.append(
                f'<line x1="{self.pad_l}" x2="{self.w - PAD_R}" y1="{_f(y)}" y2="{_f(y)}" stroke="#eee"/>'
                f'<text x="{self.pad_l - 6}" y="{_f(y + 4)}" text-anchor="end">{_fmt_tick(t)}</text>'
            )
        out.append(
            f'<text x="{(self.pad_l + self.w - PAD_R) / 2:.0f}" y="{self.h - 10}" text-anchor="middle" class="axis">{escape(x_label)}</text>'
        )
        out.append(
            f'<text transform="translate(14 {(PAD_T + self.h - PAD_B) / 2:.0f}) rotate(-90)" text-anchor="middle" class="axis">{escape(y_label)}</text>'
        )
        return out


def _svg(name: str, body: Sequence[str], width: int = W, height: int = H, title: str = "") -> str:
    label = f' aria-label="{escape(title)}"' if title else ""
    return (
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img"{label} xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _marker(shape: str, x: float, y: float, fill: str, r: float = 5.5) -> str:
    if shape == "square":
        return f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}" fill="{fill}"'
    if shape == "triangle":
        return f'<polygon points="{_f(x)},{_f(y - r * 1.2)} {_f(x - r * 1.1)},{_f(y + r * 0.8)} {_f(x + r * 1.1)},{_f(y + r * 0.8)}" fill="{fill}"'
    if shape == "diamond":
        return f'<polygon points="{_f(x)},{_f(y - r * 1.3)} {_f(x + r)},{_f(y)} {_f(x)},{_f(y + r * 1.3)} {_f(x - r)},{_f(y)}" fill="{fill}"'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="{fill}"'


# -- scatter (Pareto) ---------------------------------------------------------------------
@dataclass
class Point:
    x: float
    y: float
    label: str
    tooltip: str
    color: str = PALETTE[0]
    shape: str = "circle"
    x_ci: tuple[float, float] | None = None
    y_ci: tuple[float, float] | None = None
    row_id: str = ""


@dataclass
class Front:
    """Indices into the points, in x order, drawn as a step line."""

    indices: list[int]
    color: str
    label: str = ""
    y_better: str = "higher"


def scatter(
    name: str, points: Sequence[Point], x_label: str, y_label: str, fronts: Sequence[Front] = (), title: str = ""
) -> str:
    xs = [v for p in points for v in ([p.x] + list(p.x_ci or ()))]
    ys = [v for p in points for v in ([p.y] + list(p.y_ci or ()))]
    # Latencies of a checkpoint and an INT8 engine differ 10-100x: a log axis keeps the fast ones apart.
    log_x = min(xs) > 0 and max(xs) / min(xs) >= LOG_RATIO
    ax = _Axes(xs, ys, log_x=log_x)
    body = ax.frame(x_label + (" (log scale)" if log_x else ""), y_label)
    placed: list[tuple[float, float, float, float]] = []
    for f in fronts:  # under the marks
        pts = [(ax.px(points[i].x), ax.py(points[i].y)) for i in f.indices]
        if len(pts) == 1:
            x, y = pts[0]
            body.append(
                f'<circle class="mark front" cx="{_f(x)}" cy="{_f(y)}" r="10" fill="none" stroke="{f.color}" stroke-width="1.5"/>'
            )
            continue
        # A staircase: between two optimal points, the better of the two y values holds until the next x.
        d = [f"M{_f(pts[0][0])},{_f(pts[0][1])}"]
        for x2, y2 in pts[1:]:
            d.append(f"H{_f(x2)}V{_f(y2)}")
        body.append(
            f'<path class="mark front" d="{"".join(d)}" fill="none" stroke="{f.color}" stroke-width="2" '
            f'stroke-dasharray="6 3" opacity="0.8"><title>Pareto front{": " + escape(f.label) if f.label else ""}</title></path>'
        )
    for p in points:
        x, y = ax.px(p.x), ax.py(p.y)
        parts = []
        if p.x_ci:
            a, b = ax.px(p.x_ci[0]), ax.px(p.x_ci[1])
            parts.append(
                f'<path class="errbar" d="M{_f(a)},{_f(y)}H{_f(b)}M{_f(a)},{_f(y - 4)}V{_f(y + 4)}M{_f(b)},{_f(y - 4)}V{_f(y + 4)}" stroke="{p.color}"/>'
            )
        if p.y_ci:
            a, b = ax.py(p.y_ci[0]), ax.py(p.y_ci[1])
            parts.append(
                f'<path class="errbar" d="M{_f(x)},{_f(a)}V{_f(b)}M{_f(x - 4)},{_f(a)}H{_f(x + 4)}M{_f(x - 4)},{_f(b)}H{_f(x + 4)}" stroke="{p.color}"/>'
            )
        parts.append(_marker(p.shape, x, y, p.color) + ' stroke="#fff" stroke-width="1"/>')
        right = x > 0.7 * W  # labels near the right edge go to the left of their mark
        anchor = ' text-anchor="end"' if right else ""
        lx, ly = _free_spot(placed, x - 8 if right else x + 8, y - 7, 5.6 * len(p.label), right)
        parts.append(f'<text x="{_f(lx)}" y="{_f(ly)}" class="pl"{anchor}>{escape(p.label)}</text>')
        body.append(
            f'<g class="mark pt" data-row="{escape(p.row_id)}"><title>{escape(p.tooltip)}</title>{"".join(parts)}</g>'
        )
    return _svg(name, body, title=title)


def _free_spot(
    placed: list[tuple[float, float, float, float]], x: float, y: float, width: float, right: bool
) -> tuple[float, float]:
    """A label position that overlaps no label placed before (tries below, then above); records it."""
    left = x - width if right else x
    for dy in (0, 12, -12, 24, -24, 36, -36, 48):
        box = (left, y + dy - 10, left + width, y + dy + 2)
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            placed.append(box)
            return x, y + dy
    placed.append((left, y - 10, left + width, y + 2))
    return x, y


# -- horizontal bars ------------------------------------------------------------------------
@dataclass
class Bar:
    label: str
    value: float
    tooltip: str = ""
    color: str = PALETTE[0]
    text: str = ""  # printed after the bar


def hbars(
    name: str,
    bars: Sequence[Bar],
    x_label: str,
    ref: tuple[float, str] | None = None,
    title: str = "",
    label_width: int = 260,
) -> str:
    row_h = 18
    height = PAD_T + PAD_B + row_h * max(len(bars), 1)
    values = [b.value for b in bars] + ([ref[0]] if ref else [])
    lo = min(0.0, min(values))
    hi = max(values) if max(values) > lo else lo + 1.0
    width = W + 140
    ax = _Axes([lo, hi * 1.12], [0, 1], width=width, height=height, pad_l=label_width)
    ax.x0 = lo  # bars start at the axis
    body = ax.frame(x_label, "", y_ticks=False)
    for i, b in enumerate(bars):
        y = PAD_T + i * row_h + 3
        x0, x1 = ax.px(min(0.0, b.value)), ax.px(max(0.0, b.value))
        body.append(
            f'<g class="mark bar"><title>{escape(b.tooltip or b.label)}</title>'
            f'<rect x="{_f(x0)}" y="{y}" width="{_f(max(x1 - x0, 1.0))}" height="{row_h - 6}" fill="{b.color}"/>'
            f'<text x="{label_width - 6}" y="{y + row_h - 8}" text-anchor="end" class="bl">{escape(_clip(b.label, 40))}</text>'
            f'<text x="{_f(x1 + 4)}" y="{y + row_h - 8}" class="bv">{escape(b.text)}</text></g>'
        )
    if ref:
        x = ax.px(ref[0])
        body.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{PAD_T}" y2="{height - PAD_B}" stroke="#333" stroke-dasharray="4 3"/>'
            f'<text x="{_f(x + 3)}" y="{PAD_T + 10}" class="pl">{escape(ref[1])}</text>'
        )
    return _svg(name, body, width=width, height=height, title=title)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]


# -- lines ------------------------------------------------------------------------------------
@dataclass
class Series:
    xs: Sequence[float]
    ys: Sequence[float]
    label: str
    color: str = PALETTE[0]
    points: bool = False  # draw a dot at each value (few values: guard steps)
    tooltips: Sequence[str] = field(default_factory=list)


def lines(
    name: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    band: tuple[float, float, str] | None = None,
    hlines: Sequence[tuple[float, str, str]] = (),
    title: str = "",
    y_from_zero: bool = False,
    x_integer: bool = False,
) -> str:
    xs = [x for s in series for x in s.xs] + ([band[0], band[1]] if band else [])
    if x_integer:  # counts: whole-number ticks, and room around a single value
        xs += [min(xs) - 0.5, max(xs) + 0.5]
    ys = [y for s in series for y in s.ys] + [h[0] for h in hlines]
    ax = _Axes(xs, ys, y_from_zero=y_from_zero)
    body = ax.frame(x_label, y_label, x_integer=x_integer)
    if band:
        a, b = ax.px(band[0]), ax.px(band[1])
        body.append(
            f'<rect x="{_f(a)}" y="{PAD_T}" width="{_f(max(b - a, 1))}" height="{H - PAD_T - PAD_B}" fill="#fdd835" opacity="0.18"/>'
            f'<text x="{_f(a + 4)}" y="{PAD_T + 12}" class="pl">{escape(band[2])}</text>'
        )
    for y, label, col in hlines:
        py = ax.py(y)
        body.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{_f(py)}" y2="{_f(py)}" stroke="{col}" stroke-dasharray="5 4"/>'
            f'<text x="{W - PAD_R - 4}" y="{_f(py - 4)}" text-anchor="end" class="pl">{escape(label)}</text>'
        )
    for s in series:
        d = "".join(
            ("M" if i == 0 else "L") + f"{_f(ax.px(x))},{_f(ax.py(y))}" for i, (x, y) in enumerate(zip(s.xs, s.ys))
        )
        body.append(
            f'<path class="mark line" d="{d}" fill="none" stroke="{s.color}" stroke-width="1.6"><title>{escape(s.label)}</title></path>'
        )
        if s.points:
            for i, (x, y) in enumerate(zip(s.xs, s.ys)):
                tip = s.tooltips[i] if i < len(s.tooltips) else f"{s.label}: {x:g}, {y:g}"
                body.append(
                    f'<circle class="mark" cx="{_f(ax.px(x))}" cy="{_f(ax.py(y))}" r="4" fill="{s.color}"><title>{escape(tip)}</title></circle>'
                )
    return _svg(name, body, title=title)


# -- latency ranges -------------------------------------------------------------------------------
@dataclass
class Range:
    label: str
    stats: dict[str, float]  # min, p50, p90, p99, max (any may be missing)
    samples: Sequence[float] = ()
    color: str = PALETTE[0]


def ranges(name: str, items: Sequence[Range], x_label: str, title: str = "", label_width: int = 260) -> str:
    row_h = 30
    height = PAD_T + PAD_B + row_h * max(len(items), 1)
    width = W + 140
    vals = [v for it in items for v in it.stats.values() if v is not None] + [v for it in items for v in it.samples]
    ax = _Axes(vals or [0.0, 1.0], [0, 1], width=width, height=height, pad_l=label_width)
    body = ax.frame(x_label, "", y_ticks=False)
    for i, it in enumerate(items):
        yc = PAD_T + i * row_h + row_h / 2
        s = it.stats
        lo = s.get("min", s.get("p50"))
        hi = s.get("max", s.get("p99", s.get("p50")))
        tip = ", ".join(f"{k} {v:.4g} ms" for k, v in s.items() if v is not None)
        parts = [
            f'<text x="{label_width - 6}" y="{_f(yc + 4)}" text-anchor="end" class="bl">{escape(_clip(it.label, 40))}</text>'
        ]
        if lo is not None and hi is not None:
            parts.append(
                f'<line x1="{_f(ax.px(lo))}" x2="{_f(ax.px(hi))}" y1="{_f(yc)}" y2="{_f(yc)}" stroke="{it.color}"/>'
            )
        if s.get("p50") is not None and s.get("p90") is not None:
            a, b = ax.px(s["p50"]), ax.px(s["p90"])
            parts.append(
                f'<rect x="{_f(a)}" y="{_f(yc - 7)}" width="{_f(max(b - a, 2))}" height="14" fill="{it.color}" opacity="0.35" stroke="{it.color}"/>'
            )
        for key, hh in (("p50", 9), ("p99", 6)):
            if s.get(key) is not None:
                x = ax.px(s[key])
                parts.append(
                    f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(yc - hh)}" y2="{_f(yc + hh)}" stroke="{it.color}" stroke-width="{2.5 if key == "p50" else 1.5}"/>'
                )
        step = max(1, len(it.samples) // 300)
        for v in list(it.samples)[::step]:
            parts.append(f'<circle cx="{_f(ax.px(v))}" cy="{_f(yc + 10)}" r="1.2" fill="{it.color}" opacity="0.5"/>')
        body.append(f'<g class="mark range"><title>{escape(it.label)}: {escape(tip)}</title>{"".join(parts)}</g>')
    return _svg(name, body, width=width, height=height, title=title)
