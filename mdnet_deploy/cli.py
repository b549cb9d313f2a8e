"""Thin click front end over the library.

Each sub-command lives in ``mdnet_deploy/commands/<name>.py`` and exposes a
click command called ``command``; this module only assembles the group and
maps library errors to one line on stderr plus an exit code. Command
modules are imported lazily so ``mdnet-deploy bench`` on a Raspberry Pi
never imports torch or onnx.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from . import __version__
from .errors import MdnetDeployError

# name -> (module, one-line help). Help is duplicated here so that
# ``mdnet-deploy --help`` does not import every command's dependencies.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "Train MDNET on a data set and save an authors'-format checkpoint."),
    "export": ("export", "Export a checkpoint to ONNX with a parity check."),
    "quantize": ("quantize", "Calibrate and quantize an ONNX model to INT8 (QDQ) with an accuracy guard."),
    "compile": ("compile_", "Compile for a device: TFLite/LiteRT or a TensorRT engine."),
    "bench": ("bench", "Measure latency, energy and accuracy of artifacts on a device."),
    "pack-eval": ("pack_eval", "Pack an evaluation set as a uint8 .npz that travels without torch."),
    "doctor": ("doctor", "Show which runtimes and power meters work here, and how to fix the others."),
    "demo": ("demo", "Run the whole chain on the built-in digits data and print the results."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[cmd_name]
        module = importlib.import_module(f"mdnet_deploy.commands.{module_name}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MdnetDeployError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; no partial outputs were kept", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mdnet-deploy")
def main() -> None:
    """mdnet-deploy: MDNET checkpoints to ONNX, INT8, TFLite and TensorRT, benchmarked on the device."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
