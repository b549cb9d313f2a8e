"""ONNX node names -> MDNET module paths: one rule for quantize reports, profiles and TFLite plans.

The TorchScript exporter names a node after the module scopes it ran in
(``/transform/attn/qkv_dwconv7x7/Conv``); :func:`module_path` undoes that.
Pure string logic: the device side (profiles) uses it without onnx.
"""

from __future__ import annotations

__all__ = ["module_path"]


def module_path(node_name: str) -> str:
    """``/transform/attn/qkv_dwconv7x7/Conv`` -> ``transform.attn.qkv_dwconv7x7``."""
    scopes = [s for s in node_name.split("/") if s]
    if len(scopes) < 2:  # no scope: a top-level op such as the final Flatten
        return ""
    parts: list[str] = []
    for scope in scopes[:-1]:  # the last part is the op's own name (Conv, Add_1, ...)
        last = parts[-1] if parts else None
        # A Sequential child is scoped as "<parent attribute>.<index>".
        if last is not None and scope.startswith(last + "."):
            parts.append(scope[len(last) + 1 :])
        else:
            parts.append(scope)
    return ".".join(parts)
