"""The Markdown summary with PNG figures, for pull-request comments (``report --format md``).

``report.md`` links its figures in ``report_files/`` beside it (the folder
a browser's "save page" would use). The figures are drawn with matplotlib's
Agg backend (no display; the ``[report]`` extra), the same data as the HTML
page: Pareto plots with fronts, latency ranges, power traces, the slowest
layers of each profile, the quantization sensitivity ranking and guard
steps. Every file is written atomically, figures first, the page last.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import OutputError, UnavailableError
from ..fsutil import atomic_write_bytes, atomic_write_text, ensure_writable_dir
from .conditions import by_device, condition_warnings, manifest
from .fields import (
    METRICS,
    device_label,
    get,
    interval,
    model_name,
    reasons,
    row_label,
    runtime_name,
    status,
    usable,
    value,
)
from .html import PARETO, PROFILE_TOP, SENSITIVITY_TOP
from .load import Inputs
from .pareto import pareto_front
from .profile import layer_label
from .svg import PALETTE

MARKERS = {"onnxruntime": "o", "tflite": "s", "tensorrt": "^", "torch": "D"}


def figures_dir(output: str | os.PathLike[str]) -> Path:
    out = Path(output)
    return out.with_name(out.stem + "_files")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UnavailableError(
            "--format md draws its figures with matplotlib; install it with pip install 'mdnet-deploy[report]' "
            "(or use the HTML report, which needs nothing)"
        ) from None
    matplotlib.use("Agg")  # no display, no GUI toolkit: works in CI and over SSH
    import matplotlib.pyplot as plt

    return plt


def _cell(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    head = ["model", "precision", "runtime", "size MB", "top-1 %", "p50 ms", "p99 ms", "images/s", "mJ/image", "status"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        mj = value(r, "mj")
        st = status(r) + (f": {reasons(r)[0]}" if status(r) != "ok" and reasons(r) else "")
        cells = [
            model_name(r),
            get(r, "model", "precision") or "-",
            runtime_name(r),
            _cell(value(r, "size"), 2),
            _cell(value(r, "top1"), 2),
            _cell(value(r, "p50"), 3),
            _cell(value(r, "p99"), 3),
            _cell(value(r, "ips"), 1),
            _cell(mj, 3) if mj is not None or not usable(r) else "unavailable",
            st,
        ]
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return out


# -- figures --------------------------------------------------------------------------------
def _pareto_fig(plt: Any, rows: Sequence[Mapping[str, Any]], xk: str, yk: str, caption: str) -> Any:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    devices = list(dict.fromkeys(device_label(r) for r in rows))
    models = list(dict.fromkeys(model_name(r) for r in rows))
    for r in rows:
        key = devices.index(device_label(r)) if len(devices) > 1 else models.index(model_name(r))
        x, y = value(r, xk) or 0.0, value(r, yk) or 0.0  # the caller keeps rows that have both
        xe, ye = interval(r, xk), interval(r, yk)
        ax.errorbar(
            [x],
            [y],
            xerr=[[x - xe[0]], [xe[1] - x]] if xe else None,
            yerr=[[y - ye[0]], [ye[1] - y]] if ye else None,
            fmt=MARKERS.get(runtime_name(r), "o"),
            color=PALETTE[key % len(PALETTE)],
            capsize=3,
        )
        ax.annotate(model_name(r), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    for group in by_device(rows).values():
        pts = [(value(r, xk) or 0.0, value(r, yk) or 0.0) for r in group]
        idx = pareto_front(pts, not METRICS[xk].higher_is_better, METRICS[yk].higher_is_better)
        xs: list[float] = []
        ys: list[float] = []
        for i in idx:
            if xs:
                xs.append(pts[i][0])
                ys.append(ys[-1])
            xs.append(pts[i][0])
            ys.append(pts[i][1])
        ax.plot(
            xs,
            ys,
            "--",
            color="#333",
            linewidth=1,
            marker="o" if len(idx) == 1 else None,
            fillstyle="none",
            markersize=12,
        )
    ax.set_xlabel(METRICS[xk].label)
    ax.set_ylabel(METRICS[yk].label)
    ax.set_title(caption, fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def _latency_fig(plt: Any, rows: Sequence[Mapping[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.4 * len(rows)), dpi=100)
    for i, r in enumerate(rows):
        lat = r["latency_ms"]
        c = PALETTE[i % len(PALETTE)]
        ax.plot([lat.get("min"), lat.get("max")], [i, i], color=c, linewidth=1)
        ax.barh(i, (lat.get("p90") or 0) - (lat.get("p50") or 0), left=lat.get("p50"), height=0.4, color=c, alpha=0.4)
        ax.plot([lat.get("p50")], [i], "|", color=c, markersize=14, markeredgewidth=2.5)
        ax.plot([lat.get("p99")], [i], "|", color=c, markersize=9)
    ax.set_yticks(range(len(rows)), [f"{row_label(r)} ({device_label(r)})" for r in rows], fontsize=7)
    ax.set_xlabel("latency per call (ms): line min-max, box p50-p90, ticks p50 (thick) and p99")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    return fig


def _bars_fig(
    plt: Any, labels: Sequence[str], values: Sequence[float], colors: Sequence[str], xlabel: str, title: str
) -> Any:
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.25 * len(labels)), dpi=100)
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), [lb if len(lb) <= 48 else "…" + lb[-47:] for lb in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _power_fig(plt: Any, r: Mapping[str, Any]) -> Any:
    tr = r["energy"]["trace"]
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    w0, w1 = tr.get("window_s") or [0, 0]
    ax.axvspan(w0, w1, color="#fdd835", alpha=0.25, label="timed window")
    ax.plot(tr["t_s"], tr["w"], color=PALETTE[1], linewidth=1)
    if isinstance(tr.get("idle_w"), (int, float)):
        ax.axhline(tr["idle_w"], color="#2e7d32", linestyle="--", label=f"idle {tr['idle_w']:.2f} W")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time from start of the timed window (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(f"{row_label(r)} on {device_label(r)}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _guard_fig(plt: Any, q: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    xs = [
        len(s["float_layers"]) if isinstance(s.get("float_layers"), list) else (s.get("float_layers") or 0)
        for s in steps
    ]
    ax.plot(xs, [s["drop"] for s in steps], "o-", color=PALETTE[0])
    budget = get(q, "accuracy", "max_drop")
    if isinstance(budget, (int, float)):
        ax.axhline(budget, color="#c62828", linestyle="--", label=f"budget {budget:g} pts")
        ax.legend(fontsize=7)
    ax.set_xlabel("layers kept in float")
    ax.set_ylabel("top-1 drop vs float (points)")
    ax.set_title("accuracy guard steps", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def write_markdown(
    inputs: Inputs, output: str | os.PathLike[str], title: str = "mdnet-deploy report", force: bool = False
) -> list[Path]:
    """Write ``output`` and its figures; returns every path written (the page last)."""
    plt = _pyplot()
    out = Path(output)
    fig_dir = figures_dir(out)
    rows = inputs.rows
    ok = [r for r in rows if usable(r)]
    lines = [f"# {title}", ""]
    lines.append(
        f"{len(rows)} result rows ({sum(status(r) == 'ok' for r in rows)} ok, "
        f"{sum(status(r) == 'unstable' for r in rows)} unstable, {sum(status(r) == 'failed' for r in rows)} failed); "
        f"sources: {', '.join(inputs.sources)}."
    )
    lines.append("")
    for w in condition_warnings(rows):
        lines += [f"> **warning:** {_md(w)}", ""]
    plans: list[tuple[str, str, Callable[[], Any]]] = []  # (file name, caption, draw)

    for device, group in by_device(rows).items():
        lines += [f"## {device}", "", *_table(group), ""]
    for xk, yk, name, caption in PARETO:
        pts = [r for r in ok if value(r, xk) is not None and value(r, yk) is not None]
        if pts:
            plans.append((f"{name}.png", caption, partial(_pareto_fig, plt, pts, xk, yk, caption)))
    lat = [r for r in ok if isinstance(r.get("latency_ms"), Mapping)]
    if lat:
        plans.append(("latency.png", "latency distributions", partial(_latency_fig, plt, lat)))
    for i, r in enumerate(ok):
        if isinstance(get(r, "energy", "trace"), Mapping) and len(get(r, "energy", "trace", "t_s") or []) > 1:
            plans.append((f"power-{i}.png", f"power trace: {row_label(r)}", partial(_power_fig, plt, r)))
        p = r.get("profile")
        if isinstance(p, Mapping) and p.get("available"):
            layers = list(p.get("layers") or [])[:PROFILE_TOP]
            plans.append(
                (
                    f"profile-{i}.png",
                    f"slowest layers: {row_label(r)} on {device_label(r)}",
                    partial(
                        _bars_fig,
                        plt,
                        [layer_label(x) for x in layers],
                        [x["ms"] for x in layers],
                        [PALETTE[0]] * len(layers),
                        "ms per call (median)",
                        f"slowest layers: {row_label(r)}",
                    ),
                )
            )
    for j, q in enumerate(inputs.quant):
        sens = sorted(
            [x for x in (get(q, "sensitivity", "layers") or []) if isinstance(x.get("output_sqnr_db"), (int, float))],
            key=lambda x: x.get("rank") or 0,
        )[:SENSITIVITY_TOP]
        if sens:
            plans.append(
                (
                    f"sensitivity-{j}.png",
                    f"per-layer sensitivity ({q.get('_source')}); red: kept in float",
                    partial(
                        _bars_fig,
                        plt,
                        [f"{x.get('module') or x.get('node')} ({x.get('op')})" for x in sens],
                        [max(min(float(x["output_sqnr_db"]), 200.0), -50.0) for x in sens],
                        [PALETTE[1] if x.get("float") else PALETTE[0] for x in sens],
                        "output SQNR with only this layer INT8 (dB, lower = more sensitive)",
                        "per-layer sensitivity",
                    ),
                )
            )
        steps = [s for s in (get(q, "guard", "steps") or []) if isinstance(s.get("drop"), (int, float))]
        if steps:
            plans.append(
                (f"guard-{j}.png", f"accuracy guard steps ({q.get('_source')})", partial(_guard_fig, plt, q, steps))
            )

    existing = [fig_dir / name for name, _, _ in plans if (fig_dir / name).exists()]
    if existing and not force:
        raise OutputError(f"{existing[0]} already exists; pass --force to overwrite the report's figures")
    written: list[Path] = []
    if plans:
        ensure_writable_dir(fig_dir)
        lines += ["## Figures", ""]
    for name, caption, draw in plans:
        fig = draw()
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        written.append(atomic_write_bytes(fig_dir / name, buf.getvalue()))
        lines += [f"![{_md(caption)}]({fig_dir.name}/{name})", ""]
    for q in inputs.quant:
        acc = q.get("accuracy") or {}
        lines += [f"## Quantization: {q.get('_source')}", "", f"{_md(q.get('message') or q.get('status'))}", ""]
        if acc:
            lines += [
                f"float top-1 {_cell(get(acc, 'float', 'top1'), 2)} %, INT8 top-1 {_cell(get(acc, 'int8', 'top1'), 2)} %, "
                f"drop {_cell(acc.get('drop_top1'), 2)} points (budget {acc.get('max_drop')}).",
                "",
            ]
        fb = get(q, "float_fallback", "layers") or []
        if fb:
            lines += ["| kept in float | op | by | reason |", "|---|---|---|---|"]
            lines += [
                f"| {_md(x.get('module') or x.get('node'))} | {_md(x.get('op') or '-')} | {_md(x.get('by') or '-')} | {_md(x.get('reason') or '')} |"
                for x in fb
            ]
            lines.append("")
    if rows:
        lines += ["## Environment", ""]
        for device, group in by_device(rows).items():
            lines += [f"**{_md(device)}**: " + "; ".join(f"{k}: {_md(v)}" for k, v in manifest(group)), ""]
    written.append(atomic_write_text(out, "\n".join(lines).rstrip() + "\n"))
    return written
