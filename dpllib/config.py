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
BENCHMARK_DATASETS = {"similarity": ("bapps", "severity"), "super_resolution": ("coco", "bsds500"),
                      "segmentation": ("mass_roads",), "autoencoding": ("svhn", "stl10", "cifar10")}
BASELINE = "baseline"  # network name of the no-perceptual-loss control

# Named budgets. smoke: CPU, under a minute per training cell here. paper: the study's.
BUDGETS: dict[str, dict[str, dict]] = {
    "similarity": {
        "smoke": {"steps": 40, "epochs": None, "batch_size": 50, "lr": 1e-2, "eval_limit": None, "severity_n": 100},
        "paper": {"steps": None, "epochs": 10, "batch_size": 50, "lr": 1e-4, "eval_limit": None, "severity_n": 500},
    },
    "super_resolution": {
        "smoke": {"steps": 60, "epochs": None, "batch_size": 4, "lr": 1e-3, "hr_size": 96, "train_limit": 64,
                  "val_images": 8, "eval_every": 20, "test_limit": 5},
        "paper": {"steps": 200_000, "epochs": None, "batch_size": 4, "lr": 1e-3, "hr_size": 288, "train_limit": 10_000,
                  "val_images": 100, "eval_every": 2_000, "test_limit": None},
    },
    "segmentation": {
        "smoke": {"steps": 50, "epochs": None, "batch_size": 4, "lr": 1e-3, "width": 16, "size": 224, "crop": 112,
                  "eval_every": 25},
        "paper": {"steps": None, "epochs": 100, "batch_size": 8, "lr": 1e-3, "width": 64, "size": 224, "crop": 224,
                  "eval_every": 1},
    },
    "autoencoding": {
        "smoke": {"steps": 80, "epochs": None, "batch_size": 32, "lr": 1e-3, "train_limit": 2000, "test_limit": 1000,
                  "probe_epochs": 60, "patience": None},
        "paper": {"steps": None, "epochs": 50, "batch_size": 256, "lr": 1e-3, "train_limit": None, "test_limit": None,
                  "probe_epochs": 300, "patience": 10},
    },
}
# smoke budgets are sized so the offline preset (≈90 trainings) fits 20-30 min on 2 CPU cores;
# their numbers show the pipeline works, not converged models.

# Training-set sizes of the study's data (items per epoch), for estimates made without the data.
PAPER_TRAINING_ITEMS = {"similarity": 151_400, "segmentation": 1108, "autoencoding": 73_257}

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
    budget: str = "smoke"
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
