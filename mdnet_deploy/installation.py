"""What this installation of mdnet-deploy is: Python, how it was installed, which extras work.

For ``doctor``. Reads the installed distribution's metadata
(``importlib.metadata``, standard library since 3.8); imports nothing heavy:
a requirement counts as present when its distribution is installed at a
version that satisfies the pin (checked with ``packaging`` when available).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

DIST_NAME = "mdnet-deploy"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
#: The workstation extras need a newer Python than the device side (torch, litert-torch).
WORKSTATION_EXTRAS = {"export": (3, 10), "tflite": (3, 10)}


def _satisfied(requirement: str) -> Optional[str]:
    """None when installed and matching, else why not."""
    from importlib import metadata

    m = _NAME.match(requirement)
    if not m:
        return None
    name = m.group(1)
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return f"{name} is not installed"
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return None  # presence is all we can check without packaging
    try:
        req = Requirement(requirement)
    except Exception:  # an unparsable pin is not the user's problem
        return None
    if req.marker is not None and not req.marker.evaluate({"extra": next(iter(_EXTRA.findall(requirement)), "")}):
        return None  # not for this platform (e.g. onnxsim off x86)
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{name} {version} does not match {req.specifier}"
    return None


def describe_installation() -> Dict[str, Any]:
    """Python, the install kind, base requirements and each extra with what it lacks."""
    from importlib import metadata

    package_dir = Path(__file__).resolve().parent
    source_checkout = (package_dir.parent / "pyproject.toml").is_file()
    info: Dict[str, Any] = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "executable": sys.executable,
        "package": str(package_dir),
        "source_checkout": source_checkout,
    }
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        info.update(
            installed=False,
            version=None,
            complete=False,
            base_missing=[],
            extras={},
            files_missing=[],
            problem="mdnet-deploy is not installed (running from the source tree); pip install the wheel or -e .",
        )
        return info
    requires = list(dist.requires or [])
    base = [r for r in requires if not _EXTRA.search(r)]
    base_missing = [why for why in map(_satisfied, base) if why]
    extras: Dict[str, Dict[str, Any]] = {}
    for req in requires:
        found = _EXTRA.findall(req)
        if not found:
            continue
        entry = extras.setdefault(found[0], {"missing": [], "ok": True})
        why = _satisfied(req)
        if why:
            entry["missing"].append(why)
            entry["ok"] = False
    for name, need in WORKSTATION_EXTRAS.items():
        if name in extras and sys.version_info[:2] < need:
            extras[name]["needs_python"] = ".".join(map(str, need))
    # A wheel install records its files: every one must still be there.
    files_missing: List[str] = []
    if not source_checkout:
        for f in dist.files or []:
            if str(f).startswith("mdnet_deploy/") and not Path(str(f.locate())).exists():
                files_missing.append(str(f))
    info.update(
        installed=True,
        version=dist.version,
        base_missing=base_missing,
        extras=extras,
        files_missing=files_missing,
        complete=not base_missing and not files_missing,
        problem=None,
    )
    return info
