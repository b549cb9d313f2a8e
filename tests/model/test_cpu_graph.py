"""The CPU graph: grouped few-in/one-out convolutions as depthwise + sum compute the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mdnet_deploy.errors import InputError
from mdnet_deploy.model.cpu_graph import DepthwiseSum, for_graph, is_grouped_sum, to_cpu_graph
from mdnet_deploy.model.mdnet import create_model


@pytest.mark.parametrize("per_group,k", [(3, 3), (3, 7), (2, 5)])
def test_depthwise_sum_equals_the_grouped_conv(per_group, k):
    torch.manual_seed(0)
    conv = nn.Conv2d(4 * per_group, 4, k, padding=k // 2, groups=4)
    x = torch.randn(2, 4 * per_group, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(DepthwiseSum(conv)(x), conv(x), rtol=0, atol=1e-5)


def test_only_the_slow_shape_is_rewritten():
    assert is_grouped_sum(nn.Conv2d(6, 2, 3, groups=2))
    assert not is_grouped_sum(nn.Conv2d(6, 6, 3, groups=6))  # already depthwise
    assert not is_grouped_sum(nn.Conv2d(6, 4, 1))  # dense
    assert not is_grouped_sum(nn.Conv2d(8, 4, 3, groups=2))  # two outputs per group
    with pytest.raises(ValueError):
        DepthwiseSum(nn.Conv2d(6, 6, 3, groups=6))


def test_mdnet_cpu_graph_keeps_module_paths_and_the_function():
    torch.manual_seed(0)
    model = create_model(10, width=0.25).eval()
    cpu, rewritten = to_cpu_graph(model)
    assert rewritten == [
        "transform.attn.qkv_dwconv3x3",
        "transform.attn.qkv_dwconv5x5",
        "transform.attn.qkv_dwconv7x7",
        "transform.ffn.dwconv3x3_1",
        "transform.ffn.dwconv5x5_1",
    ]
    assert all(isinstance(cpu.get_submodule(p), DepthwiseSum) for p in rewritten)
    assert all(isinstance(model.get_submodule(p), nn.Conv2d) for p in rewritten)  # the original is untouched
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref, got = model(x), cpu(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)
    assert torch.equal(got.argmax(1), ref.argmax(1))


def test_for_graph_names():
    model = create_model(10, width=0.25)
    assert for_graph(model, "original") == (model, [])
    with pytest.raises(InputError):
        for_graph(model, "gpu")
