"""The four benchmarks: ``run(config) -> result record`` in each module."""

from . import autoencoding, segmentation, similarity, super_resolution
from .common import BASELINE, BENCHMARKS, BUDGETS, CellConfig, NonFiniteLoss

RUNNERS = {"similarity": similarity.run, "super_resolution": super_resolution.run,
           "segmentation": segmentation.run, "autoencoding": autoencoding.run}

__all__ = ["BASELINE", "BENCHMARKS", "BUDGETS", "CellConfig", "NonFiniteLoss", "RUNNERS",
           "autoencoding", "segmentation", "similarity", "super_resolution"]
