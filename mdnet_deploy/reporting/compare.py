"""Base vs new bench results: match the rows, compute deltas, decide what is a regression.

Rows match when they ran on the same device with the same runtime and are
the same model: by sha256 first (the file did not change), else by file
name and precision (the model was updated; that is what a CI gate checks).

A metric regresses when it got worse by more than its threshold: relative
(``p50=10%``: 10 % of the base value) or absolute in the metric's unit
(``top1=0.5``: half a point of top-1). When both rows carry a 95 %
confidence interval for that metric, the worsening counted is the one
between the nearest ends of the two intervals: a change the noise can
explain is reported as "within noise", not as a regression. A row that ran
in the base and failed in the new results is a regression too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .fields import METRICS, Metric, device_label, get, interval, model_name, runtime_name, status, value

DEFAULT_THRESHOLDS = "p50=10%,top1=0.5,mj=10%"
ALIASES = {
    "latency": "p50",
    "top-1": "top1",
    "acc": "top1",
    "accuracy": "top1",
    "energy": "mj",
    "mj/image": "mj",
    "throughput": "ips",
    "images/s": "ips",
}

REGRESSION = "REGRESSION"
WITHIN_NOISE = "within noise"
BETTER = "better"
SAME = "within threshold"
NA = "n/a"


@dataclass(frozen=True)
class Threshold:
    metric: Metric
    amount: float
    relative: bool

    def describe(self) -> str:
        return f"{self.metric.key}={self.amount * 100:g}%" if self.relative else f"{self.metric.key}={self.amount:g}"


def parse_thresholds(spec: str) -> list[Threshold]:
    """``p50=10%,top1=0.5,mj=10%`` -> thresholds; one clear line for anything malformed."""
    out: dict[str, Threshold] = {}
    for item in [s.strip() for s in str(spec).split(",") if s.strip()]:
        key, sep, amount = item.partition("=")
        key = ALIASES.get(key.strip().lower(), key.strip().lower())
        if not sep or key not in METRICS or key == "size":
            names = ", ".join(k for k in METRICS if k != "size")
            raise InputError(
                f"--max-regression item '{item}' is not METRIC=LIMIT; metrics are {names} (e.g. p50=10%,top1=0.5)"
            )
        amount = amount.strip()
        relative = amount.endswith("%")
        try:
            number = float(amount.rstrip("%").strip())
        except ValueError:
            number = float("nan")
        if not math.isfinite(number) or number < 0:
            raise InputError(
                f"--max-regression {key}={amount} is not a limit; give a non-negative number, with % for a relative limit"
            )
        out[key] = Threshold(METRICS[key], number / 100.0 if relative else number, relative)
    if not out:
        raise InputError(f"--max-regression is empty; give e.g. {DEFAULT_THRESHOLDS}")
    return list(out.values())


@dataclass
class Delta:
    metric: Metric
    base: float | None
    new: float | None
    verdict: str
    limit: str = ""

    @property
    def change(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def relative(self) -> float | None:
        c = self.change
        return None if c is None or not self.base else c / abs(self.base)


@dataclass
class Pair:
    base: Mapping[str, Any]
    new: Mapping[str, Any]
    matched_by: str
    deltas: list[Delta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed_now: bool = False

    @property
    def regressed(self) -> bool:
        return self.failed_now or any(d.verdict == REGRESSION for d in self.deltas)

    @property
    def label(self) -> str:
        return f"{model_name(self.new)} · {runtime_name(self.new)} · {device_label(self.new)}"


@dataclass
class Comparison:
    pairs: list[Pair]
    only_base: list[Mapping[str, Any]]
    only_new: list[Mapping[str, Any]]
    thresholds: list[Threshold]

    @property
    def regressions(self) -> list[Pair]:
        return [p for p in self.pairs if p.regressed]


def _group(row: Mapping[str, Any]) -> tuple[str, str]:
    return device_label(row), runtime_name(row)


def match_rows(
    base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> tuple[list[Pair], list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Pairs (device, runtime, then model by sha256, else by name + precision, else by name), and the leftovers."""
    left = list(base)
    pairs: list[Pair] = []
    unmatched_new = []
    rules = (
        ("sha256", lambda r: get(r, "model", "sha256")),
        ("name and precision", lambda r: (model_name(r), get(r, "model", "precision"))),
        ("name", lambda r: model_name(r)),
    )
    pending = list(new)
    for how, key in rules:
        still = []
        for n in pending:
            k = key(n)
            hit = next((b for b in left if _group(b) == _group(n) and k and key(b) == k), None) if k else None
            if hit is None:
                still.append(n)
                continue
            left.remove(hit)
            pairs.append(Pair(hit, n, how))
        pending = still
    unmatched_new = pending
    order = {id(n): i for i, n in enumerate(new)}
    pairs.sort(key=lambda p: order[id(p.new)])
    return pairs, left, unmatched_new


def _judge(base: Mapping[str, Any], new: Mapping[str, Any], t: Threshold) -> Delta:
    m = t.metric
    b, n = value(base, m), value(new, m)
    limit_text = t.describe()
    if b is None or n is None:
        return Delta(m, b, n, NA, limit_text)
    sign = -1.0 if m.higher_is_better else 1.0  # worse > 0 means the new value is worse
    worse = sign * (n - b)
    limit = t.amount * abs(b) if t.relative else t.amount
    if worse <= 0:
        return Delta(m, b, n, BETTER if worse < 0 else SAME, limit_text)
    if worse <= limit:
        return Delta(m, b, n, SAME, limit_text)
    cb, cn = interval(base, m), interval(new, m)
    if cb and cn:
        # The smallest worsening the intervals allow: from base's end nearest new to new's end nearest base.
        least = (cn[0] - cb[1]) if not m.higher_is_better else (cb[0] - cn[1])
        if least <= limit:
            return Delta(m, b, n, WITHIN_NOISE, limit_text)
    return Delta(m, b, n, REGRESSION, limit_text)


def compare(
    base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], thresholds: Sequence[Threshold]
) -> Comparison:
    pairs, only_base, only_new = match_rows(base, new)
    for p in pairs:
        sb, sn = status(p.base), status(p.new)
        if sn == "failed":
            if sb != "failed":
                p.failed_now = True
                p.notes.append(f"failed in the new results: {p.new.get('reason') or 'no reason given'}")
            else:
                p.notes.append("failed in both results")
            continue
        if sb == "failed":
            p.notes.append(
                f"failed in the base results ({p.base.get('reason') or 'no reason'}); nothing to compare with"
            )
            continue
        if "unstable" in (sb, sn):
            p.notes.append(
                "unstable in "
                + " and ".join(w for w, s in (("base", sb), ("new", sn)) if s == "unstable")
                + ": its figures are noisy"
            )
        p.deltas = [_judge(p.base, p.new, t) for t in thresholds]
    return Comparison(pairs, only_base, only_new, list(thresholds))
