"""What a TensorRT version and a board can do, and so what ``compile`` does there.

One home for the version facts the builder, the trtexec path and ``doctor``
act on (from NVIDIA's TensorRT release notes and 10.x -> 11.x migration
guide):

* 8.5 / 8.6 (JetPack 5) and 10.x (JetPack 6, 7.0/7.1) build *weakly typed*
  networks: INT8 from a Q/DQ graph still needs ``BuilderFlag.INT8``, FP16
  comes from ``BuilderFlag.FP16`` (which also lets the float islands of an
  INT8 network run in half precision). 8.x also needs ``EXPLICIT_BATCH``.
  10.x can build strongly typed networks on request.
* 11.x (JetPack 7.2+) builds *strongly typed* networks only: the precision
  flags are gone, precision comes from the graph. So ``compile`` first writes
  an FP16 (mixed) ONNX (``fp16.py``): from the float model for fp16, from the
  Q/DQ model for int8 (its float islands in FP16, as 10.x's FP16 flag gives
  them); the layers the accuracy guard kept float stay FP32 in both.
  ``trtexec --stronglyTyped`` is a deprecated no-op there and ``--int8`` /
  ``--fp16`` / ``--best`` no longer exist.
* DLA: up to 10.7 on Xavier (AGX, NX) and Orin (AGX, NX; Orin Nano has
  none); no DLA from 10.8 through 11.4.0; from 11.4.1 on AGX Orin only.

Standard library only: ``doctor`` on a bare device imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import InputError, UnavailableError

WEAK, STRONG = "weak", "strong"
PRECISIONS = ("int8", "fp16", "fp32", "best")

# DLA boards by device-tree model (lower case fragments), and when TensorRT has DLA at all.
_DLA_BOARDS = ("agx xavier", "xavier nx", "agx orin", "orin nx")
_DLA_BOARDS_11 = ("agx orin",)
_DLA_DROPPED = (10, 8, 0)  # 10.7 was the last release with DLA
_DLA_BACK = (11, 4, 1)  # on Jetson AGX Orin only, JetPack 7.2.2 or later
DLA_SUPPORTED = (
    "DLA exists on Jetson AGX Xavier, Xavier NX, AGX Orin and Orin NX with TensorRT 8.x to 10.7, "
    "and on Jetson AGX Orin alone with TensorRT 11.4.1 or later (JetPack 7.2.2+)"
)


def version_tuple(version: Any) -> tuple[int, int, int] | None:
    """``"10.3.0.26"`` -> ``(10, 3, 0)``; None when there is no number in it."""
    parts = [int(p) for p in re.findall(r"\d+", str(version or ""))[:3]]
    if not parts:
        return None
    return (parts + [0, 0])[0], (parts + [0, 0])[1], (parts + [0, 0, 0])[2]


def has_precision_flags(version: Any) -> bool:
    """Whether this TensorRT has the INT8/FP16 builder flags (weak typing): everything before 11."""
    v = version_tuple(version)
    return v is None or v[0] < 11


def has_strong_typing(version: Any) -> bool:
    """Whether strongly typed networks exist (10.0 and later)."""
    v = version_tuple(version)
    return v is not None and v[0] >= 10


def choose_typing(version: Any, requested: bool | None = None, precision_flags: bool | None = None) -> str:
    """WEAK or STRONG for this TensorRT.

    ``precision_flags``: whether the installed bindings have ``BuilderFlag.INT8``
    and ``FP16`` (the builder passes what it sees; the version decides otherwise).
    ``requested``: None = weak wherever the flags exist (the float layers of an
    INT8 engine then run in FP16), True/False = the caller's choice.
    """
    flags = has_precision_flags(version) if precision_flags is None else precision_flags
    if not flags:
        if requested is False:
            raise InputError(f"TensorRT {version} builds strongly typed networks only; leave strong typing on")
        return STRONG
    if requested:
        if version_tuple(version) is not None and not has_strong_typing(version):
            raise UnavailableError(
                f"TensorRT {version} has no strongly typed networks (TensorRT 10 or newer); build without strong typing"
            )
        return STRONG
    return WEAK


def resolve_precision(precision: str, has_qdq: bool) -> str:
    """``best`` -> int8 for a Q/DQ model, fp16 for a float one; others unchanged."""
    p = str(precision).lower()
    if p not in PRECISIONS:
        raise InputError(f"--precision {precision} is not supported for TensorRT; use one of {', '.join(PRECISIONS)}")
    if p == "best":
        return "int8" if has_qdq else "fp16"
    return p


# -- DLA ----------------------------------------------------------------------
def board_has_dla(board: str | None, version: Any = None) -> bool | None:
    """Whether the board (device-tree model) has DLA for this TensorRT; None when the board is unknown."""
    if not board:
        return None
    name = board.lower()
    v = version_tuple(version)
    boards = _DLA_BOARDS_11 if v is not None and v >= _DLA_BACK else _DLA_BOARDS
    return any(b in name for b in boards)


def dla_refusal(version: Any, board: str | None) -> str | None:
    """Why ``--dla`` cannot work with this TensorRT on this board, or None when it may.

    Where a fact is unknown (no version, not a Jetson) the builder's own
    DLA core count has the last word.
    """
    v = version_tuple(version)
    if v is not None and _DLA_DROPPED <= v < _DLA_BACK:
        return f"TensorRT {version} has no DLA support (NVIDIA removed it in 10.8 and restored it in 11.4.1)"
    if v is not None and v >= _DLA_BACK and not board:
        return f"TensorRT {version} runs DLA only on Jetson AGX Orin, and this machine is not a Jetson"
    has = board_has_dla(board, version)
    if has is False:
        when = " with TensorRT 11.4.1 or later" if v is not None and v >= _DLA_BACK else ""
        return f"{board} has no DLA{when}"
    return None


def check_dla(dla_core: int | None, version: Any, board: str | None) -> None:
    """Raise UnavailableError (one line, naming what works) when ``--dla`` is asked for where DLA does not exist."""
    if dla_core is None:
        return
    why = dla_refusal(version, board)
    if why:
        raise UnavailableError(f"--dla {dla_core}: {why}; {DLA_SUPPORTED}; leave --dla out to build for the GPU")


# -- the plan -------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    """How one engine gets built: typing mode, flags and any ONNX rewrite."""

    tensorrt: str | None
    requested: str  # int8 | fp16 | best
    precision: str  # int8 | fp16
    typing: str  # weak | strong
    builder_flags: tuple[str, ...] = ()  # BuilderFlag names
    network_flags: tuple[str, ...] = ()  # NetworkDefinitionCreationFlag names
    trtexec_flags: tuple[str, ...] = ()
    fp16_onnx: bool = False  # strongly typed: write the FP16 (mixed) ONNX first
    dla_core: int | None = None

    @property
    def device(self) -> str:
        return "gpu" if self.dla_core is None else f"dla:{self.dla_core}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "typing": self.typing,
            "requested_precision": self.requested,
            "builder_flags": list(self.builder_flags),
            "network_flags": list(self.network_flags),
            "fp16_onnx": self.fp16_onnx,
            "device": self.device,
        }

    def describe(self) -> str:
        """One sentence: what ``compile --target tensorrt`` does with this TensorRT."""
        what = {
            "int8": "an INT8 engine from the Q/DQ model",
            "fp16": "an FP16 engine from the float model",
            "fp32": "an FP32 engine from the float model",
        }[self.precision]
        if self.precision == "fp32":
            how = f"{self.typing}ly typed, no precision flag"
        elif self.typing == WEAK:
            how = f"weakly typed with builder flags {', '.join(self.builder_flags)}"
        elif self.precision == "fp16":
            how = (
                "strongly typed, from an FP16 ONNX written from the float model (layers the guard kept float stay FP32)"
            )
        else:
            how = (
                "strongly typed, from a mixed ONNX written from the Q/DQ model (float16 Q/DQ scales, float layers "
                "in FP16, layers the guard kept float in FP32)"
            )
        on = "on the GPU" if self.dla_core is None else f"on DLA core {self.dla_core} with GPU fallback"
        return f"TensorRT {self.tensorrt or 'unknown'}: {what}, {how}, {on}"


def plan_build(
    version: Any,
    precision: str,
    has_qdq: bool,
    strongly_typed: bool | None = None,
    dla_core: int | None = None,
    precision_flags: bool | None = None,
) -> BuildPlan:
    """The build for ``precision`` (int8 | fp16 | best) with this TensorRT."""
    requested = str(precision).lower()
    resolved = resolve_precision(requested, has_qdq)
    typing = choose_typing(version, strongly_typed, precision_flags)
    v = version_tuple(version)
    network: list[str] = []
    if v is not None and v[0] < 10:
        network.append("EXPLICIT_BATCH")  # 10.x ignores it (and 11 removed it)
    builder: tuple[str, ...] = ()
    trtexec: tuple[str, ...] = ()
    if resolved == "fp32":
        if typing == STRONG:
            network.append("STRONGLY_TYPED")
    elif typing == WEAK:
        # FP16 also for INT8: the layers left in float then run in half precision.
        builder = ("FP16", "INT8") if resolved == "int8" else ("FP16",)
        trtexec = ("--int8", "--fp16") if resolved == "int8" else ("--fp16",)
    else:
        network.append("STRONGLY_TYPED")  # required on 10.x, accepted (always on) on 11.x
        if has_precision_flags(version):
            trtexec = ("--stronglyTyped",)  # 11's trtexec: a deprecated no-op, so not passed
    if dla_core is not None:
        builder = (*builder, "GPU_FALLBACK")
    return BuildPlan(
        tensorrt=None if version is None else str(version),
        requested=requested,
        precision=resolved,
        typing=typing,
        builder_flags=builder,
        network_flags=tuple(network),
        trtexec_flags=trtexec,
        fp16_onnx=typing == STRONG and resolved != "fp32",
        dla_core=dla_core,
    )


def jetson_report(version: str | None, board: str | None, release: dict[str, str] | None) -> dict[str, Any]:
    """``doctor --device jetson``'s TensorRT block: version, typing, DLA, and what ``compile`` will do."""
    report: dict[str, Any] = {
        "tensorrt": version,
        "board": board,
        "l4t": (release or {}).get("l4t"),
        "jetpack": (release or {}).get("jetpack"),
    }
    if version is None:
        report.update(typing=None, dla=None, compile=None)
        return report
    typing = choose_typing(version)
    why_no_dla = dla_refusal(version, board)
    report["typing"] = typing
    report["dla"] = {
        "supported": why_no_dla is None,
        "reason": why_no_dla or f"{board or 'this board'} with TensorRT {version}",
    }
    report["compile"] = {p: plan_build(version, p, has_qdq=(p == "int8")).describe() for p in ("int8", "fp16")}
    return report
