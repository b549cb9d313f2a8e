"""MDNET as the authors' training code builds it (see shared/MDNET.md).

A CIFAR MobileNetV2 with one MDIFFormer block after the stem. Module and
parameter names follow the authors' code exactly so their state_dicts load
with ``strict=True``. Two generalisations, both equal to the released
network at their defaults: the attention head count (the released code
hard-codes one channel per head) and a width multiplier for tiny test
variants.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The authors' constant, not a parameter: 0.8 - 0.6 * exp(-0.3 * depth) with depth 10.
LAMBDA_INIT = 0.8 - 0.6 * math.exp(-0.3 * 10)


@dataclass(frozen=True)
class MDNetConfig:
    num_classes: int = 100
    width: float = 1.0
    heads: int | None = None  # None: one head per channel (the authors' 32 at width 1)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def scaled(channels: int, width: float) -> int:
    """Scale a channel count, keeping it even and >= 4 (L2 split and groups need it)."""
    if width == 1.0:
        return channels
    return max(4, int(round(channels * width / 2.0)) * 2)


class ChannelLayerNorm(nn.Module):
    """Layer norm over channels at every pixel; parameters live in ``.body`` like the authors'."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = _Affine(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)  # biased variance
        return (x - mean) / torch.sqrt(var + 1e-5) * self.body.weight.view(1, -1, 1, 1) + self.body.bias.view(
            1, -1, 1, 1
        )


class _Affine(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))


class MultiScaleDiffAttention(nn.Module):
    """Differential attention whose q, k, v come from 3x3, 5x5 and 7x7 grouped convolutions."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        # Registration order matches the authors' state_dict.
        self.temperature = nn.Parameter(torch.ones(2 * heads, 1, 1))
        self.lambda_q1 = nn.Parameter(torch.zeros(dim).normal_(0, 0.1))
        self.lambda_k1 = nn.Parameter(torch.zeros(dim).normal_(0, 0.1))
        self.lambda_q2 = nn.Parameter(torch.zeros(dim).normal_(0, 0.1))
        self.lambda_k2 = nn.Parameter(torch.zeros(dim).normal_(0, 0.1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        # groups=dim: output channel i sees input channels 3i..3i+2.
        self.qkv_dwconv3x3 = nn.Conv2d(dim * 3, dim, 3, padding=1, groups=dim)
        self.qkv_dwconv5x5 = nn.Conv2d(dim * 3, dim, 5, padding=2, groups=dim)
        self.qkv_dwconv7x7 = nn.Conv2d(dim * 3, dim, 7, padding=3, groups=dim)
        self.project_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        heads, c, length = self.heads, self.dim // self.heads, h * w
        t = self.qkv(x)
        q, k, v = self.qkv_dwconv3x3(t), self.qkv_dwconv5x5(t), self.qkv_dwconv7x7(t)
        # reshape (not view): works for channels-last / non-contiguous inputs.
        q = q.reshape(b, 2 * heads, c, length // 2)
        k = k.reshape(b, 2 * heads, c, length // 2)
        v = v.reshape(b, heads, c, length)
        q = F.normalize(q, dim=-1, eps=1e-12)
        k = F.normalize(k, dim=-1, eps=1e-12)
        attn = torch.softmax((q @ k.transpose(-2, -1)).float() * self.temperature, dim=-1)
        lam = (
            torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1))
            - torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2))
            + LAMBDA_INIT
        )
        attn = attn.reshape(b, heads, 2, c, c)
        diff = attn[:, :, 0] - lam * attn[:, :, 1]
        out = (diff.to(v.dtype) @ v).reshape(b, self.dim, h, w)
        return self.project_out(out)


class MultiScaleFFN(nn.Module):
    """Feed-forward with parallel 3x3 / 5x5 depthwise paths whose halves are crossed."""

    def __init__(self, dim: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.hidden = hidden
        self.project_in = nn.Conv2d(dim, hidden * 2, 1)
        self.dwconv3x3 = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.dwconv5x5 = nn.Conv2d(hidden * 2, hidden * 2, 5, padding=2, groups=hidden * 2)
        self.dwconv3x3_1 = nn.Conv2d(hidden * 2, hidden, 3, padding=1, groups=hidden)
        self.dwconv5x5_1 = nn.Conv2d(hidden * 2, hidden, 5, padding=2, groups=hidden)
        self.project_out = nn.Conv2d(hidden * 2, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        a3, b3 = F.relu(self.dwconv3x3(x)).chunk(2, dim=1)
        a5, b5 = F.relu(self.dwconv5x5(x)).chunk(2, dim=1)
        x1 = F.relu(self.dwconv3x3_1(torch.cat([a3, a5], dim=1)))
        x2 = F.relu(self.dwconv5x5_1(torch.cat([b3, b5], dim=1)))
        return self.project_out(torch.cat([x1, x2], dim=1))


class MDIFFormer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_expansion: float = 2.0) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = MultiScaleDiffAttention(dim, heads)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = MultiScaleFFN(dim, ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class LinearBottleneck(nn.Module):
    """MobileNetV2 inverted residual; convolutions keep their biases, as the authors'."""

    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        mid = cin * t
        self.residual = nn.Sequential(
            nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid),
            nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True),
            nn.Conv2d(mid, cout, 1),
            nn.BatchNorm2d(cout),
        )
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.residual(x)
        return y + x if self.use_skip else y


def _stage(repeat: int, cin: int, cout: int, stride: int, t: int) -> nn.Sequential:
    blocks = [LinearBottleneck(cin, cout, stride, t)]
    blocks += [LinearBottleneck(cout, cout, 1, t) for _ in range(repeat - 1)]
    return nn.Sequential(*blocks)


class MDNet(nn.Module):
    def __init__(self, config: MDNetConfig = MDNetConfig()) -> None:
        super().__init__()
        self.config = config
        c = lambda n: scaled(n, config.width)  # noqa: E731
        stem = c(32)
        heads = config.heads if config.heads is not None else stem
        self.pre = nn.Sequential(nn.Conv2d(3, stem, 1, padding=1), nn.BatchNorm2d(stem), nn.ReLU6(inplace=True))
        self.transform = MDIFFormer(stem, heads)
        self.stage1 = LinearBottleneck(stem, c(16), 1, 1)
        self.stage2 = _stage(2, c(16), c(24), 2, 6)
        self.stage3 = _stage(3, c(24), c(32), 2, 6)
        self.stage4 = _stage(4, c(32), c(64), 2, 6)
        self.stage5 = _stage(3, c(64), c(96), 1, 6)
        self.stage6 = _stage(3, c(96), c(160), 1, 6)
        self.stage7 = LinearBottleneck(c(160), c(320), 1, 6)
        self.conv1 = nn.Sequential(nn.Conv2d(c(320), c(1280), 1), nn.BatchNorm2d(c(1280)), nn.ReLU6(inplace=True))
        self.conv2 = nn.Conv2d(c(1280), config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        x = self.transform(x)
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4, self.stage5, self.stage6, self.stage7):
            x = stage(x)
        x = self.conv1(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = self.conv2(x)
        return x.flatten(1)


def create_model(num_classes: int = 100, width: float = 1.0, heads: int | None = None) -> MDNet:
    return MDNet(MDNetConfig(num_classes=num_classes, width=width, heads=heads))
