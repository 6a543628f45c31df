"""The run configuration: benchmarks, their data sets, named budgets, and one cell's config.

Plain data and validation only: grid, results and the CLI import this module without loading
any trainer or data set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import DplError

BENCHMARKS = ("similarity", "super_resolution", "segmentation", "autoencoding")
# the data sets each benchmark runs on (the study's first, then the offline stand-ins)
BENCHMARK_DATASETS = {"similarity": ("bapps", "equal_mse", "severity"), "super_resolution": ("coco", "bsds500"),
                      "segmentation": ("mass_roads",), "autoencoding": ("svhn", "stl10", "cifar10")}
BASELINE = "baseline"  # network name of the no-perceptual-loss control

# Named budgets: every setting a trainer reads. smoke: seconds on a CPU (tests, a first look);
# offline: the book on 2 CPU cores (models that learn, within the time cap; its differences
# from the study are listed by dpllib.protocol); paper: the study's protocol.
# Steps count optimiser steps; epochs count passes over the training items (used when steps
# is None); eval_every counts steps in a step budget and epochs in an epoch budget.
BUDGETS: dict[str, dict[str, dict]] = {
    "similarity": {
        "smoke": {"steps": 20, "epochs": None, "batch_size": 50, "lr": 1e-2, "eval_limit": None, "synthetic_n": 30},
        "offline": {"steps": 60, "epochs": None, "batch_size": 50, "lr": 1e-2, "eval_limit": None, "synthetic_n": 200},
        "paper": {"steps": None, "epochs": 10, "batch_size": 256, "lr": 1e-3, "eval_limit": None, "synthetic_n": 500},
    },
    "super_resolution": {
        "smoke": {"steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 1e-3, "hr_size": 96, "crop": 64,
                  "train_limit": 16, "val_images": 4, "val_crop": 64, "eval_every": 10, "test_sets": ["set5"],
                  "test_sizes": [None], "test_limit": 2, "channels": 16, "residual": True, "normalization": "none",
                  "lockstep": True},
        "offline": {"steps": 60, "epochs": None, "warm_steps": 300, "batch_size": 4, "lr": 1e-4, "hr_size": 288,
                    "crop": 64, "train_limit": 384, "val_images": 16, "val_crop": 96, "eval_every": 20,
                    "test_sets": ["set5"], "test_sizes": [None], "test_limit": None, "channels": 32,
                    "residual": True, "normalization": "none", "lockstep": True},
        "paper": {"steps": 200_000, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 1e-3, "hr_size": 288,
                  "crop": None,
                  "train_limit": 10_000, "val_images": 100, "val_crop": None, "eval_every": 2_000,
                  "test_sets": ["set5", "set14", "bsd100"], "test_sizes": [None, 288], "test_limit": None,
                  "channels": 64, "residual": False, "normalization": "none", "lockstep": True},
    },
    "segmentation": {
        "smoke": {"steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 2e-3, "size": 224, "crop": 64,
                  "eval_every": 10, "pos_weight": 5.0, "mask_no_data": True, "k_train": 1, "k_test": 3,
                  "select_by": "quality", "lockstep": True},
        "offline": {"steps": 60, "epochs": None, "warm_steps": 1500, "batch_size": 8, "lr": 2e-3, "size": 750,
                    "crop": 128, "eval_every": 30, "pos_weight": 4.0, "mask_no_data": True, "k_train": 1,
                    "k_test": 3, "select_by": "quality", "lockstep": True},
        "paper": {"steps": None, "epochs": 100, "warm_steps": 0, "batch_size": 8, "lr": 1e-3, "size": 224, "crop": 224,
                  "eval_every": 1, "pos_weight": 1.0, "mask_no_data": False, "k_train": 1, "k_test": 3,
                  "select_by": "bce", "lockstep": True},
    },
    "autoencoding": {
        "smoke": {"steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 32, "lr": 1e-3, "train_split": "train",
                  "train_limit": 500, "test_limit": 200, "pad": "reflect", "normalization": "none",
                  "loss_size": None, "val_fraction": 0.0, "eval_every": 0, "patience": None, "probe_epochs": 20,
                  "probe_batch": None, "probe_lr": 1e-2, "probe_patience": 5, "probe_loss": "ce",
                  "probe_holdout": 0.1, "pca_reference": True, "lockstep": True},
        "offline": {"steps": 60, "epochs": None, "warm_steps": 400, "batch_size": 64, "lr": 1e-3,
                    "train_split": "train", "train_limit": None, "test_limit": 3000, "pad": "reflect",
                    "normalization": "none", "loss_size": None, "val_fraction": 0.0, "eval_every": 0,
                    "patience": None, "probe_epochs": 40, "probe_batch": None, "probe_lr": 1e-2,
                    "probe_patience": 10, "probe_loss": "ce", "probe_holdout": 0.1, "pca_reference": True,
                    "lockstep": True},
        "paper": {"steps": None, "epochs": 50, "warm_steps": 0, "batch_size": 256, "lr": 1e-3, "train_split": "study",
                  "train_limit": None, "test_limit": None, "pad": "reflect", "normalization": "none",
                  "loss_size": None, "val_fraction": 0.2, "eval_every": 1, "patience": 10, "probe_epochs": 500,
                  "probe_batch": 256, "probe_lr": 1e-3, "probe_patience": 25, "probe_loss": "mse",
                  "probe_holdout": 0.2, "pca_reference": True, "lockstep": True},
    },
}

# Training-set sizes of the study's data (items per epoch), for estimates made without the data.
PAPER_TRAINING_ITEMS = {"similarity": 151_400, "segmentation": 1108, "autoencoding": 531_131 * 4 // 5}

CONFIG_KEYS = ("benchmark", "network", "points", "weights", "dataset", "data_root", "budget",
               "batch_size", "seed", "device", "output_dir", "overrides")


def training_steps(settings: dict, n_items: int) -> int:
    """Optimizer steps of one training: ``steps`` when the budget gives them, else
    ``epochs`` x (``n_items`` // batch size, at least 1)."""
    if settings.get("steps"):
        return int(settings["steps"])
    return int(settings["epochs"]) * steps_per_epoch(settings, n_items)


def steps_per_epoch(settings: dict, n_items: int) -> int:
    """Batches in one pass over ``n_items`` training items (at least 1)."""
    return max(1, n_items // settings["batch_size"])


def evaluation_interval(settings: dict, n_items: int) -> int:
    """Steps between validations: ``eval_every`` counts steps in a step budget and epochs in an
    epoch budget."""
    every = settings.get("eval_every") or 0
    return every if settings.get("steps") else every * steps_per_epoch(settings, n_items)


@dataclass
class CellConfig:
    """One benchmark cell: which loss network and point(s), which data, which budget."""

    benchmark: str
    network: str
    points: list[str] = field(default_factory=list)
    weights: str = "imagenet"
    dataset: str = ""
    data_root: str | None = None
    budget: str = "smoke"  # smoke, offline or paper (BUDGETS)
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    output_dir: str = "results"
    overrides: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> CellConfig:
        unknown = set(d) - set(CONFIG_KEYS)
        if unknown:
            raise DplError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(CONFIG_KEYS)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise DplError(f"benchmark must be one of {BENCHMARKS}, got {self.benchmark!r}")
        if self.dataset not in BENCHMARK_DATASETS[self.benchmark]:
            raise DplError(f"{self.benchmark} data set must be one of {BENCHMARK_DATASETS[self.benchmark]}, "
                           f"got {self.dataset!r}")
        if self.budget not in BUDGETS[self.benchmark]:
            raise DplError(f"budget must be one of {sorted(BUDGETS[self.benchmark])}, got {self.budget!r}")
        if isinstance(self.points, str):
            self.points = [self.points]
        if self.network != BASELINE:
            from .networks import resolve_point

            if self.weights not in ("imagenet", "random") and not os.path.isfile(str(self.weights)):
                raise DplError(f"weights must be 'imagenet', 'random' or an existing file, got {self.weights!r}")
            self.points = [resolve_point(self.network, p).module for p in self.points]
            if not self.points:
                raise DplError(f"{self.benchmark}: give at least one extraction point for {self.network}")
        unknown = set(self.overrides) - set(BUDGETS[self.benchmark][self.budget])
        if unknown:
            raise DplError(f"unknown budget overrides {sorted(unknown)}; the {self.budget} budget has "
                           f"{sorted(BUDGETS[self.benchmark][self.budget])}")

    def settings(self) -> dict:
        """The budget's settings with this cell's batch size and overrides applied."""
        s = dict(BUDGETS[self.benchmark][self.budget])
        if self.batch_size:
            s["batch_size"] = self.batch_size
        s.update(self.overrides)
        return s

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(CONFIG_KEYS)}
