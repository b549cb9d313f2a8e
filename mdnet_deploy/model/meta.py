"""The one place an :class:`~mdnet_deploy.artifact.ArtifactMeta` is built from a loaded checkpoint.

ONNX export, TFLite compile and the PyTorch runner all describe a model
made from a checkpoint; what they share (variant, classes, model config,
provenance) is filled here, and each passes only what differs (format,
tensor specs, preprocessing, graph form). No torch import: the checkpoint
is already loaded.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..artifact import ArtifactMeta, Preprocessing, TensorSpec, file_ref


def variant_name(width: float) -> str:
    return "mdnet" if width == 1.0 else f"mdnet-w{width:g}"


def checkpoint_meta(
    ckpt: Any,
    *,
    format: str,
    precision: str = "fp32",
    preprocessing: Preprocessing | None = None,
    input: TensorSpec | None = None,
    output: TensorSpec | None = None,
    labels: Sequence[str] | None = None,
    graph: str | None = None,
    rewritten: Sequence[str] = (),
    with_wrapper: bool = True,
) -> ArtifactMeta:
    """Metadata for an artifact made from ``ckpt`` (a :class:`~mdnet_deploy.model.checkpoint.LoadedCheckpoint`).

    ``graph`` (``cpu`` / ``original``) and the rewritten module paths go into
    ``model_config``: they say which form of the network the artifact computes.
    """
    prep = preprocessing or Preprocessing()
    model_config: dict[str, Any] = {"num_classes": ckpt.num_classes, "width": ckpt.width, "heads": ckpt.heads}
    if graph is not None:
        model_config["graph"] = graph
        if rewritten:
            model_config["rewritten_modules"] = list(rewritten)
    checkpoint = file_ref(ckpt.path)
    if with_wrapper:
        checkpoint["wrapper"] = ckpt.wrapper
    return ArtifactMeta(
        format=format,
        precision=precision,
        variant=variant_name(ckpt.width),
        num_classes=ckpt.num_classes,
        labels=list(labels) if labels is not None else None,
        input=input or TensorSpec(name="input", shape=["batch", 3, *prep.size], layout="NCHW", dtype="float32"),
        output=output or TensorSpec(name="logits", shape=["batch", ckpt.num_classes], layout="NC", dtype="float32"),
        preprocessing=prep,
        model_config=model_config,
        checkpoint=checkpoint,
    )
