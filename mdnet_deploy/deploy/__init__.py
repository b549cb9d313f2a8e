"""``deploy``: from a checkpoint to the best artifact for each device, decided on the device.

:func:`deploy` builds the candidates that make sense for each device kind
(:mod:`.candidates`), benches them on the device (here, or over SSH with the
remote bench), picks per device the best for the objective among those
within the accuracy budget of the float model measured on that same device
(:mod:`.select`), and records the run as ``pipeline.yaml``
(:mod:`.pipeline_file`) so ``mdnet-deploy run`` can repeat it.
Library only: nothing here prints or exits.
"""

from .core import DeployConfig, DeployResult, DeviceOutcome, DeviceRun, deploy
from .select import OBJECTIVES, Choice, Measured, Verdict, choose

__all__ = [
    "OBJECTIVES",
    "Choice",
    "DeployConfig",
    "DeployResult",
    "DeviceOutcome",
    "DeviceRun",
    "Measured",
    "Verdict",
    "choose",
    "deploy",
]
