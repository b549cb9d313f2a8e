"""Checkpoints as users hold them, and the bad ones, each with one clear message."""

import pytest
import torch

from mdnet_deploy.errors import CheckpointError, InputError
from mdnet_deploy.model.checkpoint import load_checkpoint
from mdnet_deploy.model.mdnet import create_model


@pytest.fixture(scope="module")
def state(official_ckpt):
    return torch.load(official_ckpt, weights_only=True)


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "net"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_wrapped_and_prefixed_checkpoints_load(tmp_path, state, wrapper, prefix):
    sd = {prefix + k: v for k, v in state.items()}
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 199, "optimizer": {"lr": 1e-3}}
    path = tmp_path / "c.pth"
    torch.save(obj, path)
    ck = load_checkpoint(path)
    assert ck.num_classes == 100 and ck.width == 1.0 and ck.heads == 32 and ck.wrapper == wrapper


def test_class_count_comes_from_the_checkpoint(tmp_path):
    path = tmp_path / "c10.pth"
    torch.save(create_model(7, width=0.25).state_dict(), path)
    ck = load_checkpoint(path)
    assert ck.num_classes == 7 and ck.width == 0.25


def test_pickled_module_needs_trust_pickle(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(create_model(10, width=0.25), path)
    with pytest.raises(CheckpointError, match="--trust-pickle"):
        load_checkpoint(path)
    assert load_checkpoint(path, trust_pickle=True).num_classes == 10


@pytest.mark.parametrize(
    "content,match",
    [
        (b"\x00\x01random bytes" * 50, "not a PyTorch checkpoint"),
        (b"just some text\n", "not a PyTorch checkpoint"),
    ],
)
def test_not_a_checkpoint(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path, official_ckpt):
    data = official_ckpt.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_other_architecture_names_keys(tmp_path, state):
    # A plain CIFAR MobileNetV2 from the same code base: no MDIFFormer block.
    sd = {k: v for k, v in state.items() if not k.startswith("transform.")}
    path = tmp_path / "mbv2.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"missing keys \(e\.g\. transform\."):
        load_checkpoint(path)
    torch.save({"fc.weight": torch.zeros(10, 512), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="not an MDNET checkpoint"):
        load_checkpoint(path)


def test_num_classes_contradiction(official_ckpt):
    with pytest.raises(CheckpointError, match="contradicts the checkpoint, whose classifier has 100 classes"):
        load_checkpoint(official_ckpt, num_classes=10)
