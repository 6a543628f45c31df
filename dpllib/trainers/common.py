"""What the four benchmarks share: the cell config, budgets, the loss to train with, the
training loop, and the result record."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import random
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DplError

BENCHMARKS = ("similarity", "super_resolution", "segmentation", "autoencoding")
# the data sets each benchmark runs on (the study's first, then the offline stand-ins)
BENCHMARK_DATASETS = {"similarity": ("bapps", "severity"), "super_resolution": ("coco", "bsds500"),
                      "segmentation": ("mass_roads",), "autoencoding": ("svhn", "stl10", "cifar10")}
BASELINE = "baseline"  # network name of the no-perceptual-loss control
RECORD_SCHEMA = 1

# Named budgets. smoke: CPU, under a minute per training cell here. paper: the study's.
BUDGETS: dict[str, dict[str, dict]] = {
    "similarity": {
        "smoke": {"lin_steps": 40, "lin_epochs": None, "batch_size": 50, "lr": 1e-2, "eval_limit": None, "severity_n": 100},
        "paper": {"lin_steps": None, "lin_epochs": 10, "batch_size": 50, "lr": 1e-4, "eval_limit": None, "severity_n": 500},
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

CONFIG_KEYS = {"benchmark", "network", "points", "weights", "dataset", "data_root", "budget",
               "batch_size", "seed", "device", "output_dir", "overrides"}


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
        unknown = set(d) - CONFIG_KEYS
        if unknown:
            raise DplError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(CONFIG_KEYS)}")
        cfg = cls(**{k: v for k, v in d.items()})
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
            from ..networks import resolve_point

            if self.weights not in ("imagenet", "random") and not os.path.isfile(str(self.weights)):
                raise DplError(f"weights must be 'imagenet', 'random' or an existing file, got {self.weights!r}")

            self.points = [resolve_point(self.network, p).module for p in self.points]
            if not self.points:
                raise DplError(f"{self.benchmark}: give at least one extraction point for {self.network}")
        unknown = set(self.overrides) - set(self.settings_defaults())
        if unknown:
            raise DplError(f"unknown budget overrides {sorted(unknown)}; the {self.budget} budget has "
                           f"{sorted(self.settings_defaults())}")

    def settings_defaults(self) -> dict:
        return dict(BUDGETS[self.benchmark][self.budget])

    def settings(self) -> dict:
        """The budget's settings with this cell's batch size and overrides applied."""
        s = self.settings_defaults()
        if self.batch_size:
            s["batch_size"] = self.batch_size
        s.update(self.overrides)
        return s

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(CONFIG_KEYS)}


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or inf."""


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch Generator for data sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DplError("device 'cuda' was asked for but CUDA is not available; use device='cpu' or 'auto'")
    return torch.device(device)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU (CPU runs stay fp32 and bit-reproducible)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless random index batches over range(n), reshuffled each epoch."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield order[start:start + batch_size]


def supervised_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, criterion: Callable,
                    inputs: torch.Tensor, target: torch.Tensor, device: torch.device) -> float:
    """One optimizer step on ``criterion(model(inputs), target)`` (forward under autocast on
    CUDA, loss in fp32); returns the loss."""
    model.train()
    with autocast(device):
        output = model(inputs)
    loss = criterion(output.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_steps(step: Callable[[int], float], steps: int, desc: str,
                evaluate: Callable[[int], None] | None = None, eval_every: int = 0,
                progress: bool = True) -> tuple[list[float], float]:
    """Run ``step(i) -> loss`` ``steps`` times with a progress bar; returns the loss curve and
    the median seconds per step (evaluation excluded).
    Calls ``evaluate(i + 1)`` every ``eval_every`` steps and after the last. A NaN or inf loss
    raises NonFiniteLoss."""
    curve: list[float] = []
    seconds: list[float] = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=2)
    for i in bar:
        start = time.perf_counter()
        loss = float(step(i))
        seconds.append(time.perf_counter() - start)
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the training loss became {loss} at step {i + 1}; the run was "
                                "stopped (lower the learning rate or check the inputs)")
        curve.append(loss)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{loss:.4g}")
        if evaluate is not None and eval_every and ((i + 1) % eval_every == 0 or i + 1 == steps):
            evaluate(i + 1)
    return curve, float(np.median(seconds)) if seconds else 0.0


def loss_for(cfg: CellConfig, point: str, normalization: str, device: torch.device, **kwargs):
    """The training loss of one point: a PerceptualLoss with feature MSE (the study's)."""
    from ..loss import PerceptualLoss

    return PerceptualLoss(cfg.network, point, weights=cfg.weights, distance="mse",
                          normalization=normalization, seed=cfg.seed, **kwargs).to(device)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Device, library versions and git commit, for the record."""
    import timm
    import torchvision

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"device_name": device, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "timm": timm.__version__,
            "dpllib": __import__("dpllib").__version__, "git_commit": _git_commit(),
            "threads": torch.get_num_threads(), "host": platform.node()}


def make_record(cfg: CellConfig, run: Callable[[], dict]) -> dict:
    """Run ``run() -> {"rows": [...], "loss_curve": ..., ...}`` and wrap it in a result record.
    A failure (NaN loss, any exception) becomes status 'failed' with its traceback, never a number."""
    start = time.perf_counter()
    record = {"schema": RECORD_SCHEMA, "config": cfg.to_dict(), "settings": cfg.settings(),
              "environment": environment()}
    try:
        out = run()
        record.update(status="ok", **out)
    except Exception as err:  # recorded, not raised: the grid goes on
        record.update(status="failed", rows=[], error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc())
    record["wall_time_s"] = time.perf_counter() - start
    return record


def per_point(cfg: CellConfig, train_point: Callable[[str | None, str, torch.Generator], dict]) -> dict:
    """Train one model per extraction point (the baseline: one model, point None), each from
    the same seed, so points are compared on the same initialisation and batch order.
    ``train_point(point, alias, generator)`` returns rows and curves; curves are keyed by alias."""
    out: dict = {"rows": [], "loss_curve": {}, "val_curve": {}, "best_step": {}, "seconds_per_step": {}}
    for point in cfg.points or [None]:
        alias = alias_of(cfg.network, point) if point else BASELINE
        result = train_point(point, alias, seed_everything(cfg.seed))
        out["rows"] += result["rows"]
        for key in ("loss_curve", "val_curve", "best_step", "seconds_per_step"):
            if key in result:
                out[key][alias] = result[key]
    return out


def row(point: str | None, alias: str | None, metric: str, value: float, split: str = "all") -> dict:
    """One tidy result row."""
    return {"point": point, "alias": alias, "metric": metric, "split": split, "value": float(value)}


def alias_of(network: str, point: str) -> str:
    if network == BASELINE:
        return BASELINE
    from ..networks import resolve_point

    return resolve_point(network, point).alias
