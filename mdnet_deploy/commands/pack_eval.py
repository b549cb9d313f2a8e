"""``mdnet-deploy pack-eval``: an evaluation set as a uint8 .npz that travels without torch.

The .npz holds ``x`` (N,H,W,3 uint8), ``y`` (int64), ``labels`` and a
``description`` of the source; ``bench --eval`` on a device reads it with
numpy alone and preprocesses it as each artifact's metadata says.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ._common import console, info


def parse_size(value: str) -> tuple[int, int]:
    """'32' -> (32, 32); '24x32' -> (24, 32) as height x width."""
    text = str(value).lower().replace(" ", "")
    parts = text.split("x") if "x" in text else [text, text]
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--size '{value}' is not valid; give one number (32) or HEIGHTxWIDTH (32x32)") from None
    if h < 1 or w < 1:
        raise InputError(f"--size '{value}' is not valid; give positive sizes")
    return h, w


@click.command(name="pack-eval")
@click.argument("spec")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("eval.npz"),
    show_default=True,
    help="The .npz to write.",
)
@click.option("--size", default="32", show_default=True, help="Image size the images are resized to (N or HxW).")
@click.option("--limit", type=int, default=None, help="Keep this many images (deterministic, class-balanced).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --limit subset.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--trust-pickle", is_flag=True, help="Allow CIFAR data files that pickle Python objects (runs code from the file)."
)
def command(spec: str, output: Path, size: str, limit: int | None, seed: int, force: bool, trust_pickle: bool) -> None:
    """Pack the evaluation set SPEC (test split) into a uint8 .npz for bench --eval on a device.

    \b
    Example:
      mdnet-deploy pack-eval ~/data/cifar-100-python -o eval.npz --limit 2000
    """
    from ..bench.evalset import pack_eval
    from ..data.pickles import trusted_pickles
    from ..fsutil import check_output

    hw = parse_size(size)
    check_output(
        output, force=force, inputs=[spec.rsplit(":", 1)[0] if spec.endswith((":train", ":test", ":all")) else spec]
    )
    info(f"packing {spec}")
    with trusted_pickles(trust_pickle):
        packed = pack_eval(spec, output, size=hw, limit=limit, seed=seed)
    console.print(
        f"wrote {packed.path}: {packed.n} images {packed.size[0]}x{packed.size[1]}, {packed.num_classes} classes, "
        f"{packed.bytes / 1e6:.2f} MB, from {packed.description}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
