"""Per-layer quantization sensitivity of a model against its float self.

For every quantized layer (candidate node) this measures, on a few
calibration images:

* ``output_sqnr_db``: SQNR of the logits when *only this layer* is quantized
  (everything else float). This is what the accuracy guard ranks by: noise
  powers of independent layers roughly add up, so returning the largest ones
  to float removes the most output error per layer kept float.
* ``input_sqnr_db`` / ``input_range`` / ``input_outlier_ratio``: how well one
  INT8 scale represents the float activations entering the layer, as the
  SQNR of the *median channel* (a whole-tensor SQNR hides the usual failure:
  one outlier channel sets the scale, holds most of the power and survives,
  while every other channel is rounded away); the outlier ratio is the
  largest channel's peak over the median channel's peak.
* ``weight_sqnr_db``: the same for its per-channel INT8 weights.
* ``cumulative_sqnr_db``: SQNR at the layer's output in the fully quantized
  model (error accumulated from everything before it).

SQNR = 10 log10(sum(ref^2) / sum((test - ref)^2)); higher is better, 40 dB
is about what 8 bits give a well-scaled tensor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..progress import Steps
from .graph import Candidate
from .qdq import ChainIndex, partial_model

Progress = Steps  # see mdnet_deploy.progress
POOR_DB = 25.0  # below this a tensor has clearly lost information to INT8
OUTLIER_RATIO = 10.0  # a channel peaking this much above the median one sets a scale too coarse for the rest
CHUNK = 16  # images per run when intermediate tensors are fetched (bounded memory)


def sqnr_db(signal: float, noise: float) -> float:
    if noise <= 0:
        return math.inf
    if signal <= 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def make_session(model: Any, threads: int | None = None) -> Any:
    """An ORT CPU session from a ModelProto or a path, with ORT's own warnings muted."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # No spin-waiting between ops: on a shared CPU (CI, a laptop in use) spinning threads fight
    # the other processes; measured 15-30 % faster under load, about even on an idle machine.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def run_logits(session: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    # 16: on the full-size MDNET both fastest (1.46 s vs 1.81 s at 64 for 360 images, float and INT8 alike)
    # and a quarter of the session memory of batch 64.
    name = session.get_inputs()[0].name
    out = session.get_outputs()[0].name
    return np.concatenate([session.run([out], {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def with_outputs(model: Any, names: Sequence[str]) -> Any:
    """A copy of ``model`` that also outputs the tensors ``names``."""
    import onnx
    from onnx import TensorProto, helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    infos = {vi.name: vi for vi in out.graph.value_info}
    have = {o.name for o in out.graph.output}
    for name in names:
        if name in have:
            continue
        have.add(name)
        out.graph.output.append(
            infos[name] if name in infos else helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
        )
    return out


@dataclass
class LayerSensitivity:
    node: str
    op: str
    module: str
    block: str
    output_sqnr_db: float
    noise: float  # output noise power / signal power with only this layer quantized
    top1_agreement: float
    input_sqnr_db: float | None
    input_range: list[float] | None
    input_outlier_ratio: float | None
    weight_sqnr_db: float | None
    cumulative_sqnr_db: float | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None if math.isnan(v) else (999.0 if v > 0 else -999.0)
        return d


@dataclass
class Sensitivity:
    layers: list[LayerSensitivity]  # ranked, most sensitive first
    images: int
    full_output_sqnr_db: float
    full_top1_agreement: float
    seconds: float

    def blocks(self) -> list[dict[str, Any]]:
        """Blocks ranked by their layers' summed output noise (the additive estimate)."""
        agg: dict[str, list[LayerSensitivity]] = {}
        for layer in self.layers:
            agg.setdefault(layer.block, []).append(layer)
        rows = []
        for block, layers in agg.items():
            noise = sum(layer.noise for layer in layers)
            rows.append(
                {
                    "block": block,
                    "output_sqnr_db": _finite(sqnr_db(1.0, noise)),
                    "layers": len(layers),
                    "worst_layer": min(layers, key=lambda s: s.output_sqnr_db).module or layers[0].node,
                }
            )
        return sorted(rows, key=lambda r: r["output_sqnr_db"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "metric": "SQNR in dB of the logits with only that layer quantized (higher is better)",
            "full_output_sqnr_db": _finite(self.full_output_sqnr_db),
            "full_top1_agreement": self.full_top1_agreement,
            "layers": [dict(rank=i + 1, **layer.to_dict()) for i, layer in enumerate(self.layers)],
            "blocks": self.blocks(),
            "seconds": round(self.seconds, 3),
        }


def _finite(v: float) -> float:
    return v if math.isfinite(v) else (999.0 if v > 0 else -999.0)


def float_sess_input_name(model: Any) -> str:
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


def cut_sets(model: Any, layers: Sequence[str]) -> dict[str, set[str]]:
    """For each layer, the computed tensors that cross the graph just before it (live there).

    Everything before the layer is float in a one-layer variant, so its
    values are the float model's: feeding these tensors and running only the
    rest of the graph gives the same logits for less compute.
    """
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    position = {n.name: k for k, n in enumerate(graph.node)}
    made_at: dict[str, int] = {i.name: -1 for i in graph.input if i.name not in inits}
    last_use: dict[str, int] = {}
    for k, node in enumerate(graph.node):
        for o in node.output:
            made_at[o] = k
        for i in node.input:
            if i in made_at or i not in inits:
                last_use[i] = k
    end = len(graph.node)
    for o in graph.output:
        last_use[o.name] = end
    cuts = {}
    for name in layers:
        p = position[name]
        cuts[name] = {t for t, m in made_at.items() if m < p <= last_use.get(t, -2)}
    return cuts


def suffix_model(model: Any, cut: set[str], float_model: Any) -> Any:
    """The part of ``model`` that computes its outputs from the tensors in ``cut``."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    needed = {o.name for o in graph.output}
    kept = []
    used_cut: set[str] = set()
    for node in reversed(graph.node):
        if not any(o in needed for o in node.output) or all(o in cut for o in node.output if o):
            continue
        kept.append(node)
        for i in node.input:
            if not i or i in inits:
                continue
            if i in cut:
                used_cut.add(i)
            else:
                needed.add(i)
    kept.reverse()
    infos = {vi.name: vi for vi in float_model.graph.value_info}
    infos.update({vi.name: vi for vi in float_model.graph.input})
    used_inits = {i for n in kept for i in n.input if i in inits}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    del g.node[:]
    g.node.extend(kept)
    del g.input[:]
    g.input.extend(
        infos[t] if t in infos else helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in sorted(used_cut)
    )
    keep_inits = [inits[n] for n in inits if n in used_inits]
    del g.initializer[:]
    g.initializer.extend(keep_inits)
    del g.value_info[:]
    return out


def _quant_params(
    index: ChainIndex, node_name: str
) -> tuple[list[tuple[str, float, int, str]], list[tuple[str, np.ndarray, np.ndarray]]]:
    """Activation inputs (float tensor, scale, zero point, dtype) and weights (float, dequantized) of a node."""
    from onnx import numpy_helper

    qdq = index.qdq.graph
    producers = {o: n for n in qdq.node for o in n.output}
    inits = {i.name: i for i in qdq.initializer}
    float_inits = {i.name: i for i in index.float_model.graph.initializer}
    qnode = next(n for n in qdq.node if n.name == node_name)
    fnode = next(n for n in index.float_model.graph.node if n.name == node_name)
    acts, weights = [], []
    for pos, name in enumerate(qnode.input):
        dq = producers.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        scale = numpy_helper.to_array(inits[dq.input[1]]) if dq.input[1] in inits else None
        zp = (
            numpy_helper.to_array(inits[dq.input[2]])
            if len(dq.input) > 2 and dq.input[2] in inits
            else np.zeros((), np.int8)
        )
        if scale is None:
            continue
        src = dq.input[0]
        if src in inits:  # a weight (or bias) stored quantized
            if pos < len(fnode.input) and fnode.input[pos] in float_inits and pos == 1:
                w = numpy_helper.to_array(float_inits[fnode.input[pos]]).astype(np.float32)
                q = numpy_helper.to_array(inits[src]).astype(np.float32)
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                shape = [1] * q.ndim
                if scale.size > 1:
                    shape[axis] = -1
                deq = (q - zp.astype(np.float32).reshape(shape if zp.size > 1 else ())) * scale.astype(
                    np.float32
                ).reshape(shape if scale.size > 1 else ())
                weights.append((fnode.input[pos], w, deq))
            continue
        qnode = producers.get(src)
        if qnode is not None and qnode.op_type == "QuantizeLinear":
            acts.append((qnode.input[0], float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]), str(zp.dtype)))
    return acts, weights


def _median_channel_db(acc: list[Any]) -> float:
    signal, noise = np.atleast_1d(acc[0]), np.atleast_1d(acc[1])
    live = signal > 0  # all-zero channels (dead ReLUs) carry no information to lose
    if not np.any(live):
        return math.inf
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(signal[live] / np.maximum(noise[live], 1e-300))
    return float(np.median(db))


def _outlier_ratio(acc: list[Any]) -> float | None:
    peaks = np.atleast_1d(acc[2])
    live = peaks[peaks > 0]
    if live.size < 2:
        return None
    return float(live.max() / np.median(live))


def _fake_quant(x: np.ndarray, scale: float, zp: int, dtype: str) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype))
    q = np.clip(np.round(x / scale) + zp, info.min, info.max)
    return ((q - zp) * scale).astype(np.float32)


def analyse(
    index: ChainIndex,
    layers: Sequence[Candidate],
    x: np.ndarray,
    progress: Progress | None = None,
) -> Sensitivity:
    """Measure every layer in ``layers`` (all quantized in ``index.qdq``) on images ``x``."""
    import time

    t0 = time.perf_counter()
    float_model, qdq_model = index.float_model, index.qdq
    params = {c.name: _quant_params(index, c.name) for c in layers}
    act_tensors = sorted({a[0] for acts, _ in params.values() for a in acts})
    out_tensors = {c.name: next(n for n in float_model.graph.node if n.name == c.name).output[0] for c in layers}
    cuts = cut_sets(float_model, [c.name for c in layers])
    cut_tensors = sorted(set().union(*cuts.values()) - {i.name for i in float_model.graph.input})

    # One pass of the float model and of the full QDQ model, in chunks, accumulating powers.
    fetch = list(dict.fromkeys(act_tensors + sorted(set(out_tensors.values())) + cut_tensors))
    float_sess = make_session(with_outputs(float_model, fetch))
    # In the ort form a ReLU folded into a range hands its name to the Conv: compare only what exists in both.
    qdq_made = {o for n in qdq_model.graph.node for o in n.output}
    float_made_by = {o: n.name for n in float_model.graph.node for o in n.output}
    qdq_made_by = {o: n.name for n in qdq_model.graph.node for o in n.output}
    comparable = sorted(
        t for t in set(out_tensors.values()) if t in qdq_made and qdq_made_by[t] == float_made_by.get(t)
    )
    qdq_sess = make_session(with_outputs(qdq_model, comparable))
    fnames = [o.name for o in float_sess.get_outputs()]
    qnames = [o.name for o in qdq_sess.get_outputs()]
    in_name = float_sess.get_inputs()[0].name
    act_qp = {a[0]: a for acts, _ in params.values() for a in acts}
    # Per channel (axis 1): signal power, noise power, peak |x|.
    act_pow: dict[str, list[Any]] = {t: [0.0, 0.0, 0.0] for t in act_tensors}
    act_rng: dict[str, list[float]] = {t: [math.inf, -math.inf] for t in act_tensors}
    cum_pow: dict[str, list[float]] = {t: [0.0, 0.0] for t in comparable}
    ref_parts, full_parts = [], []
    # Float values where each layer's suffix graph starts (see cut_sets); kept for the sweep.
    cut_parts: dict[str, list[np.ndarray]] = {t: [] for t in cut_tensors}
    for start in range(0, len(x), CHUNK):
        xb = x[start : start + CHUNK]
        fvals = dict(zip(fnames, float_sess.run(fnames, {in_name: xb})))
        qvals = dict(zip(qnames, qdq_sess.run(qnames, {in_name: xb})))
        ref_parts.append(fvals[fnames[0]])
        full_parts.append(qvals[qnames[0]])
        for t in act_tensors:
            v = fvals[t]
            _, scale, zp, dtype = act_qp[t]
            axes = tuple(a for a in range(v.ndim) if a != 1) if v.ndim >= 2 else None
            act_pow[t][0] = act_pow[t][0] + np.sum(np.square(v, dtype=np.float64), axis=axes)
            act_pow[t][1] = act_pow[t][1] + np.sum(
                np.square(v - _fake_quant(v, scale, zp, dtype), dtype=np.float64), axis=axes
            )
            act_pow[t][2] = np.maximum(act_pow[t][2], np.max(np.abs(v), axis=axes))
            act_rng[t] = [min(act_rng[t][0], float(v.min())), max(act_rng[t][1], float(v.max()))]
        for t in cut_tensors:
            cut_parts[t].append(fvals[t])
        for t in cum_pow:
            f, q = fvals[t], qvals[t]
            cum_pow[t][0] += float(np.sum(np.square(f, dtype=np.float64)))
            cum_pow[t][1] += float(np.sum(np.square(q - f, dtype=np.float64)))
        del fvals, qvals
    del float_sess, qdq_sess
    ref = np.concatenate(ref_parts)
    full = np.concatenate(full_parts)
    signal = float(np.sum(np.square(ref, dtype=np.float64)))
    cut_values = {t: np.concatenate(parts) for t, parts in cut_parts.items()}
    cut_values[float_sess_input_name(float_model)] = x
    del cut_parts

    results = []
    for i, c in enumerate(layers):
        # Only the graph from this layer on differs from float: run just that part, from cached float tensors.
        suffix = suffix_model(partial_model(index, [c.name]), cuts[c.name], float_model)
        sess = make_session(suffix)
        feeds = [inp.name for inp in sess.get_inputs()]
        got = np.concatenate(
            [
                sess.run([sess.get_outputs()[0].name], {n: cut_values[n][s : s + 64] for n in feeds})[0]
                for s in range(0, len(x), 64)
            ]
        )
        del sess
        noise = float(np.sum(np.square(got - ref, dtype=np.float64)))
        acts, weights = params[c.name]
        in_db = min((_median_channel_db(act_pow[a[0]]) for a in acts), default=None)
        worst_act = min(acts, key=lambda a: _median_channel_db(act_pow[a[0]]), default=None)
        outlier = _outlier_ratio(act_pow[worst_act[0]]) if worst_act is not None else None
        scale_range = None
        if worst_act is not None:
            _, scale, zp, dtype = worst_act
            info = np.iinfo(np.dtype(dtype))
            scale_range = [float((info.min - zp) * scale), float((info.max - zp) * scale)]
        w_db = min(
            (
                sqnr_db(float(np.sum(w.astype(np.float64) ** 2)), float(np.sum((w - d).astype(np.float64) ** 2)))
                for _, w, d in weights
            ),
            default=None,
        )
        layer = LayerSensitivity(
            node=c.name,
            op=c.op_type,
            module=c.module,
            block=c.block,
            output_sqnr_db=sqnr_db(signal, noise),
            noise=noise / signal if signal > 0 else math.inf,
            top1_agreement=float((got.argmax(1) == ref.argmax(1)).mean()),
            input_sqnr_db=in_db,
            input_range=scale_range,
            input_outlier_ratio=outlier,
            weight_sqnr_db=w_db,
            cumulative_sqnr_db=sqnr_db(*cum_pow[out_tensors[c.name]]) if out_tensors[c.name] in cum_pow else None,
        )
        layer.reason = explain(layer, act_rng[worst_act[0]] if worst_act else None)
        results.append(layer)
        if progress:
            progress("sensitivity", i + 1, len(layers))
    results.sort(key=lambda s: s.noise, reverse=True)
    return Sensitivity(
        layers=results,
        images=len(x),
        full_output_sqnr_db=sqnr_db(signal, float(np.sum(np.square(full - ref, dtype=np.float64)))),
        full_top1_agreement=float((full.argmax(1) == ref.argmax(1)).mean()),
        seconds=time.perf_counter() - t0,
    )


def explain(layer: LayerSensitivity, seen_range: list[float] | None) -> str:
    """One line on why this layer loses accuracy in INT8."""
    local = [v for v in (layer.input_sqnr_db, layer.weight_sqnr_db) if v is not None]
    if layer.input_sqnr_db is not None and layer.input_sqnr_db < POOR_DB and layer.input_sqnr_db <= min(local):
        span = f" (values seen {seen_range[0]:.3g}..{seen_range[1]:.3g})" if seen_range else ""
        ratio = layer.input_outlier_ratio
        if ratio is not None and ratio >= OUTLIER_RATIO:
            return (
                f"outlier channels in its input{span} peak {ratio:.0f}x higher than the median channel; one INT8 scale "
                f"for all of them leaves the median channel {layer.input_sqnr_db:.1f} dB SQNR"
            )
        return (
            f"its input activations{span} share one INT8 scale and keep only {layer.input_sqnr_db:.1f} dB SQNR "
            "in the median channel"
        )
    if layer.weight_sqnr_db is not None and layer.weight_sqnr_db < POOR_DB:
        return f"its weights keep only {layer.weight_sqnr_db:.1f} dB SQNR in per-channel INT8"
    worst = min(local) if local else None
    local_txt = f"a small local error ({worst:.1f} dB)" if worst is not None else "its quantization error"
    return f"{local_txt} is amplified by the layers after it: the logits keep {layer.output_sqnr_db:.1f} dB"
