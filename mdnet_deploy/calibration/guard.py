"""The accuracy guard: return the most sensitive layers to float until INT8 is within budget.

Layers are taken in sensitivity order (largest output noise first); a step
keeps the first ``k`` of them float. ``k`` grows until the top-1 drop is at
most ``max_drop``: each step adds the fewest layers that hold half of the
remaining estimated noise, but at least one and no more than doubling the
float set, so a budget is reached in a few steps whatever the model. Once a
``k`` meets the budget after a smaller one failed, the gap is bisected so
the float set is as small as measurement shows it can be. Every step is a
real quantized model measured on the evaluation set; nothing is predicted.

Without evaluation data the guard cannot measure, so :func:`default_float_count`
keeps float the fewest top-ranked layers whose removal lifts the estimated
logits SQNR (the summed noise of the layers left INT8) to
:data:`DEFAULT_TARGET_SQNR_DB`. Why 20 dB: on the digits MDNETs we measured,
all-INT8 models at 20-30 dB kept top-1 within 0.3 points (width 0.5: 20.5 dB,
-0.28; full size: 29.4 dB, 0.00), while those with an outlier layer sat at
4-12 dB and lost 2-29 points; floating the one layer responsible brought
them back above 20 dB and within budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

#: Without --eval: keep float the top layers until the estimated logits SQNR reaches this.
DEFAULT_TARGET_SQNR_DB = 20.0
#: The guard never keeps more than this fraction of the quantizable layers float by itself.
DEFAULT_MAX_FLOAT_FRACTION = 0.5


@dataclass
class StepResult:
    step: int
    phase: str  # start | grow | refine
    float_layers: int  # ranked layers kept float in this step (user exclusions not counted)
    added: list[str]  # layers returned to float relative to the previous step
    requantized: list[str]  # layers quantized again relative to the previous step (refine only)
    top1: float
    top5: float | None  # None when the evaluator reports top-1 only
    drop: float  # float top-1 minus INT8 top-1, percentage points
    top1_agreement: float | None  # None when the evaluator gives no logits
    met: bool
    seconds: float
    model_path: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model_path")
        return d


@dataclass
class GuardOutcome:
    steps: list[StepResult]
    best: StepResult
    met: bool
    cap: int


Evaluate = Callable[[int], StepResult]  # k -> a measured step (the caller builds and runs the model)


def next_k(k: int, noise: Sequence[float], cap: int) -> int:
    """The next float-set size: half the remaining noise, at least +1, at most doubling."""
    rest = sum(noise[k:])
    j, acc = k, 0.0
    while j < len(noise) and (acc < 0.5 * rest or j == k):
        acc += noise[j]
        j += 1
    return min(max(j, k + 1), max(2 * k, k + 2), cap)


def run_guard(
    evaluate: Evaluate,
    noise: Sequence[float],
    max_drop: float,
    cap: int,
    progress: Callable[[str], None] | None = None,
) -> GuardOutcome:
    """Grow, then bisect, the float prefix of the ranked layers; ``evaluate(k)`` measures one step."""
    results: dict[int, StepResult] = {}
    order: list[StepResult] = []

    def measure(k: int, phase: str) -> StepResult:
        if k not in results:
            step = evaluate(k)
            step.step, step.phase = len(order), phase
            results[k] = step
            order.append(step)
            if progress:
                progress(f"step {step.step}: {k} layers float, top-1 drop {step.drop:+.2f} points")
        return results[k]

    k = 0
    failed: int | None = None
    passed: int | None = None
    while True:
        step = measure(k, "start" if k == 0 else "grow")
        if step.met:
            passed = k
            break
        failed = k
        if k >= cap:
            break
        k = next_k(k, noise, cap)
    if passed is not None and failed is not None:
        while passed - failed > 1:
            mid = (passed + failed) // 2
            if measure(mid, "refine").met:
                passed = mid
            else:
                failed = mid
    if passed is not None:
        best = results[passed]
    else:  # over budget: the smallest drop, then the fewest float layers
        best = min(results.values(), key=lambda s: (s.drop, s.float_layers))
    return GuardOutcome(order, best, passed is not None, cap)


def default_float_count(noise: Sequence[float], cap: int, target_db: float = DEFAULT_TARGET_SQNR_DB) -> int:
    """Fewest top-ranked layers to keep float so the summed remaining noise reaches ``target_db``."""
    limit = 10 ** (-target_db / 10.0)
    k = 0
    while k < cap and sum(noise[k:]) > limit:
        k += 1
    return k


def estimated_sqnr_db(noise: Sequence[float], k: int) -> float:
    rest = sum(noise[k:])
    return math.inf if rest <= 0 else -10.0 * math.log10(rest)
