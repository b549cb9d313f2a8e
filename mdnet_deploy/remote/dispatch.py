"""Bench on one device (``--host``) or a fleet (``--inventory``): the one entry point the CLI and API share.

The evaluation set travels as a packed uint8 ``.npz`` (the device reads it
with numpy alone); any other spec is packed into a temporary one first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import InputError
from .bench import run_remote_bench
from .fleet import run_fleet
from .inventory import load_inventory
from .session import Progress
from .target import parse_target


def _noop(_: str) -> None:
    pass


@contextlib.contextmanager
def packed_eval(spec: str | None, progress: Progress | None = None) -> Iterator[str | None]:
    """An .npz to send to a device: the spec itself, or a temporary pack of it (removed on the way out)."""
    if spec is None or str(spec).lower().endswith(".npz"):
        yield spec
        return
    from ..bench.evalset import pack_eval

    with tempfile.TemporaryDirectory(prefix="mdnet-eval-") as tmp:
        (progress or _noop)(f"packing {spec} into a uint8 .npz for the device")
        yield str(pack_eval(spec, Path(tmp) / "eval.npz").path)


def bench_remote(
    models: Sequence[str | os.PathLike[str]],
    eval_spec: str | None = None,
    bench_args: Sequence[str] = (),
    *,
    host: str | None = None,
    inventory: str | os.PathLike[str] | None = None,
    device: str | None = None,
    max_parallel: int = 4,
    progress: Progress | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Result rows from ``host`` (one device) or every host of ``inventory`` (in parallel).

    ``options`` are :class:`~mdnet_deploy.remote.bench.RemoteOptions` fields
    (setup, identity, accept_new_host_key, keep_remote, timeout, ...).
    """
    if (host is None) == (inventory is None):
        raise InputError("give either --host or --inventory")
    with packed_eval(eval_spec, progress) as npz:
        if inventory is not None:
            targets = load_inventory(inventory, default_device=device)
            options.pop("identity", None)  # each inventory host names its own key
            return run_fleet(targets, models, npz, bench_args, max_parallel=max_parallel, progress=progress, **options)
        assert host is not None
        return run_remote_bench(
            parse_target(host, device or "rpi"), models, npz, bench_args, progress=progress, **options
        )
