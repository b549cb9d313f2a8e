"""The self-contained HTML report: one file, no network, opens from an e-mail attachment.

Everything is inline: the charts are SVG (see svg.py for why), the styles a
``<style>`` block, and one small script sorts the tables and links a hovered
mark to its table row. A Content-Security-Policy in the page forbids any
fetch at all, so a browser makes no network request even if a future edit
slipped a URL in. A figure is drawn only when some row has it; otherwise the
section says why (energy not measured, no profile, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from .. import __version__
from ..fsutil import atomic_write_text
from . import svg
from .conditions import by_device, condition_warnings, manifest
from .fields import (
    METRICS,
    device_label,
    get,
    interval,
    latency_samples,
    model_name,
    reasons,
    row_label,
    runtime_name,
    status,
    usable,
    value,
)
from .load import Inputs
from .pareto import pareto_front
from .profile import layer_label

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
RUNTIME_SHAPES = {"onnxruntime": "circle", "tflite": "square", "tensorrt": "triangle", "torch": "diamond"}
PROFILE_TOP = 15
SENSITIVITY_TOP = 25

#: (x metric, y metric, chart name, caption) of the Pareto plots.
PARETO = (
    ("p50", "top1", "pareto-top1-latency", "top-1 vs p50 latency: up and to the left is better"),
    ("mj", "top1", "pareto-top1-energy", "top-1 vs energy per image: up and to the left is better"),
    ("p50", "size", "pareto-size-latency", "size vs p50 latency: down and to the left is better"),
)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1180px;padding:0 20px 40px;color:#222}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:30px}
h3{font-size:15px;margin:18px 0 6px}nav a{margin-right:12px}.meta{color:#666}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px;margin:8px 0}
.note{color:#555;font-style:italic}table{border-collapse:collapse;margin:6px 0 12px;font-size:13px;max-width:100%}
th,td{border-bottom:1px solid #e4e4e4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc:after{content:' ▲'}table.sortable th.desc:after{content:' ▼'}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.hl td{background:#fff3b0}
.s-ok{color:#1a7f37}.s-unstable{color:#b26b00;font-weight:600}.s-failed{color:#c62828;font-weight:600}
.why{color:#666;font-size:12px;max-width:300px}.why summary{cursor:pointer;color:#888}figure{margin:10px 0 18px}figcaption{color:#555;font-size:13px}
svg.chart{max-width:100%;height:auto;font-size:11px;background:#fff}svg .axis{font-size:12px;fill:#333}
svg .pl{font-size:10px;fill:#444}svg .bl{font-size:11px;fill:#222}svg .bv{font-size:10px;fill:#555}
svg g.pt{cursor:default}svg g.pt.hl circle,svg g.pt.hl rect,svg g.pt.hl polygon{stroke:#000;stroke-width:2}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:6px 18px;align-items:start}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px}dl.kv dt{color:#555}dl.kv dd{margin:0}
"""

# Sorting: numeric when every cell of the column has data-v, text otherwise; each tbody sorts on its own
# (the results table has one tbody per device). Hover: a mark and its table row share data-row.
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});
    th.classList.add(asc?'asc':'desc');
    t.querySelectorAll('tbody').forEach(function(tb){
      var rows=Array.prototype.slice.call(tb.rows);
      rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i];
        var vx=x.getAttribute('data-v'),vy=y.getAttribute('data-v'),r;
        if(vx!==null&&vy!==null){r=(vx===''?Infinity:+vx)-(vy===''?Infinity:+vy);}else{r=x.textContent.localeCompare(y.textContent);}
        return asc?r:-r;});
      rows.forEach(function(r){tb.appendChild(r)});});});});});
function hl(id,on){document.querySelectorAll('[data-row="'+id+'"]').forEach(function(e){e.classList.toggle('hl',on)})}
document.querySelectorAll('[data-row]').forEach(function(e){var id=e.getAttribute('data-row');if(!id)return;
  e.addEventListener('mouseenter',function(){hl(id,true)});e.addEventListener('mouseleave',function(){hl(id,false)});});
"""


def _n(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _td_num(v: float | None, digits: int) -> str:
    return f'<td class="n" data-v="{"" if v is None else repr(float(v))}">{_n(v, digits)}</td>'


def _ci_text(row: Mapping[str, Any], key: str, digits: int) -> str:
    ci = interval(row, key)
    return f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


class _Ids:
    """A stable id per row, shared by its table row and its marks."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._ids = {id(r): f"r{i}" for i, r in enumerate(rows)}

    def __call__(self, row: Mapping[str, Any]) -> str:
        return self._ids.get(id(row), "")


def _tooltip(row: Mapping[str, Any]) -> str:
    parts = [f"{row_label(row)} on {device_label(row)}"]
    for key in ("top1", "p50", "p99", "mj", "size", "ips"):
        v = value(row, key)
        if v is not None:
            digits = 2 if key in ("top1", "size") else 3
            parts.append(f"{METRICS[key].label}: {v:.{digits}f}{_ci_text(row, key, digits)}")
    parts.append(f"precision {get(row, 'model', 'precision') or '-'}, status {status(row)}")
    return "\n".join(parts)


# -- sections ----------------------------------------------------------------------------------
RESULT_HEADS = (
    "model",
    "format",
    "precision",
    "runtime",
    "size MB",
    "top-1 %",
    "top-5 %",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "images/s",
    "mJ/image",
    "avg W",
    "status",
    "reasons and warnings",
)


def _results_table(rows: Sequence[Mapping[str, Any]], ids: _Ids) -> str:
    # One table per device: sorting stays inside a device, and the heading says which device.
    return "".join(
        f"<h3>{escape(device)}</h3>" + _results_table_one(group, ids) for device, group in by_device(rows).items()
    )


def _results_table_one(group: Sequence[Mapping[str, Any]], ids: _Ids) -> str:
    out = [
        '<table class="sortable results"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in RESULT_HEADS)
        + "</tr></thead><tbody>"
    ]
    for r in group:
        st = status(r)
        watts = get(r, "energy", "avg_power_w") if usable(r) else None
        mj = value(r, "mj")
        cells = [
            f"<td>{escape(model_name(r))}</td>",
            f"<td>{escape(str(get(r, 'model', 'format') or '-'))}</td>",
            f"<td>{escape(str(get(r, 'model', 'precision') or '-'))}</td>",
            f"<td>{escape(runtime_name(r))}</td>",
            _td_num(value(r, "size"), 2),
            _td_num(value(r, "top1"), 2),
            _td_num(value(r, "top5"), 2),
            _td_num(value(r, "p50"), 3),
            _td_num(value(r, "p90"), 3),
            _td_num(value(r, "p99"), 3),
            _td_num(value(r, "ips"), 1),
            _td_num(mj, 3) if mj is not None or not usable(r) else '<td class="n" data-v="">unavailable</td>',
            _td_num(watts if isinstance(watts, (int, float)) else None, 2),
            f'<td class="s-{st}">{st}</td>',
            f'<td class="why">{_reasons_cell(reasons(r))}</td>',
        ]
        out.append(f'<tr data-row="{ids(r)}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _reasons_cell(items: Sequence[str]) -> str:
    """The first reason in full, the others folded (a <details> needs no script) so rows stay short."""
    if not items:
        return ""
    first = escape(items[0])
    if len(items) == 1:
        return first
    rest = "".join(f"<div>{escape(x)}</div>" for x in items[1:])
    return f"{first}<details><summary>{len(items) - 1} more</summary>{rest}</details>"


def _colors(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], str]:
    """Colour by device when there are several, else by artifact; returns (key -> colour, what colour means)."""
    devices = list(dict.fromkeys(device_label(r) for r in rows))
    if len(devices) > 1:
        return {d: svg.color(i) for i, d in enumerate(devices)}, "device"
    models = list(dict.fromkeys(model_name(r) for r in rows))
    return {m: svg.color(i) for i, m in enumerate(models)}, "model"


def _legend(colors: Mapping[str, str], by: str, runtimes: Sequence[str]) -> str:
    shapes = {"circle": "●", "square": "■", "triangle": "▲", "diamond": "◆"}
    items = [f'<span><i class="sw" style="background:{c}"></i>{escape(k)}</span>' for k, c in colors.items()]
    items += [f"<span>{shapes[RUNTIME_SHAPES.get(rt, 'circle')]} {escape(rt)}</span>" for rt in runtimes]
    return f'<div class="legend">colour: {by}; shape: runtime. {"".join(items)}</div>'


def _pareto_section(rows: Sequence[Mapping[str, Any]], ids: _Ids) -> str:
    ok = [r for r in rows if usable(r)]
    colors, by = _colors(ok)
    out = []
    for xk, yk, name, caption in PARETO:
        pts_rows = [r for r in ok if value(r, xk) is not None and value(r, yk) is not None]
        if not pts_rows:
            why = (
                "no row has a measured energy figure (no working power meter)"
                if "mj" in (xk, yk)
                else f"no row has both {METRICS[xk].label} and {METRICS[yk].label}"
            )
            out.append(f'<p class="note">{escape(caption.split(":")[0])}: not drawn, {escape(why)}.</p>')
            continue
        points = []
        for r in pts_rows:
            key = device_label(r) if by == "device" else model_name(r)
            points.append(
                svg.Point(
                    x=value(r, xk) or 0.0,
                    y=value(r, yk) or 0.0,
                    label=model_name(r),
                    tooltip=_tooltip(r),
                    color=colors.get(key, svg.color(0)),
                    shape=RUNTIME_SHAPES.get(runtime_name(r), "circle"),
                    x_ci=interval(r, xk),
                    y_ci=interval(r, yk),
                    row_id=ids(r),
                )
            )
        fronts = []
        for device, group in by_device(pts_rows).items():
            idx = [pts_rows.index(r) for r in group]
            front = pareto_front(
                [(points[i].x, points[i].y) for i in idx],
                not METRICS[xk].higher_is_better,
                METRICS[yk].higher_is_better,
            )
            fronts.append(svg.Front([idx[i] for i in front], "#333" if by != "device" else colors[device], device))
        chart = svg.scatter(name, points, METRICS[xk].label, METRICS[yk].label, fronts, title=caption)
        has_ci = any(p.x_ci or p.y_ci for p in points)
        note = " Error bars: 95 % confidence intervals." if has_ci else ""
        out.append(
            f'<figure class="plot">{chart}<figcaption>{escape(caption)}. Dashed line (a ring when it is one '
            f"point): the Pareto front of each device, the artifacts no other beats on both axes.{note}</figcaption></figure>"
        )
    runtimes = list(dict.fromkeys(runtime_name(r) for r in ok))
    return _legend(colors, by, runtimes) + '<div class="plots">' + "".join(out) + "</div>"


def _latency_section(rows: Sequence[Mapping[str, Any]]) -> str:
    ok = [r for r in rows if usable(r) and isinstance(r.get("latency_ms"), Mapping)]
    if not ok:
        return '<p class="note">No row has latency figures.</p>'
    colors, by = _colors(ok)
    items = []
    for r in ok:
        lat = r["latency_ms"]
        stats = {k: float(lat[k]) for k in ("min", "p50", "p90", "p99", "max") if isinstance(lat.get(k), (int, float))}
        key = device_label(r) if by == "device" else model_name(r)
        items.append(
            svg.Range(f"{row_label(r)} ({device_label(r)})", stats, latency_samples(r), colors.get(key, svg.color(0)))
        )
    kept = any(it.samples for it in items)
    chart = svg.ranges("latency-distribution", items, "latency per call (ms)", title="latency distributions")
    caption = "Line: min to max; box: p50 to p90; thick tick: p50; thin tick: p99" + (
        "; dots: the kept per-call samples." if kept else ". The runs kept no per-call samples."
    )
    return f'<figure class="plot">{chart}<figcaption>{escape(caption)}</figcaption></figure>'


def _power_section(rows: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for r in rows:
        tr = get(r, "energy", "trace")
        if not usable(r) or not isinstance(tr, Mapping) or len(tr.get("t_s") or []) < 2:
            continue
        window = tr.get("window_s") or [0.0, 0.0]
        idle = tr.get("idle_w")
        hl = [(float(idle), f"idle {float(idle):.2f} W", "#2e7d32")] if isinstance(idle, (int, float)) else []
        chart = svg.lines(
            f"power-{_slug(row_label(r))}",
            [svg.Series(tr["t_s"], tr["w"], row_label(r), svg.color(1))],
            "time from start of the timed window (s)",
            "power (W)",
            band=(float(window[0]), float(window[1]), "timed window"),
            hlines=hl,
            title=f"power trace {row_label(r)}",
            y_from_zero=True,
        )
        scope = get(r, "energy", "scope") or ""
        meter = get(r, "energy", "meter") or ""
        every = tr.get("every") or 1
        out.append(
            f'<figure class="plot">{chart}<figcaption><b>{escape(row_label(r))} on {escape(device_label(r))}</b>: '
            f"meter {escape(str(meter))} ({escape(str(scope))}); shaded: the timed window the energy "
            f"figures cover{'; dashed: idle power' if hl else ''}{f'; every {every}th reading drawn' if every > 1 else ''}."
            "</figcaption></figure>"
        )
    if not out:
        why = sorted({str(r.get("energy_unavailable")) for r in rows if usable(r) and r.get("energy_unavailable")})
        text = "No row kept power samples (only sampling meters keep a trace)"
        return f'<p class="note">{escape(text)}{": " + escape("; ".join(why)) if why else "."}</p>'
    return '<div class="plots">' + "".join(out) + "</div>"


def _profile_section(rows: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for r in rows:
        p = r.get("profile")
        if not isinstance(p, Mapping):
            continue
        head = f"<h3>{escape(row_label(r))} on {escape(device_label(r))}</h3>"
        if not p.get("available"):
            out.append(head + f'<p class="note">No per-layer profile: {escape(str(p.get("reason") or "unknown"))}</p>')
            continue
        layers = list(p.get("layers") or [])[:PROFILE_TOP]
        bars = [
            svg.Bar(
                layer_label(x),
                float(x["ms"]),
                f"{x.get('name')}\n{float(x['ms']):.4f} ms, {100 * float(x.get('share') or 0):.1f} % of the total",
                svg.color(0),
                f"{100 * float(x.get('share') or 0):.1f} %",
            )
            for x in layers
        ]
        blocks = [
            svg.Bar(
                str(b["block"]),
                float(b["ms"]),
                f"{b['block']}: {float(b['ms']):.4f} ms in {b.get('layers')} layers",
                svg.color(2),
                f"{100 * float(b.get('share') or 0):.1f} %",
            )
            for b in (p.get("blocks") or [])[:PROFILE_TOP]
        ]
        name = f"profile-{_slug(row_label(r))}"
        out.append(
            head
            + f'<figure class="plot">{svg.hbars(name + "-layers", bars, "ms per call (median)", title="slowest layers")}'
            f"<figcaption>The {len(layers)} slowest of {len(p.get('layers') or [])} layers ({escape(str(p.get('source')))}, "
            f"{p.get('runs')} calls; {float(p.get('total_ms') or 0):.3f} ms over all layers). Names are MDNET modules where "
            "the graph keeps them; nodes the runtime inserted keep its name.</figcaption></figure>"
        )
        if blocks:
            out.append(
                f'<figure class="plot">{svg.hbars(name + "-blocks", blocks, "ms per call (median)", title="time per block")}'
                "<figcaption>The same time summed per MDNET block.</figcaption></figure>"
            )
    return "".join(out) or '<p class="note">No row has a per-layer profile (run bench with --profile).</p>'


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def _quant_section(reports: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for q in reports:
        src = str(q.get("_source") or get(q, "output", "path") or "quantize report")
        acc = q.get("accuracy") or {}
        summary = [
            ("status", q.get("status")),
            ("message", q.get("message")),
            ("model", get(q, "output", "path")),
            ("form", get(q, "form", "name")),
        ]
        if acc:
            summary += [
                ("float top-1 %", _n(get(acc, "float", "top1"), 2)),
                ("int8 top-1 %", _n(get(acc, "int8", "top1"), 2)),
                ("top-1 drop (points)", _n(acc.get("drop_top1"), 2)),
                ("budget (points)", acc.get("max_drop")),
            ]
        layers = q.get("layers") or {}
        if layers:
            summary.append(
                (
                    "layers quantized / float / candidates",
                    f"{layers.get('quantized')} / {layers.get('float')} / {layers.get('candidates')}",
                )
            )
        kv = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in summary if v is not None)
        out.append(f'<h3>{escape(src)}</h3><dl class="kv">{kv}</dl>')
        for w in q.get("warnings") or []:
            out.append(f'<div class="warn">{escape(str(w))}</div>')
        sens = [x for x in (get(q, "sensitivity", "layers") or []) if isinstance(x.get("output_sqnr_db"), (int, float))]
        sens = sorted(sens, key=lambda x: x.get("rank") or 0)[:SENSITIVITY_TOP]
        if sens:
            bars = [
                svg.Bar(
                    f"{x.get('module') or x.get('node')} ({x.get('op')})",
                    max(min(float(x["output_sqnr_db"]), 200.0), -50.0),
                    f"rank {x.get('rank')}: {x.get('node')}\noutput SQNR {float(x['output_sqnr_db']):.1f} dB"
                    + (f"\n{x.get('reason')}" if x.get("reason") else "")
                    + ("\nkept in float" if x.get("float") else ""),
                    svg.color(1) if x.get("float") else svg.color(0),
                    f"{float(x['output_sqnr_db']):.1f} dB" + (" · float" if x.get("float") else ""),
                )
                for x in sens
            ]
            out.append(
                f'<figure class="plot">{svg.hbars("sensitivity-" + _slug(src), bars, "output SQNR when only this layer is INT8 (dB, lower = more sensitive)", title="per-layer sensitivity")}'
                f"<figcaption>The {len(sens)} most sensitive layers, most sensitive first; red: kept in float.</figcaption></figure>"
            )
        elif get(q, "sensitivity", "skipped"):
            out.append(f'<p class="note">No sensitivity ranking: {escape(str(get(q, "sensitivity", "skipped")))}.</p>')
        steps = [s for s in (get(q, "guard", "steps") or []) if isinstance(s.get("drop"), (int, float))]
        if steps:
            xs = [
                float(len(s["float_layers"]) if isinstance(s.get("float_layers"), list) else s.get("float_layers") or 0)
                for s in steps
            ]
            ys = [float(s["drop"]) for s in steps]
            tips = [
                f"step {s.get('step')} ({s.get('phase')}): {int(x)} layers float, drop {y:.2f} pts, top-1 {_n(s.get('top1'), 2)} %"
                + (f"; added {', '.join(map(str, s.get('added') or []))}" if s.get("added") else "")
                for s, x, y in zip(steps, xs, ys)
            ]
            budget = acc.get("max_drop")
            hl = (
                [(float(budget), f"budget {float(budget):g} pts", "#c62828")]
                if isinstance(budget, (int, float))
                else []
            )
            chart = svg.lines(
                "guard-" + _slug(src),
                [svg.Series(xs, ys, "top-1 drop", svg.color(0), points=True, tooltips=tips)],
                "layers kept in float",
                "top-1 drop vs float (points)",
                hlines=hl,
                title="accuracy guard steps",
                x_integer=True,
            )
            out.append(
                f'<figure class="plot">{chart}<figcaption>The accuracy guard: each step returns the most sensitive layers '
                "to float and re-evaluates.</figcaption></figure>"
            )
        fb = get(q, "float_fallback", "layers") or []
        if fb:
            rows = "".join(
                f"<tr><td>{escape(str(x.get('module') or x.get('node')))}</td><td>{escape(str(x.get('op') or '-'))}</td>"
                f"<td>{escape(str(x.get('by') or '-'))}</td>{_td_num(x.get('output_sqnr_db') if isinstance(x.get('output_sqnr_db'), (int, float)) else None, 1)}"
                f'<td class="why">{escape(str(x.get("reason") or ""))}</td></tr>'
                for x in fb
            )
            out.append(
                '<p>What stayed in float, and why:</p><table class="sortable"><thead><tr><th>module</th><th>op</th><th>by</th>'
                f"<th>output SQNR dB</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        else:
            out.append('<p class="note">Every candidate layer was quantized (nothing stayed in float).</p>')
    return "".join(out) or '<p class="note">No quantize report given (add --quant model.int8.report.json).</p>'


def _environment_section(rows: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for device, group in by_device(rows).items():
        kv = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in manifest(group))
        out.append(f'<h3>{escape(device)}</h3><dl class="kv">{kv}</dl>')
    return "".join(out)


def render_html(inputs: Inputs, title: str = "mdnet-deploy report", generated: str = "") -> str:
    rows = inputs.rows
    ids = _Ids(rows)
    warnings = condition_warnings(rows)
    if any(get(r, "device", "env", "emulated") for r in rows):
        warnings.append("some rows ran on an emulated device: their latency and energy figures mean nothing")
    counts = {s: sum(1 for r in rows if status(r) == s) for s in ("ok", "unstable", "failed")}
    sections = [
        ("results", "Results", _results_table(rows, ids) if rows else '<p class="note">No bench results given.</p>'),
        ("tradeoffs", "Trade-offs", _pareto_section(rows, ids) if rows else ""),
        ("latency", "Latency distributions", _latency_section(rows) if rows else ""),
        ("power", "Power traces", _power_section(rows) if rows else ""),
        ("profiles", "Per-layer profiles", _profile_section(rows) if rows else ""),
        ("quantization", "Quantization", _quant_section(inputs.quant)),
        ("environment", "Environment", _environment_section(rows) if rows else ""),
    ]
    sections = [s for s in sections if s[2]]
    nav = "".join(f'<a href="#{k}">{escape(t)}</a>' for k, t, _ in sections)
    body = "".join(f'<section id="{k}"><h2>{escape(t)}</h2>{html}</section>' for k, t, html in sections)
    warn = "".join(f'<div class="warn">{escape(w)}</div>' for w in warnings)
    meta = (
        f"{len(rows)} result rows ({counts['ok']} ok, {counts['unstable']} unstable, {counts['failed']} failed) on "
        f"{len(by_device(rows))} device(s); {len(inputs.quant)} quantize report(s). Sources: "
        + ", ".join(escape(s) for s in inputs.sources)
        + (f". Generated {escape(generated)}" if generated else "")
        + f" by mdnet-deploy {escape(__version__)}."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="meta">{meta}</p><nav>{nav}</nav>{warn}{body}'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_html(inputs: Inputs, path: str | os.PathLike[str], title: str = "mdnet-deploy report") -> Path:
    """Render and write the page atomically (an interrupted run leaves no half page)."""
    import datetime as _dt

    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return atomic_write_text(path, render_html(inputs, title, generated))
