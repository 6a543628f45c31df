"""What a use case is written with: the one dpllib module a use-case module imports from.

A use case (``dpllib/benchmarks/<name>.py``, or your own module named in ``$DPL_BENCHMARKS``)
defines its data, model and task and ends with ``BENCHMARK = Benchmark(...)``. Everything it
needs from dpllib is here:

- the descriptor: :class:`Benchmark`, :class:`DataSet`, :class:`Metric`, and, for a use case
  of the study only, :class:`Study` with its :class:`Deviation` rows and
  :class:`ReferenceFigure` figures;
- the task helpers: :class:`Task` and :func:`train_and_test` (one model per extraction point,
  trained in lockstep, checkpointed, resumable), :func:`row` (one result), :func:`to_uint8`
  (an example image), the cell's :class:`CellConfig` and :data:`BASELINE`;
- the data: :class:`ImageCrops` (square crops of a data set's photos from the data root) and
  the ``datasets`` and ``metrics`` modules (the study's data sets and measures);
- the book: :func:`learning_check`, :func:`every_model_beats`, :func:`per_seed`,
  :func:`reference_value` (learning checks) and :func:`image_grid` (example figures).

Names that need torch (or the analysis stack) are imported on first use, so a descriptor that
imports only the descriptor types loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import BASELINE, CellConfig, steps_per_epoch, training_steps
from .errors import DplError, UnavailableError
from .registry import Benchmark, Check, DataSet, Deviation, Metric, ReferenceFigure, Study, register
from .results import make_record, row

# name -> the dpllib module it comes from, imported on first use (they import torch or pandas)
_LAZY = {
    **dict.fromkeys(("Task", "to_uint8", "train_and_test"), "dpllib.training.points"),
    **dict.fromkeys(("BatchOrder", "FitCheckpoint", "Trainee", "fit"), "dpllib.training.loop"),
    **dict.fromkeys(("CellCheckpoint", "NetworkBuffers", "alias_of", "cell_loss_network", "pick_device",
                     "seed_everything"), "dpllib.training.common"),
    **dict.fromkeys(("PerceptualLoss", "feature_distance_map", "unit_normalize"), "dpllib.loss"),
    **dict.fromkeys(("LossNetwork",), "dpllib.loss_network"),
    **dict.fromkeys(("ImageCrops",), "dpllib.datasets"),
    **dict.fromkeys(("every_model_beats", "learning_check", "per_seed", "reference_value"), "dpllib.analysis"),
    **dict.fromkeys(("image_grid",), "dpllib.figures"),
}
_MODULES = {"datasets": "dpllib.datasets", "metrics": "dpllib.metrics"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpllib.benchmark' has no attribute {name!r}")


__all__ = ["BASELINE", "Benchmark", "CellConfig", "Check", "DataSet", "Deviation", "DplError", "Metric",
           "ReferenceFigure", "Study", "UnavailableError", "make_record", "register", "row", "steps_per_epoch",
           "training_steps", *_LAZY, *_MODULES]
