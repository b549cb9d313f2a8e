"""Issue 10: a state_dict with one wrongly shaped tensor is one `error:` line from export, not a traceback."""

from __future__ import annotations

from tests.helpers.cli import assert_one_line_error, run, tree


def test_wrongly_shaped_tensor(tiny_ckpt, tmp_path):
    """`export bad.pth` where one conv weight has an extra output channel: was `RuntimeError: size mismatch` traceback."""
    import torch

    state = torch.load(tiny_ckpt, weights_only=True)
    name = next(
        k
        for k, v in state.items()
        if k.endswith(".weight") and v.dim() == 4 and k not in ("conv2.weight", "pre.0.weight")
    )
    w = state[name]
    state[name] = torch.zeros(w.shape[0] + 1, *w.shape[1:])
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    line = assert_one_line_error(run("export", bad, "-o", tmp_path / "out"), "bad.pth", "size mismatch", name)
    assert "\n" not in line
    assert tree(tmp_path / "out") == [] if (tmp_path / "out").exists() else True
