"""The Pareto front: the points no other point beats on both axes at once."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(
    points: Sequence[tuple[float, float]], x_lower_is_better: bool = True, y_higher_is_better: bool = True
) -> list[int]:
    """Indices of the non-dominated points, sorted by x (ties: the better y first).

    A point is dominated when another is at least as good on both axes and
    strictly better on one. Equal points are all kept (none dominates).
    """
    sx = 1.0 if x_lower_is_better else -1.0
    sy = -1.0 if y_higher_is_better else 1.0
    norm = [(sx * x, sy * y) for x, y in points]  # both "lower is better" now
    front = []
    for i, (xi, yi) in enumerate(norm):
        dominated = any(xj <= xi and yj <= yi and (xj < xi or yj < yi) for j, (xj, yj) in enumerate(norm) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], norm[i][1]))
