"""One cell's configuration and the step arithmetic of budgets.

Plain data and validation: what a benchmark allows (data sets, budgets) comes from its
registered descriptor (:mod:`dpllib.benchmark`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import DplError
from .registry import get_benchmark

BASELINE = "baseline"  # network name of the no-perceptual-loss control

CONFIG_KEYS = ("benchmark", "network", "points", "weights", "dataset", "data_root", "budget",
               "batch_size", "seed", "device", "output_dir", "overrides")


def preset_datasets(preset: dict) -> list[tuple[str, str]]:
    """(benchmark, data set) pairs a preset runs, in its order: ``benchmarks`` maps each
    benchmark to a data set or a list of them."""
    pairs = []
    for bench, datasets in (preset.get("benchmarks") or {}).items():
        pairs += [(bench, d) for d in ([datasets] if isinstance(datasets, str) else datasets)]
    return pairs


def entry_weights(entry: dict) -> list[str]:
    """The weights of a preset's network entry as a list (one name may be written alone;
    default imagenet)."""
    weights = entry.get("weights", ["imagenet"])
    return [weights] if isinstance(weights, str) else list(weights)


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
    budget: str = "smoke"  # a name of the benchmark's budgets: smoke, offline or paper
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
        bench = get_benchmark(self.benchmark)
        bench.dataset(self.dataset)  # raises with the allowed names
        if self.budget not in bench.budgets:
            raise DplError(bench.budget_error(self.budget))
        if isinstance(self.points, str):
            self.points = [self.points]
        if self.network != BASELINE:
            from .networks import point_module

            if self.weights not in ("imagenet", "random") and not os.path.isfile(str(self.weights)):
                raise DplError(f"weights must be 'imagenet', 'random' or an existing file, got {self.weights!r}")
            self.points = [point_module(self.network, p) for p in self.points]
            if not self.points:
                raise DplError(f"{self.benchmark}: give at least one extraction point for {self.network}")
        allowed = bench.budgets[self.budget]
        unknown = set(self.overrides) - set(allowed)
        if unknown:
            raise DplError(f"unknown budget overrides {sorted(unknown)}; the {self.budget} budget has {sorted(allowed)}")

    def settings(self) -> dict:
        """The budget's settings with this cell's batch size and overrides applied."""
        s = dict(get_benchmark(self.benchmark).budgets[self.budget])
        if self.batch_size:
            s["batch_size"] = self.batch_size
        s.update(self.overrides)
        return s

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(CONFIG_KEYS)}
