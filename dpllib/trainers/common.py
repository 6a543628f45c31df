"""What the four trainers share besides the fit loop: devices, seeds, batch order, one
supervised step, the training loss of a point, and training one model per point."""

from __future__ import annotations

import contextlib
import random
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ..config import BASELINE, CellConfig
from ..errors import DplError
from ..results import make_record


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch Generator for data sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str) -> torch.device:
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
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


def loss_for(cfg: CellConfig, point: str, normalization: str, device: torch.device, **kwargs):
    """The training loss of one point: a PerceptualLoss with feature MSE (the study's)."""
    from ..loss import PerceptualLoss

    return PerceptualLoss(cfg.network, point, weights=cfg.weights, distance="mse",
                          normalization=normalization, seed=cfg.seed, **kwargs).to(device)


def alias_of(network: str, point: str | None) -> str:
    """The readable name of a point (``baseline`` for the no-loss-network control)."""
    if network == BASELINE or point is None:
        return BASELINE
    from ..networks import resolve_point

    return resolve_point(network, point).alias


def per_point(cfg: CellConfig, train_point: Callable[[str | None, str, torch.Generator], dict]) -> dict:
    """Train one model per extraction point (the baseline: one model, point None), each from
    the same seed, so points are compared on the same initialisation and batch order.
    ``train_point(point, alias, generator)`` returns rows, curves and (optionally) examples;
    curves and examples are keyed by alias. Returns the record's fields and the examples."""
    out: dict = {"rows": [], "loss_curve": {}, "val_curve": {}, "best_step": {}, "seconds_per_step": {},
                 "examples": {}}
    for point in cfg.points or [None]:
        alias = alias_of(cfg.network, point)
        result = train_point(point, alias, seed_everything(cfg.seed))
        out["rows"] += result["rows"]
        for key in ("loss_curve", "val_curve", "best_step", "seconds_per_step"):
            if key in result:
                out[key][alias] = result[key]
        if "examples" in result:
            out["examples"][alias] = result["examples"]
    return out


def run_cell(cfg: CellConfig | dict, load_data: Callable[[CellConfig, dict, torch.device], Any],
             train_point: Callable[..., dict], describe_data: Callable[[CellConfig, Any], dict],
             progress: bool = True) -> tuple[dict, dict]:
    """A benchmark cell: load the data once, train one model per point with
    ``train_point(cfg, settings, data, point, alias, generator, device=, progress=)``, describe
    the data in the record. Returns (record, examples)."""
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(cfg)

    def body() -> dict:
        settings = cfg.settings()
        device = pick_device(cfg.device)
        data = load_data(cfg, settings, device)
        out = per_point(cfg, functools.partial(train_point, cfg, settings, data, device=device, progress=progress))
        out["data"] = describe_data(cfg, data)
        return out

    return make_record(cfg, body)
