"""Pick the deployed candidate of one device from its bench rows, and say why every other one lost.

Pure logic on bench-result-level numbers (no files, no runtimes), so it is
tested with rows whose latencies are given. The rules, in order:

1. The float reference is the first reference candidate (fp32, or the
   device's float engine) whose top-1 was measured on this device; every
   drop is against that figure, never against a host's.
2. A candidate is out when it failed, has no accuracy or no figure for the
   objective (energy without a working meter is not guessed), or drops
   more than ``max_drop`` points of top-1 (over budget).
3. Among the rest the best ``objective`` figure wins (p50 latency, joules
   per image, file size), ties broken by higher top-1 then smaller file.
   For latency and energy, rows whose timing is known to be unreliable
   (``unstable``) only win when no stable row is within budget.
4. No candidate within budget: no winner; the over-budget candidate with the
   smallest drop is named ``best_over_budget`` so the caller can keep it
   under a different name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

OBJECTIVES = ("latency", "energy", "size")
#: outcome of each candidate in the choice
CHOSEN, LOST, OVER_BUDGET, FAILED, UNMEASURED, REFERENCE_ONLY = (
    "chosen",
    "lost",
    "over-budget",
    "failed",
    "unmeasured",
    "reference-only",
)
_EPS = 1e-9


@dataclass
class Measured:
    """One candidate's bench figures on one device (what the choice needs, nothing more)."""

    name: str
    format: str
    precision: str
    status: str  # ok | unstable | failed (bench row status)
    reason: str | None = None  # why it failed / is unstable
    runtime: str | None = None
    size_bytes: int | None = None
    top1: float | None = None
    p50_ms: float | None = None
    joules: float | None = None  # per image
    energy_unavailable: str | None = None
    reference: bool = False  # may serve as the float reference
    selectable: bool = True  # False: benched only as the float reference (not in --candidates)

    def metric(self, objective: str) -> float | None:
        if objective == "latency":
            return self.p50_ms
        if objective == "energy":
            return self.joules
        return None if self.size_bytes is None else float(self.size_bytes)


@dataclass
class Verdict:
    name: str
    outcome: str  # CHOSEN | LOST | OVER_BUDGET | FAILED | UNMEASURED | REFERENCE_ONLY
    reason: str
    drop: float | None = None  # top-1 points below the reference (negative: better)


@dataclass
class Choice:
    objective: str
    max_drop: float
    reference: str | None  # candidate whose top-1 is the float reference
    reference_top1: float | None
    chosen: str | None
    best_over_budget: str | None
    verdicts: list[Verdict] = field(default_factory=list)
    message: str = ""

    def verdict(self, name: str) -> Verdict:
        return next(v for v in self.verdicts if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _objective_phrase(objective: str, value: float) -> str:
    if objective == "latency":
        return f"p50 {value:.3f} ms"
    if objective == "energy":
        return f"{value * 1e3:.3f} mJ/image"
    return f"{value / 1e6:.2f} MB"


def _worse(objective: str) -> str:
    return {"latency": "too slow", "energy": "more energy", "size": "larger"}[objective]


def _key(m: Measured, objective: str) -> tuple[float, float, float]:
    metric = m.metric(objective)
    assert metric is not None and m.top1 is not None
    return (metric, -m.top1, float(m.size_bytes or 0))


def choose(rows: Sequence[Measured], objective: str, max_drop: float) -> Choice:
    """The choice for one device; see the module docstring for the rules."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {OBJECTIVES}")
    ref = next((m for m in rows if m.reference and m.status != "failed" and m.top1 is not None), None)
    choice = Choice(objective, max_drop, ref.name if ref else None, ref.top1 if ref else None, None, None)
    if ref is None:
        why = (
            "; ".join(f"{m.name}: {m.reason or 'no accuracy measured'}" for m in rows if m.reference)
            or "no float candidate"
        )
        for m in rows:
            outcome = FAILED if m.status == "failed" else UNMEASURED
            reason = (
                f"failed: {m.reason}"
                if m.status == "failed"
                else "no float reference top-1 on this device to judge the drop"
            )
            choice.verdicts.append(Verdict(m.name, outcome, reason))
        choice.message = (
            f"no float reference was measured on this device ({why}); nothing can be judged against the budget"
        )
        return choice

    eligible: list[Measured] = []
    over: list[Measured] = []
    verdicts: dict[str, Verdict] = {}
    for m in rows:
        drop = None if m.top1 is None else ref.top1 - m.top1  # type: ignore[operator]
        if m.status == "failed":
            verdicts[m.name] = Verdict(m.name, FAILED, f"failed: {m.reason or 'unknown error'}", drop)
        elif m.top1 is None:
            verdicts[m.name] = Verdict(m.name, UNMEASURED, "no accuracy measured on the device", drop)
        elif not m.selectable:
            verdicts[m.name] = Verdict(m.name, REFERENCE_ONLY, "float reference only (not among --candidates)", drop)
        elif m.metric(objective) is None:
            why = m.energy_unavailable or "not measured"
            verdicts[m.name] = Verdict(m.name, UNMEASURED, f"no {objective} figure: {why}", drop)
        elif drop is not None and drop > max_drop + _EPS:
            verdicts[m.name] = Verdict(
                m.name,
                OVER_BUDGET,
                f"over budget: top-1 {m.top1:.2f} % is {drop:.2f} points below the float {ref.top1:.2f} % ({ref.name}); "
                f"--max-drop {max_drop:g}",
                drop,
            )
            over.append(m)
        else:
            verdicts[m.name] = Verdict(m.name, LOST, "", drop)
            eligible.append(m)

    # Unstable timing matters for latency and energy only: a file's size is what it is.
    timed = objective != "size"
    stable = [m for m in eligible if m.status != "unstable"] if timed else eligible
    pool = stable or eligible
    if pool:
        best = min(pool, key=lambda m: _key(m, objective))
        best_metric = best.metric(objective)
        assert best_metric is not None
        note = (
            " (its timing is unstable: no stable candidate was within budget)"
            if timed and best.status == "unstable"
            else ""
        )
        verdicts[best.name] = Verdict(
            best.name,
            CHOSEN,
            f"best {objective} within budget: {_objective_phrase(objective, best_metric)}, "
            f"top-1 {best.top1:.2f} % (drop {verdicts[best.name].drop:+.2f}){note}",
            verdicts[best.name].drop,
        )
        for m in eligible:
            if m is best:
                continue
            value = m.metric(objective)
            assert value is not None
            if timed and m.status == "unstable" and best.status != "unstable":
                verdicts[m.name].reason = f"unstable: {m.reason or 'timing not reliable'}"
                continue
            if value > best_metric:
                pct = f" (+{100 * (value - best_metric) / best_metric:.0f} %)" if best_metric > 0 else ""
                verdicts[m.name].reason = (
                    f"{_worse(objective)}: {_objective_phrase(objective, value)} vs "
                    f"{_objective_phrase(objective, best_metric)}{pct}"
                )
            else:
                verdicts[m.name].reason = (
                    f"tie on {objective} ({_objective_phrase(objective, value)}); "
                    f"lower top-1 or larger file than {best.name}"
                )
        choice.chosen = best.name
        choice.message = f"chose {best.name}: {verdicts[best.name].reason}"
    else:
        if over:
            worst_case = min(over, key=lambda m: (ref.top1 - m.top1, *_key(m, objective)))  # type: ignore[operator]
            choice.best_over_budget = worst_case.name
            drop = (ref.top1 or 0.0) - (worst_case.top1 or 0.0)  # both measured: rows without top-1 are not 'over'
            choice.message = (
                f"no candidate within --max-drop {max_drop:g} of the float top-1 {ref.top1:.2f} %; "
                f"the closest is {worst_case.name} (drop {drop:.2f} points)"
            )
        else:
            choice.message = "no candidate could be measured within budget (see each row's reason)"
    choice.verdicts = [verdicts[m.name] for m in rows]
    return choice


def measured_from_row(
    name: str,
    row: dict[str, Any] | None,
    *,
    fmt: str,
    precision: str,
    reference: bool,
    selectable: bool = True,
    size_bytes: int | None = None,
) -> Measured:
    """A bench row (schema 1; ``None`` when the device returned none) as the figures the choice needs."""
    if row is None:
        return Measured(
            name,
            fmt,
            precision,
            "failed",
            "the device returned no result for it",
            reference=reference,
            selectable=selectable,
            size_bytes=size_bytes,
        )
    status = str(row.get("status") or "failed")
    reasons = row.get("reasons") or []
    reason = row.get("reason") or ("; ".join(map(str, reasons)) if reasons else None)
    acc = row.get("accuracy") or {}
    lat = row.get("latency_ms") or {}
    energy = row.get("energy") or {}
    model = row.get("model") or {}
    size = size_bytes
    if size is None and model.get("size_mb") is not None:
        size = int(round(float(model["size_mb"]) * 1e6))
    return Measured(
        name=name,
        format=fmt,
        precision=precision,
        status=status if status in ("ok", "unstable") else "failed",
        reason=reason,
        runtime=(row.get("runtime") or {}).get("name"),
        size_bytes=size,
        top1=acc.get("top1"),
        p50_ms=lat.get("p50"),
        joules=energy.get("joules_per_inference"),
        energy_unavailable=row.get("energy_unavailable"),
        reference=reference,
        selectable=selectable,
    )
