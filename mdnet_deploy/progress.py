"""The two progress callback shapes the library reports through (the CLI draws them; the library never prints).

``Say``: one line of news ("step 3: 8 layers float, ..."), for steps whose
length is unknown. ``Steps``: a stage name with work done and work total,
for steps that can draw a bar with a rate and an ETA. A function takes
whichever fits it, under these names, so the two never get confused.
"""

from __future__ import annotations

from typing import Callable

Say = Callable[[str], None]
Steps = Callable[[str, int, int], None]


def say_nothing(_: str) -> None:
    """The default ``Say``: no output."""


def count_nothing(_: str, __: int, ___: int) -> None:
    """The default ``Steps``: no output."""


__all__ = ["Say", "Steps", "count_nothing", "say_nothing"]
