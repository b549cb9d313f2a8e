"""NVIDIA GPU board power through NVML (``nvidia-ml-py``, imported lazily).

Volta and later GPUs expose a total-energy counter in mJ
(``nvmlDeviceGetTotalEnergyConsumption``), which is exact over any window;
older GPUs only report instantaneous power in mW, which is sampled and
integrated instead. The scope is the GPU board only, not the host.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnavailableError
from .meter import PollingMeter, Reading
from .trace import METHOD_COUNTER, METHOD_SAMPLES

DEFAULT_INTERVAL_S = 0.1
_INSTALL = "pip install nvidia-ml-py (or the mdnet-deploy[nvml] extra)"


def _import_nvml() -> Any:
    import pynvml  # provided by nvidia-ml-py; heavy-ish and GPU-only, so never at module import

    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlMeter(PollingMeter):
    """GPU board energy: the NVML counter where supported, else sampled power."""

    name = "nvml"
    scope = "GPU board (NVML)"
    method = METHOD_COUNTER

    def __init__(self, index: int = 0, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(interval_s)
        self.index = int(index)
        self._nvml: Any = None
        self._handle: Any = None

    def _open(self) -> tuple[bool, str]:
        """Initialise NVML and pick the method; NVML stays initialised when this succeeds."""
        try:
            nvml = _import_nvml()
        except ImportError:
            return False, f"the NVML bindings are not installed: {_INSTALL}"
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded / ...
            return (
                False,
                f"NVML cannot start ({_text(exc) or type(exc).__name__}): no NVIDIA driver or GPU on this machine",
            )
        try:
            count = nvml.nvmlDeviceGetCount()
            if self.index >= count:
                raise LookupError(f"GPU index {self.index} does not exist ({count} GPU(s) visible)")
            handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            gpu = _text(nvml.nvmlDeviceGetName(handle))
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                self.method = METHOD_COUNTER
            except Exception:
                # Pre-Volta: no counter. Power readings still give an integrated figure.
                nvml.nvmlDeviceGetPowerUsage(handle)
                self.method = METHOD_SAMPLES
        except Exception as exc:
            nvml.nvmlShutdown()
            return False, f"NVML cannot read energy or power of GPU {self.index} ({_text(exc) or type(exc).__name__})"
        self._nvml, self._handle = nvml, handle
        self.scope = f"GPU board (NVML, GPU {self.index}: {gpu})"
        return True, f"{self.scope}, {self.method}"

    def available(self) -> tuple[bool, str]:
        ok, why = self._open()
        if ok:
            self._finish()
        return ok, why

    def _prepare(self) -> None:
        ok, why = self._open()
        if not ok:
            raise UnavailableError(f"power meter 'nvml' is unavailable: {why}")

    def _read(self) -> Reading:
        if self.method == METHOD_COUNTER:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0, None  # mJ -> J
        return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0, None  # mW -> W

    def _finish(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self._nvml = self._handle = None
