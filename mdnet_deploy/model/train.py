"""Train MDNET with the authors' recipe (shared/MDNET.md), on any supported data set.

AdamW (lr 1e-3, weight decay 0.05), batch 128, label smoothing 0.1, random
crop 32 with padding 4, horizontal flip, rotation up to 15 degrees, linear
warm-up then cosine decay. Augmentation is done on tensors in torch (no
torchvision: there is no CPU build of it on these machines).

Training runs in channels-last memory format: on CPU the grouped 5x5/7x7
convolutions of the MDIFFormer block are 10-20x faster to back-propagate
that way, which is what makes CPU training practical at all.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..artifact import Preprocessing


@dataclass
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    crop_padding: int = 4
    hflip: bool = True
    rotation_deg: float = 15.0
    seed: int = 0
    width: float = 1.0
    heads: int | None = None


@dataclass
class EpochStats:
    epoch: int
    loss: float
    train_top1: float
    val_top1: float | None
    seconds: float


def augment(x, cfg: TrainConfig, gen):
    """Random crop (zero padding), horizontal flip and rotation for a float NCHW batch."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    if cfg.crop_padding:
        p = cfg.crop_padding
        padded = F.pad(x, (p, p, p, p))
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if cfg.hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    if cfg.rotation_deg:
        angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotation_deg)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    return x


def train_model(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    cfg: TrainConfig,
    prep: Preprocessing = Preprocessing(),
    val: tuple[np.ndarray, np.ndarray] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
):
    """Train a fresh MDNET on uint8 NHWC ``images``; returns the model in eval mode."""
    import torch
    import torch.nn.functional as F

    from ..data.preprocess import preprocess
    from .mdnet import create_model

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = create_model(num_classes, width=cfg.width, heads=cfg.heads).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # Augment in [0,1] pixel space (zero padding = black border, as torchvision's
    # RandomCrop on PIL images), then normalise.
    raw = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    mean = torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(raw) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    val_x = preprocess(val[0], prep) if val is not None else None
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(raw), generator=gen)
        seen = correct = 0
        loss_sum = 0.0
        for start in range(0, len(raw), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one sample
                continue
            xb = ((augment(raw[idx], cfg, gen) - mean) / std).contiguous(memory_format=torch.channels_last)
            yb = y_all[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss.detach()) * len(idx)
            if on_step:
                on_step(step, total)
        val_top1 = evaluate(model, val_x, val[1]) if val is not None and val_x is not None else None
        if on_epoch:
            on_epoch(
                EpochStats(
                    epoch, loss_sum / max(1, seen), 100.0 * correct / max(1, seen), val_top1, time.perf_counter() - t0
                )
            )
    model.eval()
    return model.to(memory_format=torch.contiguous_format)


def evaluate(model, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Top-1 (percent) of a torch model on preprocessed float NCHW inputs."""
    import torch

    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i : i + batch]).contiguous(memory_format=torch.channels_last)
            correct += int((model(xb).argmax(1).numpy() == y[i : i + batch]).sum())
    model.train(was_training)
    return 100.0 * correct / max(1, len(x))


def train_checkpoint(
    data: str,
    out: str | Path,
    cfg: TrainConfig,
    prep: Preprocessing = Preprocessing(),
    val_data: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> Path:
    """Train on ``data`` (its train split) and save an authors'-format checkpoint atomically."""
    from ..data import load_dataset
    from ..errors import DataError
    from ..fsutil import check_output
    from .checkpoint import save_checkpoint

    check_output(out)
    if cfg.epochs < 1:
        raise DataError(f"--epochs {cfg.epochs} must be at least 1")
    if not (0 < cfg.width <= 4):
        raise DataError(f"--width {cfg.width} must be in (0, 4]; 1 is the authors' network, 0.25 a tiny test variant")
    train_ds = load_dataset(data, split="train", size=prep.size)
    if train_ds.images.dtype != np.uint8:
        raise DataError(f"{data}: training needs uint8 images (N,H,W,3), not preprocessed float tensors")
    val = None
    if val_data is not None:
        val_ds = load_dataset(val_data, split="test", size=prep.size)
        val = (val_ds.images, val_ds.labels)
    model = train_model(train_ds.images, train_ds.labels, train_ds.num_classes, cfg, prep, val, on_step, on_epoch)
    return save_checkpoint(model, out)
