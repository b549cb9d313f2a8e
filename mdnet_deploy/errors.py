"""One exception family for the whole library.

The CLI turns any :class:`MdnetDeployError` into a single line on stderr and a
non-zero exit code, so every message must say what is wrong *and* how to fix
it, in one sentence, without a traceback.
"""

from __future__ import annotations


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
    """Quantization could not meet the accuracy budget (best model kept)."""

    exit_code = 4


class ConversionError(MdnetDeployError):
    """A converter (onnxsim, litert-torch, TensorRT) failed."""

    exit_code = 5


class UnavailableError(MdnetDeployError):
    """A runtime, power meter or device interface is not usable here."""

    exit_code = 6


class BenchFailedError(MdnetDeployError):
    """At least one row of a benchmark failed (the others were reported)."""

    exit_code = 7
