"""Reports over bench and quantize outputs: HTML/Markdown pages, run comparison, per-layer profiles.

Small modules with one job each:

- :mod:`.load`       read results JSON and quantize reports (one-line errors on bad input)
- :mod:`.fields`     what a row says: labels, metrics and their confidence intervals
- :mod:`.pareto`     the Pareto front of a set of points
- :mod:`.svg`        the few chart types the HTML page draws, as inline SVG
- :mod:`.conditions` each device's environment manifest and differing run conditions
- :mod:`.html`       the self-contained HTML report
- :mod:`.markdown`   the Markdown summary with PNG figures (matplotlib, ``[report]`` extra)
- :mod:`.compare`    base vs new results: matching rows, deltas, regression thresholds
- :mod:`.profile`    per-layer profiles (ONNX Runtime, TensorRT, trtexec) mapped to MDNET modules
- :mod:`.traces`     a power trace small enough to keep in a result row

This package imports nothing here: :mod:`.profile` and :mod:`.traces` are used
on devices by ``bench`` (standard library only), the others on a workstation.
"""
