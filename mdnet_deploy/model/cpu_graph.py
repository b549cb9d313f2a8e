"""The CPU graph of MDNET: the same function in ops every CPU runtime has fast kernels for.

MDNET's attention computes q, k and v with grouped convolutions that read
3 input channels and write 1 output channel per group (``qkv_dwconv3x3``,
``5x5``, ``7x7``), and its FFN has two more that read 2 channels per group
(``dwconv3x3_1``, ``dwconv5x5_1``). No CPU runtime has a fast kernel for that
shape: ONNX Runtime runs an im2col and a tiny GEMM per group, and its INT8
QLinearConv is slower still. Three exact rewrites (docs/BENCHMARKS.md, issue 12):

* **The attention's value path** (:class:`ValueAttention`). With one channel
  per head (the released network) every softmax is over one element and
  equals 1, so the block computes ``project_out((1 - lambda) * v)``
  (shared/MDNET.md): q, k, their L2 norms, matmuls and softmax are dead code.
* **Depthwise + slice sums** (:class:`SliceSum`). A grouped few-in/one-out
  conv is a true depthwise conv followed by a sum over each group's ``n``
  channels. Ordering the channels *j-major* (channel ``j*c_out + o`` is group
  o's j-th input; the producing 1x1 conv's rows are permuted to match) makes
  that sum ``n`` contiguous channel slices added together: Split + Add, which
  stay in each runtime's own layout and run as integer adds in INT8. Where the
  producer cannot be permuted (fewer heads), :class:`DepthwiseSum` sums a
  reshaped middle axis instead.
* **Row bands** (:func:`limit_taps`, TFLite only): XNNPACK has no depthwise
  kernel above 25 taps, so the 7x7 conv runs as three row bands of at most 3x7.

Only the order of float additions changes, so outputs agree to rounding (the
exporters' parity gates check it against the authors' module). The rewrite
is done on the torch module, before export, so every backend that starts
from PyTorch (ONNX, litert-torch) gets it; replacements keep their module
paths, so ONNX node names (``/transform/attn/qkv_dwconv7x7/Conv``) and TFLite
tensor scopes still name the authors' modules for ``--exclude`` and the
float-fallback plan. TensorRT keeps the original form: it has its own
grouped-convolution tactics and fuses the original conv with its bias.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .mdnet import LAMBDA_INIT, MultiScaleDiffAttention, MultiScaleFFN

GRAPHS = ("cpu", "original")


class _Depthwise(nn.Module):
    """A grouped few-in/one-out conv rewritten as a depthwise conv plus a per-group sum (the subclasses say how).

    Holds what :func:`limit_taps` and :func:`_depthwise` need: the geometry of the
    original conv, its channels per group, and the depthwise weight the subclass sets.
    """

    weight: nn.Parameter
    bands: list[tuple[int, int]] | None = None  # row bands (limit_taps); None: one conv

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_grouped_sum(conv):
            raise ValueError(f"{conv} is not a grouped convolution with one output channel per group")
        self.per_group = conv.in_channels // conv.groups
        self.out_channels = conv.out_channels
        self.stride: tuple[int, ...] = tuple(conv.stride)
        self.padding: tuple[int, ...] = tuple(conv.padding)  # type: ignore[arg-type]  # zeros padding: ints
        self.dilation: tuple[int, ...] = tuple(conv.dilation)


class DepthwiseSum(_Depthwise):
    """``Conv2d(c_in, c_out, k, groups=c_out)`` computed as a depthwise conv over ``c_in`` and a per-group sum."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv)
        # (c_out, n, kh, kw) -> (c_out * n, 1, kh, kw): channel o*n + j gets w[o, j], exactly the input it met.
        self.weight = nn.Parameter(conv.weight.detach().reshape(conv.in_channels, 1, *conv.kernel_size).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _depthwise(self, x, None)
        b, _, h, w = y.shape
        y = y.reshape(b, self.out_channels, self.per_group, h, w).sum(dim=2)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class SliceSum(_Depthwise):
    """The same grouped conv for an input whose channels come *j-major*: channel ``j*c_out + o`` is group o's j-th.

    With that order the per-group sum is a sum of ``n`` contiguous channel slices
    (Split + Add), which every runtime keeps in its own layout and INT8 runs as
    integer adds; :class:`DepthwiseSum`'s reshape + sum over a middle axis is
    NCHW-only (litert-torch wraps it in transposes, and ORT's INT8 runs it in
    float). The bias rides on the first slice's channels, so the conv carries it.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv)
        n, c_out = self.per_group, self.out_channels
        # (c_out, n, kh, kw) -> (n * c_out, 1, kh, kw): channel j*c_out + o gets w[o, j].
        w = conv.weight.detach().permute(1, 0, 2, 3).reshape(n * c_out, 1, *conv.kernel_size)
        self.weight = nn.Parameter(w.clone())
        bias = torch.zeros(n * c_out, dtype=w.dtype)
        if conv.bias is not None:
            bias[:c_out] = conv.bias.detach()
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _depthwise(self, x, self.bias)
        parts = torch.split(y, self.out_channels, dim=1)
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out


def j_major(n: int, c_out: int) -> list[int]:
    """Old channel index for each new one when channels ``o*n + j`` are reordered to ``j*c_out + o``."""
    return [o * n + j for j in range(n) for o in range(c_out)]


def _permuted_conv(conv: nn.Conv2d, order: list[int]) -> nn.Conv2d:
    """A copy of ``conv`` whose output channels come in ``order``.

    For a dense conv that reorders its output rows; for a depthwise conv, whose
    input arrives in the same new order, each channel's own filter moves with it.
    """
    out = copy.deepcopy(conv)
    idx = torch.tensor(order)
    with torch.no_grad():
        out.weight.copy_(conv.weight[idx])
        if conv.bias is not None and out.bias is not None:
            out.bias.copy_(conv.bias[idx])
    return out


class ValueAttention(nn.Module):
    """The attention at one channel per head, as what it computes: ``project_out((1 - lambda) * v)``.

    With ``heads == dim`` every softmax is over a single element and equals 1
    (shared/MDNET.md), so q and k have no influence: the 3x3 and 5x5 branches,
    their L2 norms, the matmuls and the softmax are dead code that every
    runtime would otherwise execute. ``1 - lambda`` is folded into
    ``project_out``'s weight, and ``qkv``'s output channels are reordered
    j-major so the 7x7 grouped conv becomes a :class:`SliceSum`.
    """

    def __init__(self, attn: MultiScaleDiffAttention) -> None:
        super().__init__()
        if attn.heads != attn.dim:
            raise ValueError("only the one-channel-per-head attention reduces to its value path")
        v_conv = attn.qkv_dwconv7x7
        order = j_major(v_conv.in_channels // v_conv.groups, v_conv.out_channels)
        with torch.no_grad():
            lam = (
                torch.exp(torch.sum(attn.lambda_q1 * attn.lambda_k1))
                - torch.exp(torch.sum(attn.lambda_q2 * attn.lambda_k2))
                + LAMBDA_INIT
            )
        self.qkv = _permuted_conv(attn.qkv, order)
        self.qkv_dwconv7x7 = SliceSum(v_conv)
        self.project_out = copy.deepcopy(attn.project_out)
        with torch.no_grad():
            self.project_out.weight.mul_(1.0 - lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_out(self.qkv_dwconv7x7(self.qkv(x)))


class CpuFFN(nn.Module):
    """MDNET's feed-forward with its two grouped 2-in/1-out convs as :class:`SliceSum`.

    ``project_in``'s output channels (and with them the depthwise 3x3/5x5
    filters) are reordered even-then-odd within each half, so the channel pairs
    the grouped convs sum arrive as contiguous slices: ``x1`` becomes
    ``cat(a3 even, a5 even, a3 odd, a5 odd)`` instead of ``cat(a3, a5)``.
    """

    def __init__(self, ffn: MultiScaleFFN) -> None:
        super().__init__()
        h = ffn.hidden
        if h % 2:
            raise ValueError("the feed-forward's hidden width must be even")
        half = list(range(0, h, 2)) + list(range(1, h, 2))
        order = half + [h + i for i in half]
        self.hidden = h
        self.project_in = _permuted_conv(ffn.project_in, order)
        self.dwconv3x3 = _permuted_conv(ffn.dwconv3x3, order)
        self.dwconv5x5 = _permuted_conv(ffn.dwconv5x5, order)
        self.dwconv3x3_1 = SliceSum(ffn.dwconv3x3_1)
        self.dwconv5x5_1 = SliceSum(ffn.dwconv5x5_1)
        self.project_out = copy.deepcopy(ffn.project_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        # Each of d3, d5 is [first-half evens, first-half odds, second-half evens, second-half odds].
        a3e, a3o, b3e, b3o = torch.split(F.relu(self.dwconv3x3(x)), self.hidden // 2, dim=1)
        a5e, a5o, b5e, b5o = torch.split(F.relu(self.dwconv5x5(x)), self.hidden // 2, dim=1)
        x1 = F.relu(self.dwconv3x3_1(torch.cat([a3e, a5e, a3o, a5o], dim=1)))
        x2 = F.relu(self.dwconv5x5_1(torch.cat([b3e, b5e, b3o, b5o], dim=1)))
        return self.project_out(torch.cat([x1, x2], dim=1))


# XNNPACK's depthwise kernels take at most 25 taps (5x5); a 7x7 depthwise conv falls back to a grouped
# GEMM with one channel per group, which measured 18x slower than a 5x5 over the same tensor
# (docs/BENCHMARKS.md, issue 12). Row bands of at most this many taps each stay on the fast kernels.
XNNPACK_DWCONV_TAPS = 25


def limit_taps(model: nn.Module, max_taps: int) -> list[str]:
    """Make every rewritten depthwise conv with more than ``max_taps`` taps run as row bands; returns their paths.

    A band is the same depthwise conv restricted to some kernel rows, read from
    a once-padded input shifted by its first row; the bands' sum is the
    convolution (only the order of float additions changes). Band weights are
    parameters of the same module, so tensor names still carry its path.
    """
    banded = []
    for name, module in model.named_modules():
        if not isinstance(module, _Depthwise):
            continue
        kh, kw = module.weight.shape[-2:]
        if kh * kw <= max_taps or module.stride != (1, 1) or module.dilation != (1, 1):
            continue
        rows = max(1, max_taps // kw)
        module.bands = [(r0, min(kh, r0 + rows)) for r0 in range(0, kh, rows)]
        for i, (r0, r1) in enumerate(module.bands):
            setattr(module, f"weight_band{i}", nn.Parameter(module.weight.detach()[:, :, r0:r1].clone()))
        banded.append(name)
    return banded


def _depthwise(module: _Depthwise, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``module``'s depthwise conv of ``x`` (plus ``bias``), whole or in the row bands :func:`limit_taps` set."""
    bands = module.bands
    groups = int(module.weight.shape[0])
    if not bands:
        return F.conv2d(x, module.weight, bias, module.stride, module.padding, module.dilation, groups=groups)
    ph, pw = module.padding
    kh = int(module.weight.shape[2])
    xp = F.pad(x, (pw, pw, ph, ph))
    h_out = xp.shape[2] - kh + 1
    out = None
    for i, (r0, r1) in enumerate(bands):
        part = F.conv2d(
            xp[:, :, r0 : r0 + h_out + r1 - r0 - 1], getattr(module, f"weight_band{i}"), bias, groups=groups
        )
        bias = None  # the first band carries it
        out = part if out is None else out + part
    assert out is not None
    return out


def is_grouped_sum(conv: nn.Module) -> bool:
    """A grouped (not depthwise) convolution with one output channel per group: the slow shape."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.groups > 1
        and conv.out_channels == conv.groups
        and conv.in_channels // conv.groups > 1
        and conv.padding_mode == "zeros"
    )


def to_cpu_graph(model: nn.Module, max_taps: int | None = None) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` in the CPU form; returns it (in eval mode) and the module paths that were rewritten.

    MDNET's attention at one channel per head becomes :class:`ValueAttention`
    and its feed-forward :class:`CpuFFN`; any other grouped few-in/one-out conv
    (an attention with fewer heads) becomes a :class:`DepthwiseSum`. With
    ``max_taps`` (XNNPACK: :data:`XNNPACK_DWCONV_TAPS`), wider depthwise kernels
    run as row bands (:func:`limit_taps`). ``model`` itself is left untouched.
    """
    out = copy.deepcopy(model).eval()
    rewritten: list[str] = []
    for name, module in list(out.named_modules()):
        if any(name.startswith(done + ".") for done in rewritten):
            continue  # inside a module already replaced whole
        if isinstance(module, MultiScaleDiffAttention) and module.heads == module.dim:
            replacement: nn.Module = ValueAttention(module)
        elif isinstance(module, MultiScaleFFN) and module.hidden % 2 == 0:
            replacement = CpuFFN(module)
        elif is_grouped_sum(module):
            replacement = DepthwiseSum(module)  # type: ignore[arg-type]
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, attr, replacement)
        rewritten.append(name)
    if max_taps is not None:
        rewritten += [f"{name} (row bands)" for name in limit_taps(out, max_taps)]
    return out, rewritten


def for_graph(model: nn.Module, graph: str, max_taps: int | None = None) -> tuple[nn.Module, list[str]]:
    """``model`` in the requested graph form: ``cpu`` (rewritten copy) or ``original`` (itself)."""
    if graph == "cpu":
        return to_cpu_graph(model, max_taps)
    if graph == "original":
        return model, []
    raise InputError(f"graph {graph!r} is not known; use one of {', '.join(GRAPHS)}")
