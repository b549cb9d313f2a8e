"""Thin click front end over the library.

Each sub-command lives in ``mdnet_deploy/commands/<name>.py`` and exposes a
click command called ``command``; this module only assembles the group and
maps library errors to one line on stderr plus an exit code. Command
modules are imported lazily so ``mdnet-deploy bench`` on a Raspberry Pi
never imports torch or onnx.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import signal
import sys
from typing import Any, Iterator

import click

from . import __version__
from .errors import Interrupted, MdnetDeployError, one_line

#: Signals that end a run like Ctrl-C does: ``timeout`` and CI cancellation
#: send SIGTERM, a closed terminal or ssh session SIGHUP.
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

#: Set to 1 to let an unexpected exception through with its traceback (for bug reports).
DEBUG_ENV = "MDNET_DEPLOY_DEBUG"

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
    "report": ("report", "Write one self-contained HTML report (or Markdown + PNGs) from bench and quantize outputs."),
    "compare": ("compare", "Compare two bench results files and exit non-zero on a regression (a CI gate)."),
    "demo": ("demo", "Run the whole chain on the built-in digits data and print the results."),
    "deploy": ("deploy", "Build, bench on the device and pick the best artifact per device within an accuracy budget."),
    "run": ("run", "Repeat a deploy from its pipeline.yaml and say which inputs changed."),
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
            fail(exc)
        except KeyboardInterrupt as exc:
            fail(exc)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors of a sub-command, ctx.exit(): main() renders them
        except Exception as exc:
            if os.environ.get(DEBUG_ENV) == "1" or _broken_pipe(exc):
                raise
            fail(exc)

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Like click's, but every failure is one ``error:`` line, and SIGTERM/SIGHUP act like Ctrl-C."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            with stop_signals_interrupt():
                rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # bare `mdnet-deploy`: the help text, as before
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            # click's own four-line usage block becomes one line that says where the help is.
            ctx = getattr(exc, "ctx", None)  # UsageError and its kind carry the command's context
            where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
            click.echo(f"error: {' '.join(exc.format_message().split()).rstrip('.')}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort as exc:
            code = exc.__cause__.exit_code if isinstance(exc.__cause__, Interrupted) else 130
            click.echo("error: interrupted; no partial outputs were kept", err=True)
            sys.exit(code)
        except OSError as exc:
            if _broken_pipe(exc):  # `mdnet-deploy bench ... | head`: not an error worth a line
                sys.exit(1)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)


def fail(exc: BaseException) -> None:
    """Print the one ``error:`` line for ``exc`` and exit with its code; the only place the CLI does so."""
    if isinstance(exc, KeyboardInterrupt):
        click.echo("error: interrupted; no partial outputs were kept", err=True)
        raise click.exceptions.Exit(exc.exit_code if isinstance(exc, Interrupted) else 130)
    if isinstance(exc, MdnetDeployError):
        click.echo(f"error: {one_line(exc)}", err=True)
        raise click.exceptions.Exit(exc.exit_code)
    click.echo(
        f"error: internal error ({one_line(exc)}); please report it, with the traceback that {DEBUG_ENV}=1 shows",
        err=True,
    )
    raise click.exceptions.Exit(1)


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`Interrupted` while the CLI runs.

    Every temporary file and folder is removed by a ``finally`` or a context
    manager on the way out, so raising is all a signal needs to do. A second
    signal during that clean-up is ignored: it would leave the very files the
    first one is removing.
    """
    import threading

    from .fsutil import request_stop

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    stopping = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        request_stop(signum)
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        request_stop(None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mdnet-deploy")
def main() -> None:
    """mdnet-deploy: MDNET checkpoints to ONNX, INT8, TFLite and TensorRT, benchmarked on the device."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
