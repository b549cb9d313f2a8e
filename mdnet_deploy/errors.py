"""One exception family for the whole library.

The CLI turns any :class:`MdnetDeployError` into a single line on stderr and a
non-zero exit code, so every message must say what is wrong *and* how to fix
it, in one sentence, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

try:  # Python 3.8+: typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore[assignment,misc]


class BudgetResult(Protocol):
    """What an over-budget error carries: the model kept and its report.

    calibration.pipeline.QuantizeResult is one; a Protocol rather than that class, so
    errors.py (imported by everything, the device side too) imports nothing above it.
    """

    path: Path
    report: Dict[str, Any]


class MdnetDeployError(Exception):
    """Base class. ``str(err)`` is the one line the user sees."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # Keep the message on one line: the CLI prints nothing else.
        super().__init__(" ".join(str(message).split()))


class InputError(MdnetDeployError):
    """A file, folder or option the user gave is missing or wrong."""


class CheckpointError(InputError):
    """A checkpoint cannot be read or does not fit MDNET."""


class DataError(InputError):
    """A data-set spec cannot be read or does not fit the model."""


class ArtifactError(InputError):
    """An artifact (ONNX, TFLite, engine) or its metadata is unusable."""


class OutputError(MdnetDeployError):
    """An output path cannot be written (exists, unwritable, ...)."""


class VerificationError(MdnetDeployError):
    """A converted artifact does not match its parent within tolerance."""

    exit_code = 3


class AccuracyBudgetError(MdnetDeployError):
    """Quantization could not meet the accuracy budget (best model kept).

    ``result`` is the :class:`~mdnet_deploy.calibration.QuantizeResult` (a
    :class:`BudgetResult`) of the best model, written under its over-budget name
    (None when there is none).
    """

    exit_code = 4

    def __init__(self, message: str, result: BudgetResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class ConversionError(MdnetDeployError):
    """A converter (onnxsim, litert-torch, TensorRT) failed."""

    exit_code = 5


class UnavailableError(MdnetDeployError):
    """A runtime, power meter or device interface is not usable here."""

    exit_code = 6


class BenchFailedError(MdnetDeployError):
    """At least one row of a benchmark failed (the others were reported)."""

    exit_code = 7


class RegressionError(MdnetDeployError):
    """``compare`` found a regression beyond the thresholds (the table says which)."""

    exit_code = 8


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind (temporary files are removed on the way) and exit 128+signal.

    A KeyboardInterrupt so every ``finally`` / ``except BaseException`` clean-up
    that already handles Ctrl-C handles ``timeout``, CI cancellation and a
    closed terminal the same way.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def one_line(exc: BaseException) -> str:
    """The single way an exception becomes one line of text for the user.

    Our own errors are already one sentence; anything else (a library's
    OSError, a paramiko failure) is named by its type, with its message
    squeezed onto one line.
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, MdnetDeployError):
        return text
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
