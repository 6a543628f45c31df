"""Super-resolution x4 (Johnson et al. 2016) trained with a single-point feature loss.

Loss: feature MSE at the chosen point only (no pixel term, no TV, no ImageNet normalisation,
as the study); the baseline trains with pixel MSE. The checkpoint with the best validation
PSNR is kept. Test: PSNR and SSIM on the Y channel after cropping 4 border pixels (= scale),
on Set5, Set14 and BSD100; the bicubic upscale is reported alongside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import SRTestSet, SRTrainSet, upscale_bicubic
from ..errors import DplError
from ..config import CellConfig, evaluation_interval, training_steps
from ..metrics import psnr_y, ssim_y
from ..results import row
from .common import autocast, batches, loss_for, run_cell, supervised_step
from .loop import Trainee, fit

TEST_SETS = ("set5", "set14", "bsd100")
BORDER = 4


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformNetSR(nn.Module):
    """Johnson et al.'s x4 super-resolution network: 9x9 conv, 4 residual blocks (64 channels),
    two stride-1/2 convolutions, 9x9 conv, scaled tanh. Input/output in [0, 1]."""

    def __init__(self, channels: int = 64, blocks: int = 4, scale: int = 4):
        super().__init__()
        layers = [nn.Conv2d(3, channels, 9, padding=4), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(int(np.log2(scale))):
            layers += [nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(channels, 3, 9, padding=4)]
        self.net = nn.Sequential(*layers)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.net(lr)) + 1) / 2


def lpips_metric(device: torch.device) -> tuple[nn.Module | None, str]:
    """LPIPS (alex, lin) on [0, 1] images, or None and why when its AlexNet ImageNet weights
    cannot be had (offline, not cached)."""
    from ..errors import UnavailableError
    from ..loss import PerceptualLoss

    try:
        return PerceptualLoss.lpips("alex", input_range=(0, 1), reduction="none").to(device), "LPIPS alex v0.1"
    except UnavailableError as err:
        return None, f"LPIPS not computed: {str(err).split('.')[0]}"


def evaluate(model: nn.Module, data, device: torch.device, limit: int | None = None,
             lpips_fn: nn.Module | None = None) -> dict[str, np.ndarray]:
    """Per-image PSNR/SSIM (Y, border 4) of the model and of bicubic upscaling, and LPIPS
    (lower is closer) when ``lpips_fn`` is given."""
    model.eval()
    out = {"psnr": [], "ssim": [], "psnr_bicubic": [], "ssim_bicubic": []}
    if lpips_fn is not None:
        out.update(lpips=[], lpips_bicubic=[])
    n = len(data) if limit is None else min(limit, len(data))
    with torch.no_grad():
        for i in range(n):
            lr, hr = data[i]
            lr, hr = lr[None].to(device), hr[None].to(device)
            with autocast(device):
                sr = model(lr)
            sr = sr.float()
            bic = upscale_bicubic(lr)
            out["psnr"].append(psnr_y(sr, hr, BORDER).item())
            out["ssim"].append(float(ssim_y(sr, hr, BORDER)[0]))
            out["psnr_bicubic"].append(psnr_y(bic, hr, BORDER).item())
            out["ssim_bicubic"].append(float(ssim_y(bic, hr, BORDER)[0]))
            if lpips_fn is not None:
                out["lpips"].append(lpips_fn(sr.clamp(0, 1), hr).item())
                out["lpips_bicubic"].append(lpips_fn(bic, hr).item())
    return {k: np.array(v) for k, v in out.items()}


@dataclass
class SRData:
    """Training images (the last ``val_images`` held out for validation) and the test sets."""

    train: SRTrainSet
    n_train: int
    val_idx: list[int]
    tests: dict[str, SRTestSet]
    lpips_fn: nn.Module | None
    lpips_note: str


def load_data(cfg: CellConfig, settings: dict, device: torch.device) -> SRData:
    train = SRTrainSet(cfg.dataset, cfg.data_root, limit=settings["train_limit"] + settings["val_images"],
                       seed=cfg.seed, hr_size=settings["hr_size"])
    n_train = len(train) - settings["val_images"]
    if n_train < 1:
        raise DplError(f"only {len(train)} training images for {settings['val_images']} validation images")
    tests = {name: SRTestSet(name, cfg.data_root) for name in TEST_SETS}
    lpips_fn, lpips_note = lpips_metric(device)
    return SRData(train, n_train, list(range(n_train, len(train))), tests, lpips_fn, lpips_note)


def _stack(data, indices: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lr, hr = (torch.stack(t).to(device) for t in zip(*(data[j] for j in indices)))
    return lr, hr


def train_point(cfg: CellConfig, settings: dict, data: SRData, point: str | None, alias: str,
                generator: torch.Generator, device: torch.device, progress: bool = True) -> dict:
    """Train one SR model with the feature loss at ``point`` (pixel MSE when None), keep the best
    validation-PSNR checkpoint, test it. Returns rows, curves and example images."""
    model = TransformNetSR().to(device)
    criterion = F.mse_loss if point is None else loss_for(cfg, point, "none", device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    index = batches(data.n_train, settings["batch_size"], generator)

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            lr, hr = _stack(data.train, data.val_idx, device)
            return psnr_y(model(lr).float(), hr, BORDER).mean().item()

    trainee = Trainee(alias, model, optimizer, validate=validate, train_step=lambda batch: supervised_step(
        model, optimizer, criterion, *batch, device))
    report = fit([trainee], lambda _i: _stack(data.train, next(index).tolist(), device),
                 training_steps(settings, data.n_train), f"SR {cfg.network} {alias}",
                 evaluation_interval(settings, data.n_train), progress)[alias]
    rows = []
    for name, test in data.tests.items():
        scores = evaluate(model, test, device, settings["test_limit"], data.lpips_fn)
        rows += [row(point, alias, metric, values.mean(), name) for metric, values in scores.items()]
    lr, hr = data.tests["set5"][0]
    with torch.no_grad():
        sr = model(lr[None].to(device)).float().cpu()[0]
    examples = dict(lr=lr, sr=sr, bicubic=upscale_bicubic(lr[None])[0], hr=hr)
    return {"rows": rows, **report, "examples": examples}


def describe_data(cfg: CellConfig, data: SRData) -> dict:
    limit = cfg.settings()["test_limit"]
    return {"train_images": data.n_train, "val_images": len(data.val_idx),
            "train_source": "MS-COCO 2014 subset" if cfg.dataset == "coco" else "BSDS500 train+test (stand-in for MS-COCO)",
            "test_sets": {n: len(t) if limit is None else min(limit, len(t)) for n, t in data.tests.items()},
            "metrics_note": f"PSNR/SSIM on Y (BT.601), 4-pixel border cropped; {data.lpips_note}"}


def run(cfg: CellConfig | dict, progress: bool = True) -> tuple[dict, dict]:
    """Train and test one model per point of the cell; returns the result record and the
    examples {alias: {lr, sr, bicubic, hr}} (the first Set5 image)."""
    return run_cell(cfg, load_data, train_point, describe_data, progress)
