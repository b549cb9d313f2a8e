"""Per-layer latency profiles: parse what each runtime's profiler writes, name layers as MDNET modules.

One shape for every runtime (kept whole in the result row under ``profile``)::

    {"schema": 1, "available": true, "runtime": "onnxruntime", "source": "...",
     "runs": 20, "unit": "ms", "total_ms": 1.9, "run_ms": 2.1,
     "layers": [{"name", "module", "block", "op", "ms", "share", "calls"}, ...],   # slowest first
     "blocks": [{"block", "ms", "share", "layers"}, ...]}

or, where the runtime exposes no op timings, ``{"schema": 1, "available": false,
"runtime", "reason"}``. ``ms`` is the median over the profiled calls of the layer's time per call
(a median: one preempted call on a busy device must not make a layer look slow);
``share`` is the fraction of ``total_ms`` (the sum over layers); ``run_ms``
is the wall time of a whole call where the profiler records it (it also
holds the runtime's own overhead between layers).

Layer names are the runtime's: ONNX Runtime names optimised nodes after the
ONNX node or output tensor they came from (``/transform/attn/qkv_dwconv7x7/
Conv_output_0_nchwc``), TensorRT joins the fused ONNX names (``/a/Conv +
/a/Relu``). Both keep the exporter's module scopes, which :func:`module_of`
turns back into torch module paths (``transform.attn.qkv_dwconv7x7``).
Nodes that a runtime inserted itself (layout reorders, reformatting) have no
module and say so.

Standard library only: devices import this during ``bench --profile``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..node_names import module_path

SCHEMA = 1
#: Runs a profiler discards first: the first call allocates and tunes, it is not a steady-state layer time.
SKIP_FIRST_RUNS = 1

_ORT_SUFFIX = re.compile(r"(_output_\d+)?(_nchwc)?$")
_OPENVINO_SUFFIX = re.compile(r"/WithoutBiases$")  # OpenVINO splits a Conv's bias off and renames the conv so
_INSERTED = re.compile(r"^(Reorder(Input|Output)|Reformatting|Transpose|Squeeze|Unsqueeze|Reshape|Cast)\w*_token_\d+$")
#: Ops that a runtime fuses into the convolution before them; the node then carries the activation's name.
_ACTIVATIONS = ("Clip", "Relu", "Sigmoid", "HardSigmoid", "LeakyRelu", "HardSwish")


def unavailable(runtime: str, reason: str) -> dict[str, Any]:
    """The profile entry of a runtime that exposes no per-layer timings (with why and what would)."""
    return {"schema": SCHEMA, "available": False, "runtime": runtime, "reason": " ".join(reason.split())}


# -- names -----------------------------------------------------------------------------
def _first_onnx_name(name: str) -> str:
    """The first ONNX node name inside a runtime's layer name (TensorRT joins and wraps them)."""
    text = name.strip()
    text = re.sub(r"^\{?ForeignNode\[", "", text)  # Myelin regions: {ForeignNode[/a/X.../b/Y]}
    text = re.sub(r"^(PWN|PointWise)\(", "", text)  # pointwise fusions: PWN(/a/Add, /a/Relu)
    for sep in (" + ", "...", ", "):
        text = text.split(sep)[0]
    return text.strip(" ()[]{}")


def _is_inserted(name: str, op: str | None = None) -> bool:
    """A node the runtime made (layout reorder, reformatting copy), not one of the model's ops.

    Model ops keep the exporter's scopes (``/a/b/Op``); runtime-made nodes have
    none (``ReorderOutput_token_189``) or say what they are (TensorRT's
    ``Reformatting CopyNode for ... to /a/Conv`` names the layer it feeds;
    OpenVINO's layout ``Reorder`` borrows its neighbour's name, so its op says it).
    """
    return name.startswith("Reformatting") or bool(_INSERTED.match(name)) or "/" not in name or op == "Reorder"


def module_of(name: str, op: str | None = None) -> tuple[str, str | None]:
    """(torch module path or "" when the runtime made the node, fused activation or None).

    ``/transform/attn/qkv_dwconv7x7/Conv_output_0_nchwc`` -> ``transform.attn.qkv_dwconv7x7``;
    ``/stage1/residual/residual.2/Clip_output_0_nchwc`` run as a Conv -> ``stage1.residual.2``
    with ``Clip`` fused (ONNX Runtime names a Conv+activation after the activation).
    """
    if _is_inserted(name, op):
        return "", None
    onnx_name = _OPENVINO_SUFFIX.sub("", _ORT_SUFFIX.sub("", _first_onnx_name(name)))
    scopes = [s for s in onnx_name.split("/") if s]
    while scopes and scopes[-1].endswith("Fusion"):  # ORT: /a/MatMul/MatmulTransposeFusion/
        scopes.pop()
    if len(scopes) < 2:  # no scope: a top-level op (the final Flatten) or a runtime-made node
        return "", None
    own = scopes[-1]
    fused = None
    base = own.split("_")[0]
    if op and base in _ACTIVATIONS and op not in _ACTIVATIONS and op != base:
        fused = base
    # One naming rule for the whole package: the quantize report and the profile must agree on module names.
    return module_path("/".join(scopes)), fused


def assign_blocks(modules: Iterable[str]) -> dict[str, str]:
    """Module -> block: a top-level container with several sub-containers is split one level down.

    ``transform.attn.qkv`` -> ``transform.attn``; ``stage4.2.residual.0`` -> ``stage4.2``;
    ``stage1.residual.0`` -> ``stage1`` (the rule of calibration.graph.assign_blocks).
    """
    modules = set(modules)
    children: dict[str, set[str]] = {}
    deeper: set[str] = set()
    for m in modules:
        parts = m.split(".") if m else []
        if len(parts) >= 2:
            children.setdefault(parts[0], set()).add(parts[1])
            if len(parts) >= 3:
                deeper.add(parts[0])
    out = {}
    for m in modules:
        parts = m.split(".") if m else []
        if not parts:
            out[m] = "(runtime)"
            continue
        split = len(children.get(parts[0], ())) > 1 and parts[0] in deeper
        out[m] = ".".join(parts[:2]) if split and len(parts) >= 2 else parts[0]
    return out


# -- building a profile ------------------------------------------------------------------
def build_profile(
    layers: Sequence[Mapping[str, Any]],
    runtime: str,
    source: str,
    runs: int,
    run_ms: float | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The common profile dict from ``[{"name", "op", "ms", "calls"}]`` (ms per inference call)."""
    rows = []
    for i, layer in enumerate(layers):
        name = str(layer["name"])
        op = layer.get("op")
        module, fused = module_of(name, op)
        rows.append(
            {
                "name": name,
                "module": module,
                "block": None,
                "op": op,
                "fused": fused,
                "inserted": _is_inserted(name, op),
                "ms": float(layer["ms"]),
                "share": 0.0,
                "calls": layer.get("calls"),
                "order": i,
                **({"provider": layer["provider"]} if layer.get("provider") else {}),
            }
        )
    blocks_of = assign_blocks(r["module"] for r in rows)
    total = sum(r["ms"] for r in rows)
    per_block: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["module"]:
            r["block"] = blocks_of[r["module"]]
        else:  # top-level model ops (the final Flatten) vs nodes the runtime inserted
            r["block"] = "(runtime)" if r["inserted"] else "(model)"
        r["share"] = r["ms"] / total if total > 0 else 0.0
        b = per_block.setdefault(r["block"], {"block": r["block"], "ms": 0.0, "share": 0.0, "layers": 0})
        b["ms"] += r["ms"]
        b["layers"] += 1
    for b in per_block.values():
        b["share"] = b["ms"] / total if total > 0 else 0.0
    return {
        "schema": SCHEMA,
        "available": True,
        "runtime": runtime,
        "source": source,
        "runs": int(runs),
        "unit": "ms",
        "total_ms": total,
        "run_ms": run_ms,
        "layers": sorted(rows, key=lambda r: (-r["ms"], r["order"])),
        "blocks": sorted(per_block.values(), key=lambda b: -b["ms"]),
        "warnings": list(warnings),
    }


def _load_json(source: str | os.PathLike[str] | Any) -> Any:
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as f:
            return json.load(f)
    return source


def parse_ort_profile(
    source: str | os.PathLike[str] | Sequence[Mapping[str, Any]], skip_runs: int = SKIP_FIRST_RUNS
) -> dict[str, Any]:
    """An ONNX Runtime profile (``SessionOptions.enable_profiling``: a JSON list of trace events).

    Node events (``cat == "Node"``, ``<node>_kernel_time``) are assigned to the
    ``model_run`` they fall in; the first ``skip_runs`` runs are dropped (when
    more remain); a layer's time is its median per call over the rest.
    """
    events = _load_json(source)
    if not isinstance(events, list):
        raise ValueError("an ONNX Runtime profile is a JSON list of events")
    runs = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))
        for e in events
        if isinstance(e, dict) and e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    kept = runs[skip_runs:] if len(runs) > skip_runs else runs
    if not kept:
        raise ValueError(
            "the ONNX Runtime profile holds no model_run: run the session at least once before end_profiling()"
        )
    starts = [a for a, _ in kept]

    def run_of(ts: float) -> int | None:
        import bisect

        i = bisect.bisect_right(starts, ts) - 1
        return i if i >= 0 and ts <= kept[i][1] else None

    totals: dict[str, dict[str, Any]] = {}
    for e in events:
        if not isinstance(e, dict) or e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        run = run_of(float(e.get("ts", 0)))
        if run is None:
            continue
        name = str(e["name"])[: -len("_kernel_time")]
        args = e.get("args") or {}
        t = totals.setdefault(
            name,
            {
                "name": name,
                "op": args.get("op_name"),
                "provider": args.get("provider"),
                "us": [0.0] * len(kept),
                "n": 0,
                "first": float(e.get("ts", 0)),
            },
        )
        t["us"][run] += float(e.get("dur", 0))
        t["n"] += 1
    n = len(kept)
    layers = [
        {
            "name": t["name"],
            "op": t["op"],
            "provider": t["provider"],
            "ms": _median(t["us"]) / 1000.0,
            "calls": t["n"] / n,
        }
        for t in sorted(totals.values(), key=lambda t: t["first"])  # first seen = execution order
    ]
    run_ms = sorted((b - a) / 1000.0 for a, b in kept)[len(kept) // 2]
    return build_profile(
        layers, "onnxruntime", "ONNX Runtime session profiling (SessionOptions.enable_profiling)", n, run_ms
    )


def parse_trtexec_profile(text: str) -> dict[str, Any]:
    """``trtexec --exportProfile=FILE``: ``[{"count": N}, {"name", "timeMs", "averageMs", ["medianMs"], "percentage"}, ...]``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a trtexec profile (invalid JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict) or "count" not in data[0]:
        raise ValueError('not a trtexec profile: expected a JSON list starting with {"count": N}')
    count = int(data[0]["count"])
    layers = []
    for item in data[1:]:
        if not isinstance(item, dict) or "name" not in item:
            continue
        avg = item.get("medianMs", item.get("averageMs"))  # medianMs: TensorRT 8.6+
        if avg is None and item.get("timeMs") is not None and count:
            avg = float(item["timeMs"]) / count
        layers.append({"name": str(item["name"]), "op": None, "ms": float(avg or 0.0), "calls": 1})
    return build_profile(layers, "tensorrt", "trtexec --exportProfile", count)


def from_layer_times(
    times: Mapping[str, Sequence[float]],
    runtime: str,
    source: str,
    skip_runs: int = SKIP_FIRST_RUNS,
    ops: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A profile from per-run layer times in ms (TensorRT's IProfiler, OpenVINO's counters), in first-seen order."""
    layers = []
    runs = 0
    for name, values in times.items():
        vals = list(values)[skip_runs:] if len(values) > skip_runs else list(values)
        runs = max(runs, len(vals))
        op = (ops or {}).get(name)
        layers.append({"name": name, "op": op, "ms": _median(vals) if vals else 0.0, "calls": 1})
    return build_profile(layers, runtime, source, runs)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def top_layers(profile: Mapping[str, Any], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` slowest layers (the list is kept sorted slowest first)."""
    return list(profile.get("layers") or [])[:n] if profile.get("available") else []


def layer_label(layer: Mapping[str, Any]) -> str:
    """``transform.attn.qkv_dwconv7x7 (Conv)``, or the runtime's own name for a node it inserted."""
    module = layer.get("module")
    op = layer.get("op") or ""
    if layer.get("fused"):
        op = f"{op}+{layer['fused']}" if op else str(layer["fused"])
    if module:
        return f"{module} ({op})" if op else str(module)
    name = str(layer.get("name") or "?")
    if layer.get("inserted"):
        return f"{name} (inserted by the runtime)"
    return f"{name} ({op})" if op else name
