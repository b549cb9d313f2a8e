"""`mdnet-deploy train`: train MDNET with the authors' recipe, save a plain state_dict."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ._common import console, err_console, parse_floats


@click.command(name="train")
@click.option(
    "--data", required=True, help="Data-set spec (digits, CIFAR folder, image folder, .npz); its train split is used."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Checkpoint to write (.pth).")
@click.option("--epochs", type=int, default=200, show_default=True)
@click.option(
    "--width", type=float, default=1.0, show_default=True, help="Width multiplier (1 = the authors' network)."
)
@click.option("--heads", type=int, default=None, help="Attention heads (default: one per channel, as the authors').")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--no-hflip", is_flag=True, help="Disable horizontal flips (e.g. for digits or text).")
@click.option(
    "--val",
    "val_data",
    help="Data-set spec to report per-epoch validation accuracy on (default: the test split of --data).",
)
@click.option("--mean", help="Normalisation mean R,G,B (default CIFAR-100).")
@click.option("--std", help="Normalisation std R,G,B (default CIFAR-100).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--trust-pickle", is_flag=True, help="Allow CIFAR data files that pickle Python objects (runs code from the file)."
)
def command(
    data: str,
    output: Path,
    epochs: int,
    width: float,
    heads: int | None,
    batch_size: int,
    lr: float,
    no_hflip: bool,
    val_data: str | None,
    mean: str | None,
    std: str | None,
    seed: int,
    force: bool,
    trust_pickle: bool,
) -> None:
    """Train MDNET on --data and save an authors'-format checkpoint.

    \b
    Example:
      mdnet-deploy train --data digits:train -o digits.pth --epochs 5 --width 0.25
    """
    from ..artifact import Preprocessing
    from ..data.dataset import validation_spec
    from ..data.pickles import trusted_pickles
    from ..fsutil import check_output
    from ..model.train import TrainConfig, train_checkpoint

    check_output(output, force=force, inputs=[data, val_data])
    prep = Preprocessing()
    if mean or std:
        # parse_floats has checked three finite values each
        prep = Preprocessing(
            mean=parse_floats(mean, "--mean") or prep.mean,  # type: ignore[arg-type]
            std=parse_floats(std, "--std") or prep.std,  # type: ignore[arg-type]
        )
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, hflip=not no_hflip, seed=seed, width=width, heads=heads
    )
    with trusted_pickles(trust_pickle), Progress(
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("train", total=None)

        def on_step(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total)

        def on_epoch(s) -> None:  # noqa: ANN001
            val = f", val top-1 {s.val_top1:.2f} %" if s.val_top1 is not None else ""
            bar.console.print(
                f"epoch {s.epoch}/{epochs}: loss {s.loss:.4f}, train top-1 {s.train_top1:.2f} %{val} ({s.seconds:.1f} s)"
            )

        path = train_checkpoint(data, output, cfg, prep, validation_spec(data, val_data), on_step, on_epoch)
    # The checkpoint holds weights only: say which statistics it was trained with, so export/bench get the same.
    console.print(
        f"wrote {path} (trained with {prep.describe()}; give export, compile and bench the same "
        f"--mean {','.join(f'{v:g}' for v in prep.mean)} --std {','.join(f'{v:g}' for v in prep.std)})",
        markup=False,
        highlight=False,
    )
