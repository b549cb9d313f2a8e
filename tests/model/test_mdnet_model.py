"""MDNET matches the authors' network: strict load, reference logits, generalisations."""

import numpy as np
import pytest
import torch

from mdnet_deploy.model.checkpoint import load_checkpoint
from mdnet_deploy.model.mdnet import create_model


def test_official_checkpoint_loads_strictly_and_reproduces_logits(official_ckpt, official_io):
    model = create_model(100).eval()
    state = torch.load(official_ckpt, weights_only=True)
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 2_399_428
    io = np.load(official_io)
    with torch.no_grad():
        out = model(torch.from_numpy(io["input"])).numpy()
    assert np.abs(out - io["logits"]).max() < 1e-5


def test_channels_last_input_gives_same_logits(official_ckpt, official_io):
    model = load_checkpoint(official_ckpt).model
    io = np.load(official_io)
    x = torch.from_numpy(io["input"]).to(memory_format=torch.channels_last)
    assert not x.is_contiguous()
    with torch.no_grad():
        out = model(x).numpy()
    assert np.abs(out - io["logits"]).max() < 1e-5


def test_ten_class_parameter_count():
    assert sum(p.numel() for p in create_model(10).parameters()) == 2_284_138


def test_q_and_k_have_no_influence_with_one_channel_per_head():
    """At heads == dim every softmax is over one element: the block is project_out((1 - lambda) v)."""
    torch.manual_seed(0)
    model = create_model(10, width=0.25).eval()
    attn = model.transform.attn
    x = torch.randn(2, attn.dim, 34, 34)
    with torch.no_grad():
        before = attn(x)
        attn.qkv_dwconv3x3.weight.normal_()
        attn.qkv_dwconv5x5.weight.normal_()
        after = attn(x)
        lam = (
            torch.exp((attn.lambda_q1 * attn.lambda_k1).sum())
            - torch.exp((attn.lambda_q2 * attn.lambda_k2).sum())
            + 0.8
            - 0.6 * np.exp(-0.3 * 10)
        )
        expected = attn.project_out((1 - lam) * attn.qkv_dwconv7x7(attn.qkv(x)))
    assert torch.allclose(before, after, atol=1e-6)
    assert torch.allclose(before, expected, atol=1e-5)


@pytest.mark.parametrize("heads", [4, 8])
def test_other_head_counts_use_the_general_differential_map(heads):
    torch.manual_seed(0)
    model = create_model(10, width=1.0, heads=heads).eval()
    assert model.transform.attn.temperature.shape == (2 * heads, 1, 1)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    # q now matters: perturbing its convolution changes the block's output.
    attn = model.transform.attn
    t = torch.randn(2, attn.dim, 34, 34)
    with torch.no_grad():
        before = attn(t)
        attn.qkv_dwconv3x3.weight.mul_(3.0).add_(0.5)
        after = attn(t)
    assert (before - after).abs().max() > 1e-4


def test_width_multiplier_makes_a_tiny_variant():
    tiny = create_model(10, width=0.25)
    assert sum(p.numel() for p in tiny.parameters()) < 250_000
    assert tiny(torch.randn(2, 3, 32, 32)).shape == (2, 10)
