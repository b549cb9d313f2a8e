"""PyTorch baseline runner: the checkpoint itself, eager, on CPU or CUDA.

Opens a ``.pth`` checkpoint directly, or any exported artifact through the
checkpoint its metadata records, so every row of a comparison can have its
PyTorch baseline. torch is imported inside the methods: the device side
never imports this module's dependencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifact import ArtifactMeta
from ..errors import ArtifactError, UnavailableError
from .base import Runner


def checkpoint_meta(path: str | Path, trust_pickle: bool = False) -> ArtifactMeta:
    """Metadata for a bare ``.pth`` (no sidecar): what the checkpoint's shapes say, default preprocessing."""
    from ..model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, trust_pickle=trust_pickle)
    return _meta_from(ckpt)


def _meta_from(ckpt: Any) -> ArtifactMeta:
    from ..model.meta import checkpoint_meta as meta_for
    from ..prepcheck import resolve_preprocessing

    # Statistics stored in the checkpoint (source "checkpoint"), else the CIFAR-100 default (checked by bench --eval).
    return meta_for(
        ckpt, format="pt", with_wrapper=False, preprocessing=resolve_preprocessing(None, None, ckpt.preprocessing)
    )


class TorchRunner(Runner):
    """Options: ``device`` ("cpu" or "cuda"), ``channels_last`` (bool), ``trust_pickle`` (bool)."""

    name = "torch"
    formats = ("pt",)

    def __init__(self, artifact: str | Path, meta: ArtifactMeta, threads: int | None = None, **options: Any) -> None:
        super().__init__(artifact, meta, threads=threads, **options)
        self.device = str(options.get("device") or "cpu")
        self.channels_last = bool(options.get("channels_last", False))
        self.model: Any = None
        self._torch: Any = None
        self._given: Any = None  # a model already in memory (see for_model)

    @classmethod
    def for_model(
        cls, model: Any, meta: ArtifactMeta, *, channels_last: bool = False, device: str = "cpu"
    ) -> TorchRunner:
        """A runner over a torch module already in memory: the PyTorch reference of a conversion.

        Export and compile verify against the module they converted; this is the one
        place its logits are computed. The module is left as it came (format restored on close).
        """
        recorded = (meta.checkpoint or {}).get("path") or "<in-memory model>"
        runner = cls(recorded, meta, channels_last=channels_last, device=device)
        runner._given = model
        return runner

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import torch
        except ImportError as exc:
            return False, f"torch is not importable ({exc}); install it with pip install 'mdnet-deploy[export]'"
        return True, str(torch.__version__)

    def checkpoint_path(self) -> Path:
        """The .pth to load: the artifact itself, or the checkpoint an exported artifact records."""
        if self.artifact.suffix.lower() in (".pth", ".pt"):
            return self.artifact
        recorded = (self.meta.checkpoint or {}).get("path")
        if not recorded:
            raise ArtifactError(
                f"{self.artifact}: its metadata records no checkpoint, so there is no PyTorch baseline; bench the .pth instead"
            )
        path = Path(recorded)
        if not path.is_file():
            raise ArtifactError(
                f"{self.artifact}: the checkpoint it was exported from ({path}) is not here; bench that .pth directly"
            )
        return path

    def open(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(why)
        import torch

        if self._given is not None:
            model = self._given.to(self.device).eval()
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self._torch, self.model = torch, model
            return

        from ..model.checkpoint import load_checkpoint

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UnavailableError(
                f"torch {torch.__version__} sees no CUDA GPU; install a CUDA build of torch or bench with --device host"
            )
        ckpt = load_checkpoint(self.checkpoint_path(), trust_pickle=bool(self.options.get("trust_pickle", False)))
        if self.meta.format == "pt" and self.meta.checkpoint is None:
            self.meta = _meta_from(ckpt)  # a bare .pth: the checkpoint is the only truth
        if self.threads:
            # Process-wide in torch; the bench runs one model at a time, so this is fine.
            torch.set_num_threads(int(self.threads))
        model = ckpt.model.to(self.device).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self._torch, self.model = torch, model

    def close(self) -> None:
        if self._given is not None and self.channels_last and self._torch is not None:
            self._given.to(memory_format=self._torch.contiguous_format)
        self.model = None
        super().close()

    def logits(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        """Float32 logits of ``x`` (canonical NCHW), ``batch`` images per forward pass."""
        outs = [self.infer(x[i : i + batch]) for i in range(0, len(x), batch)]
        return np.concatenate(outs) if outs else np.zeros((0, self.meta.num_classes), np.float32)

    def prepare(self, x: np.ndarray) -> Any:
        # Always the canonical float32 NCHW: the checkpoint is the float model,
        # whatever layout or dtype the exported artifact uses.
        torch = self._torch
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def run(self, native_input: Any) -> Any:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(native_input)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()  # CUDA kernels are asynchronous: time the work, not the launch
        return out

    def finish(self, native_output: Any) -> np.ndarray:
        return native_output.detach().float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(device=self.device, channels_last=self.channels_last)
        if self._torch is not None:
            d["threads"] = self.threads or self._torch.get_num_threads()
            if self.device.startswith("cuda"):
                d["gpu"] = self._torch.cuda.get_device_name(0)
        return d


def torch_logits(model: Any, batch: int = 64) -> Callable[[np.ndarray], np.ndarray]:
    """Logits of a torch module, in batches, through the TorchRunner (the one home of the PyTorch reference).

    A callable for the preprocessing check (:func:`mdnet_deploy.prepcheck.check_assumed_preprocessing`).
    """

    def run(x: np.ndarray) -> np.ndarray:
        reference = TorchRunner.for_model(model, ArtifactMeta(format="pt"))
        with reference:
            return reference.logits(np.ascontiguousarray(x, dtype=np.float32), batch=batch)

    return run
