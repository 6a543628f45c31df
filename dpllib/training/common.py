"""What the trainers share besides the fit loop and the per-point training: devices, seeds,
point names, and a cell's on-disk progress."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import BASELINE, CellConfig
from ..errors import DplError
from ..files import atomic_write
from ..loss_network import LossNetwork
from ..networks import fixed_input_size
from ..results import cell_id, code_version
from .loop import FitCheckpoint


class NetworkBuffers:
    """A resumable (``state_dict`` / ``load_state_dict``) of a module's buffers only: batch
    norm's running statistics of a loss network, which training mode updates; a resumed fit
    continues from them (its frozen weights need no checkpoint)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.module.named_buffers()}

    def load_state_dict(self, state: dict) -> None:
        buffers = dict(self.module.named_buffers())
        for k, v in state.items():
            buffers[k].copy_(v)


def cell_loss_network(cfg: CellConfig, points: list[str], normalization: str, network_mode: str,
                      device: torch.device) -> LossNetwork:
    """The cell's loss network at ``points``, built once: its network and weights (``random``
    seeded with the cell's seed), fed resized to the one size a fixed-size network takes."""
    return LossNetwork(cfg.network, list(points), weights=cfg.weights, normalization=normalization,
                       network_mode=network_mode, seed=cfg.seed, resize=fixed_input_size(cfg.network)).to(device)


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


def alias_of(network: str, point: str | None) -> str:
    """The readable name of a point (``baseline`` for the no-loss-network control)."""
    if network == BASELINE or point is None:
        return BASELINE
    from ..networks import resolve_point

    return resolve_point(network, point).alias


class CellCheckpoint:
    """A cell's progress on disk in ``folder`` (``<record>.ckpt/``): each finished point's
    result and the running fit's state. One left by another cell or other dpllib code is
    discarded; the cell removes it once its record is written."""

    def __init__(self, folder: str | Path, cfg: CellConfig):
        self.folder = Path(folder)
        owner = {"cell_id": cell_id(cfg.to_dict()), "code_version": code_version()}
        marker = self.folder / "owner.json"
        if self.folder.exists() and (not marker.is_file() or json.loads(marker.read_text()) != owner):
            shutil.rmtree(self.folder)
        atomic_write(marker, json.dumps(owner))

    def _path(self, name: str, kind: str) -> Path:
        safe = re.sub(r"[^\w.-]", "_", name)
        return self.folder / f"{safe}.{kind}.pt"

    def finished(self, name: str) -> dict | None:
        """The saved result of a point trained to the end, or None."""
        path = self._path(name, "done")
        return torch.load(path, weights_only=False) if path.is_file() else None

    def finish(self, name: str, result: dict) -> None:
        atomic_write(self._path(name, "done"), lambda tmp: torch.save(result, tmp))
        self._path(name, "fit").unlink(missing_ok=True)

    def fit(self, name: str) -> FitCheckpoint:
        """The checkpoint of the fit that trains ``name``."""
        return FitCheckpoint(self._path(name, "fit"))


