"""Dimensionality reduction (Pihlgren et al. 2020): a deterministic conv autoencoder (z = 64)
trained with a single-point feature MSE (baseline: pixel MSE); the embedding is scored by the
test accuracy of 7 small MLPs trained on frozen training-set embeddings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import CellConfig, training_steps
from ..datasets import autoencoder_dataset
from ..errors import DplError
from ..results import row
from .common import batches, loss_for, run_cell, supervised_step
from .loop import Trainee, fit

Z = 64
PROBE_SHAPES: tuple[tuple[int, ...], ...] = ((), (32,), (64,), (32, 32), (64, 32), (64, 64), (128, 128))
LOSS_MIN_SIZE = 64  # 32 px images are upsampled to this before the loss network


class ConvAutoencoder(nn.Module):
    """4 stride-2 convs -> z (deterministic) -> 4 stride-2 transposed convs; images in [0, 1]."""

    def __init__(self, size: int, z: int = Z, width: int = 32):
        super().__init__()
        if size % 16:
            raise DplError(f"image size {size} must be a multiple of 16")
        chs = [3, width, width * 2, width * 4, width * 8]
        enc = []
        for a, b in zip(chs[:-1], chs[1:]):
            enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(chs[-1] * (size // 16) ** 2, z))
        self.side = size // 16
        self.expand = nn.Linear(z, chs[-1] * self.side**2)
        dec = []
        rev = chs[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)]
            if i < 3:
                dec += [nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*dec, nn.Sigmoid())
        self.top = chs[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.expand(z).view(-1, self.top, self.side, self.side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def probe_accuracy(train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
                   hidden: tuple[int, ...], epochs: int, seed: int, patience: int | None = None) -> float:
    """Test accuracy in [0, 1] of an MLP (``hidden`` layer sizes, ReLU) trained full-batch with Adam
    on standardised embeddings; with ``patience``, stops when a 10% hold-out stops improving."""
    torch.manual_seed(seed)
    mean, std = train_z.mean(0), train_z.std(0).clamp_min(1e-6)
    tr, te = (train_z - mean) / std, (test_z - mean) / std
    classes = int(max(train_y.max(), test_y.max())) + 1
    layers, width = [], tr.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    mlp = nn.Sequential(*layers, nn.Linear(width, classes))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2, weight_decay=1e-4)
    n_hold = len(tr) // 10 if patience else 0
    fit_x, fit_y = tr[n_hold:], train_y[n_hold:]
    best, best_state, wait = -1.0, None, 0
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(mlp(fit_x), fit_y).backward()
        opt.step()
        if patience:
            with torch.no_grad():
                acc = (mlp(tr[:n_hold]).argmax(1) == train_y[:n_hold]).float().mean().item()
            if acc > best:
                best, best_state, wait = acc, {k: v.clone() for k, v in mlp.state_dict().items()}, 0
            else:
                wait += 1
                if wait >= patience:
                    break
    if best_state is not None:
        mlp.load_state_dict(best_state)
    with torch.no_grad():
        return (mlp(te).argmax(1) == test_y).float().mean().item()


@dataclass
class AEData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def size(self) -> int:
        return self.x_train.shape[-1]


def load_data(cfg: CellConfig, settings: dict, device: torch.device | None = None) -> AEData:
    train = autoencoder_dataset(cfg.dataset, "train", cfg.data_root, settings["train_limit"])
    test = autoencoder_dataset(cfg.dataset, "test", cfg.data_root, settings["test_limit"])
    return AEData(*train.tensors, *test.tensors)


def reconstruction_loss(cfg: CellConfig, point: str | None, size: int, device: torch.device) -> Callable:
    """Pixel MSE (point None) or the feature MSE at ``point``; images smaller than
    LOSS_MIN_SIZE are upsampled before the loss network."""
    if point is None:
        return F.mse_loss
    perceptual = loss_for(cfg, point, "imagenet", device)

    def criterion(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if size < LOSS_MIN_SIZE:
            recon = F.interpolate(recon, size=LOSS_MIN_SIZE, mode="bilinear", align_corners=False)
            target = F.interpolate(target, size=LOSS_MIN_SIZE, mode="bilinear", align_corners=False)
        return perceptual(recon, target)

    return criterion


def encode_all(model: ConvAutoencoder, data: AEData, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(train embeddings, test embeddings, test reconstructions) on the CPU."""
    model.eval()
    with torch.no_grad():
        return tuple(torch.cat([f(x[b:b + 512].to(device)).float().cpu() for b in range(0, len(x), 512)])
                     for f, x in ((model.encode, data.x_train), (model.encode, data.x_test), (model, data.x_test)))


def train_point(cfg: CellConfig, settings: dict, data: AEData, point: str | None, alias: str,
                generator: torch.Generator, device: torch.device, progress: bool = True) -> dict:
    """Train one autoencoder with the feature loss at ``point`` (pixel MSE when None) and score its
    embedding with the probes. Returns rows, the loss curve and examples (8 reconstructions)."""
    model = ConvAutoencoder(data.size).to(device)
    criterion = reconstruction_loss(cfg, point, data.size, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    index = batches(len(data.x_train), settings["batch_size"], generator)
    trainee = Trainee(alias, model, optimizer, lambda x: supervised_step(model, optimizer, criterion, x, x, device))
    report = fit([trainee], lambda _i: data.x_train[next(index)].to(device),
                 training_steps(settings, len(data.x_train)), f"AE {cfg.network} {alias}", progress=progress)[alias]
    z_train, z_test, recon = encode_all(model, data, device)
    rows, accs = [], []
    for hidden in PROBE_SHAPES:
        acc = probe_accuracy(z_train, data.y_train, z_test, data.y_test, hidden, settings["probe_epochs"], cfg.seed,
                             settings["patience"])
        accs.append(acc)
        rows.append(row(point, alias, "probe_accuracy", acc, "[" + ",".join(map(str, hidden)) + "]"))
    rows.append(row(point, alias, "probe_accuracy", float(np.mean(accs)), "mean"))
    rows.append(row(point, alias, "reconstruction_mse", F.mse_loss(recon, data.x_test).item(), "test"))
    examples = dict(original=data.x_test[:8], reconstruction=recon[:8])
    return {"rows": rows, **report, "examples": examples}


def describe_data(cfg: CellConfig, data: AEData) -> dict:
    return {"dataset": cfg.dataset, "train": len(data.x_train), "test": len(data.x_test), "size": data.size,
            "kind": "CIFAR-10 (stand-in for SVHN/STL-10)" if cfg.dataset == "cifar10" else cfg.dataset}


def run(cfg: CellConfig | dict, progress: bool = True) -> tuple[dict, dict]:
    """Train one autoencoder per point of the cell and score its embedding; returns the result
    record and the examples {alias: {original, reconstruction}}."""
    return run_cell(cfg, load_data, train_point, describe_data, progress)
