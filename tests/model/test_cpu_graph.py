"""The CPU graph: every rewrite (value-only attention, depthwise + sum, slice sums, row bands) computes the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mdnet_deploy.errors import InputError
from mdnet_deploy.model.cpu_graph import (
    CpuFFN,
    DepthwiseSum,
    SliceSum,
    ValueAttention,
    for_graph,
    is_grouped_sum,
    j_major,
    limit_taps,
    to_cpu_graph,
)
from mdnet_deploy.model.mdnet import create_model


@pytest.mark.parametrize("rewrite", [DepthwiseSum, SliceSum])
@pytest.mark.parametrize("per_group,k", [(3, 3), (3, 7), (2, 5)])
def test_rewrites_equal_the_grouped_conv(rewrite, per_group, k):
    """DepthwiseSum reads the input as it is; SliceSum reads it j-major (its producer is permuted to match)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4 * per_group, 4, k, padding=k // 2, groups=4)
    x = torch.randn(2, 4 * per_group, 9, 9)
    given = x[:, j_major(per_group, 4)] if rewrite is SliceSum else x
    with torch.no_grad():
        torch.testing.assert_close(rewrite(conv)(given), conv(x), rtol=0, atol=1e-5)


def test_only_the_slow_shape_is_rewritten():
    assert is_grouped_sum(nn.Conv2d(6, 2, 3, groups=2))
    assert not is_grouped_sum(nn.Conv2d(6, 6, 3, groups=6))  # already depthwise
    assert not is_grouped_sum(nn.Conv2d(6, 4, 1))  # dense
    assert not is_grouped_sum(nn.Conv2d(8, 4, 3, groups=2))  # two outputs per group
    with pytest.raises(ValueError):
        DepthwiseSum(nn.Conv2d(6, 6, 3, groups=6))


def _with_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so every path carries signal."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("width", [0.25, 1.0])
def test_mdnet_cpu_graph_keeps_module_paths_and_the_function(width):
    torch.manual_seed(0)
    model = _with_statistics(create_model(10, width=width))
    cpu, rewritten = to_cpu_graph(model)
    assert rewritten == ["transform.attn", "transform.ffn"]
    assert isinstance(cpu.transform.attn, ValueAttention) and isinstance(cpu.transform.ffn, CpuFFN)
    # q and k have no influence at one channel per head: their branches are gone, v's conv keeps its path.
    names = {n for n, _ in cpu.named_modules()}
    assert "transform.attn.qkv_dwconv7x7" in names and "transform.attn.qkv_dwconv3x3" not in names
    assert isinstance(model.transform.attn.qkv_dwconv7x7, nn.Conv2d)  # the original is untouched
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref, got = model(x), cpu(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)
    assert torch.equal(got.argmax(1), ref.argmax(1))


def test_fewer_heads_keep_the_attention_and_rewrite_its_convs():
    torch.manual_seed(0)
    model = _with_statistics(create_model(10, width=0.5, heads=4))
    cpu, rewritten = to_cpu_graph(model)
    assert rewritten[:3] == [f"transform.attn.qkv_dwconv{k}x{k}" for k in (3, 5, 7)]
    assert all(isinstance(cpu.get_submodule(p), DepthwiseSum) for p in rewritten[:3])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(cpu(x), model(x), rtol=0, atol=1e-4)


def test_row_bands_keep_every_depthwise_kernel_within_the_tap_limit():
    torch.manual_seed(0)
    model = _with_statistics(create_model(10, width=0.25))
    cpu, rewritten = to_cpu_graph(model, max_taps=25)
    assert rewritten[-1] == "transform.attn.qkv_dwconv7x7 (row bands)"
    bands = cpu.transform.attn.qkv_dwconv7x7.bands
    assert bands[0][0] == 0 and bands[-1][1] == 7 and all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
    assert all((r1 - r0) * 7 <= 25 for r0, r1 in bands)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(cpu(x), model(x), rtol=0, atol=1e-4)
    assert limit_taps(cpu, 49) == []  # nothing wider than 7x7 is left to band


def test_for_graph_names():
    model = create_model(10, width=0.25)
    assert for_graph(model, "original") == (model, [])
    with pytest.raises(InputError):
        for_graph(model, "gpu")
