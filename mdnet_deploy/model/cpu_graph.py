"""The CPU graph of MDNET: grouped "few-in, one-out" convolutions as depthwise + sum.

MDNET's attention computes q, k and v with grouped convolutions that read
3 input channels and write 1 output channel per group (``qkv_dwconv3x3``,
``5x5``, ``7x7``), and its FFN has two more that read 2 channels per group
(``dwconv3x3_1``, ``dwconv5x5_1``). No CPU runtime has a fast kernel for that
shape: ONNX Runtime runs an im2col and a tiny GEMM per group, and its INT8
QLinearConv is slower still. The same function is a true depthwise
convolution over all input channels (channel ``o*n + j`` with the weight
``w[o, j]``) followed by a sum over each group's ``n`` channels and the bias:
the same MACs, in kernels every runtime has made fast (depthwise conv,
ReduceSum / SUM). Only the order of the float additions changes, so outputs
agree to rounding (the exporter's parity gate checks it).

The rewrite is done on the torch module, before export, so every backend
that starts from PyTorch (ONNX, litert-torch) gets it, and each replacement
keeps its module path, so ONNX node names (``/transform/attn/qkv_dwconv7x7/Conv``)
and TFLite tensor scopes still name the authors' modules for ``--exclude``
and the float-fallback plan. TensorRT keeps the original form: it has its
own grouped-convolution tactics and fuses the original conv with its bias.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

GRAPHS = ("cpu", "original")


class DepthwiseSum(nn.Module):
    """``Conv2d(c_in, c_out, k, groups=c_out)`` computed as a depthwise conv over ``c_in`` and a per-group sum."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_grouped_sum(conv):
            raise ValueError(f"{conv} is not a grouped convolution with one output channel per group")
        self.per_group = conv.in_channels // conv.groups
        self.out_channels = conv.out_channels
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        # (c_out, n, kh, kw) -> (c_out * n, 1, kh, kw): channel o*n + j gets w[o, j], exactly the input it met.
        self.weight = nn.Parameter(conv.weight.detach().reshape(conv.in_channels, 1, *conv.kernel_size).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, groups=self.weight.shape[0])
        b, _, h, w = y.shape
        y = y.reshape(b, self.out_channels, self.per_group, h, w).sum(dim=2)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


def is_grouped_sum(conv: nn.Module) -> bool:
    """A grouped (not depthwise) convolution with one output channel per group: the slow shape."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.groups > 1
        and conv.out_channels == conv.groups
        and conv.in_channels // conv.groups > 1
        and conv.padding_mode == "zeros"
    )


def to_cpu_graph(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` with every grouped-sum convolution replaced by :class:`DepthwiseSum`.

    Returns the copy (in eval mode) and the module paths that were rewritten;
    ``model`` itself is left untouched.
    """
    out = copy.deepcopy(model).eval()
    rewritten: list[str] = []
    for name, module in list(out.named_modules()):
        if not is_grouped_sum(module):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, attr, DepthwiseSum(module))  # type: ignore[arg-type]
        rewritten.append(name)
    return out, rewritten


def for_graph(model: nn.Module, graph: str) -> tuple[nn.Module, list[str]]:
    """``model`` in the requested graph form: ``cpu`` (rewritten copy) or ``original`` (itself)."""
    if graph == "cpu":
        return to_cpu_graph(model)
    if graph == "original":
        return model, []
    raise InputError(f"graph {graph!r} is not known; use one of {', '.join(GRAPHS)}")
