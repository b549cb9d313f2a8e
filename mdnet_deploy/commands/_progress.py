"""A training progress bar: one bar per epoch, with images/s and the time left."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def epoch_bar(console: Console, epochs: int, batch_size: int) -> Iterator[Callable[[int, int], None]]:
    """Yields ``on_step(step, total)`` for ``train_model``; the bar restarts at each epoch.

    images/s counts the images of the steps seen so far in this epoch (the
    last batch may be smaller: a small over-estimate on that one step).
    """
    columns = (
        TextColumn("epoch {task.fields[epoch]}/" + str(epochs)),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[ips]:>7.1f} img/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("train", total=None, epoch=1, ips=0.0)
        state = {"epoch": 0, "t0": time.perf_counter()}

        def on_step(step: int, total: int) -> None:
            per_epoch = max(1, total // max(1, epochs))
            epoch = min(epochs, (step - 1) // per_epoch + 1)
            if epoch != state["epoch"]:
                state.update(epoch=epoch, t0=time.perf_counter())
            done = step - (epoch - 1) * per_epoch
            elapsed = max(1e-9, time.perf_counter() - state["t0"])
            bar.update(task, completed=done, total=per_epoch, epoch=epoch, ips=done * batch_size / elapsed)

        yield on_step
