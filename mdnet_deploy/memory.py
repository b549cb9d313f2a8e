"""Peak resident memory of this process, in MiB, on Linux, macOS and Windows.

``resource.getrusage`` does not exist on Windows and reports bytes on macOS
but KiB on Linux, so it is never imported at module level. psutil (a base
dependency) gives the Windows peak (``peak_wset``) and the current RSS
everywhere, the fallback where no peak is kept.
"""

from __future__ import annotations

import sys


def peak_rss_mib() -> float:
    import psutil

    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak is None and sys.platform != "win32":
        try:
            import resource

            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = maxrss if sys.platform == "darwin" else maxrss * 1024  # macOS: bytes; Linux/BSD: KiB
        except (ImportError, OSError):
            peak = None
    return round(float(peak if peak is not None else info.rss) / (1024.0 * 1024.0), 1)
