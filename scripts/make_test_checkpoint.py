"""Regenerate tests/assets/digits_w025.pth, the small trained MDNET the tests share.

Width 0.25, 10 classes, eight epochs on scikit-learn's digits (train split, no
augmentation), one thread, seed 0. It is checked in rather than trained by the
suite: training on another machine (other ISA, other thread count) gives other
weights, and every quantization outcome downstream would move with them.

    .venv/bin/python scripts/make_test_checkpoint.py
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "assets" / "digits_w025.pth"


def main() -> None:
    import torch

    from mdnet_deploy.model.train import TrainConfig, train_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = TrainConfig(
        epochs=8,
        width=0.25,
        batch_size=32,
        lr=3e-3,
        hflip=False,
        crop_padding=0,
        rotation_deg=0,
        warmup_epochs=0.3,
        seed=0,
    )
    train_checkpoint("digits", OUT, cfg)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
