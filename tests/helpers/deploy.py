"""The small deploy every deploy test runs: 32 calibration and 40 evaluation digits, 0.5/0.5 statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def quick_args(warmup: str = "2", iterations: int = 10) -> list[str]:
    """The CLI options of the small deploy (everything but the device, the candidates and -o)."""
    return [
        "--calib",
        "digits:train",
        "--calib-size",
        "32",
        "--eval",
        "digits:test",
        "--eval-size",
        "40",
        "--warmup",
        warmup,
        "--iterations",
        str(iterations),
        "--mean",
        "0.5,0.5,0.5",
        "--std",
        "0.5,0.5,0.5",
    ]


def config(ckpt: Path, out: Path, **changes: Any) -> Any:
    """The small deploy's DeployConfig on the host, with ``changes`` applied."""
    from mdnet_deploy.deploy.core import DeployConfig

    base: dict[str, Any] = dict(
        checkpoint=ckpt,
        output=out,
        device="host",
        calib="digits:train",
        calib_size=32,
        eval_spec="digits:test",
        eval_size=40,
        warmup="2",
        iterations=10,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    base.update(changes)
    return DeployConfig(**base)
