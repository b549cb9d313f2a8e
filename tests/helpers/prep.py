"""A checkpoint "trained" with mean = std = 0.5, and a data set it scores 100 % on, by construction.

An untrained MDNET predicts one class for every input (the stages shrink
input-dependent signal about tenfold each). Re-estimating the BatchNorm
statistics on the images, under the 0.5/0.5 normalisation, restores that
signal; a classifier head centred on the mean feature then spreads the
predictions over the classes. The labels ARE the model's own predictions
under 0.5/0.5, so that normalisation scores 100 % (up to float noise on
near-ties), and any other normalisation shifts the features and scores far
lower (about 10 % with 10 classes on these images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HALF = (0.5, 0.5, 0.5)
CLASSES = 10


def colour_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 32, 32, 3): a random flat colour per image plus noise (varied global statistics)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(colours + rng.integers(-40, 41, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def half_trained(folder: Path, n: int = 240) -> tuple[Path, Path]:
    """(checkpoint.pth, eval.npz) as described in the module docstring; width 0.25, 10 classes."""
    import torch

    from mdnet_deploy.artifact import Preprocessing
    from mdnet_deploy.data.preprocess import preprocess
    from mdnet_deploy.model.mdnet import create_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = create_model(CLASSES, width=0.25)
    images = colour_images(n)
    x = torch.from_numpy(preprocess(images, Preprocessing(mean=HALF, std=HALF)))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the one pass below
                m.reset_running_stats()
        model.train()
        model(x)
        model.eval()
        feats: dict[str, torch.Tensor] = {}
        hook = model.conv1.register_forward_hook(lambda _m, _i, out: feats.__setitem__("f", out.mean((2, 3))))
        model(x)
        hook.remove()
        f = feats["f"]
        spread = f.std(0)
        w = torch.randn(CLASSES, f.shape[1], generator=torch.Generator().manual_seed(1)) / (spread + 0.1 * spread.max())
        w = w / ((f - f.mean(0)) @ w.T).std()  # logits of unit spread: parity tolerances are absolute
        model.conv2.weight.copy_(w[:, :, None, None])
        model.conv2.bias.copy_(-(w @ f.mean(0)))
        labels = model(x).argmax(1).numpy().astype(np.int64)
    ckpt = folder / "half.pth"
    torch.save(model.state_dict(), ckpt)
    npz = folder / "half_eval.npz"
    np.savez(npz, x=images, y=labels, labels=np.array([str(i) for i in range(CLASSES)]))
    return ckpt, npz
