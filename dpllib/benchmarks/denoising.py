"""Denoising: removing Gaussian noise from real photos, a use case outside the study.

A small DnCNN-style residual denoiser (Zhang et al. 2017) is trained on crops of BSDS500's
training photos with additive Gaussian noise (sigma 25/255 or 50/255, one data set each), with
the feature MSE between its output and the clean crop at one extraction point (one model per
point, the loss network seeing both through its own input normalisation); the baseline trains
with pixel MSE. Test: PSNR (RGB) and SSIM (Y, Gaussian window) of the 8-bit outputs on centre
crops of BSDS500's test photos, each with one fixed noise draw; the noisy input itself is the
answer that needs no learning.

This module is also the worked example of the book's page "Add your own use case": it imports
dpllib only through :mod:`dpllib.benchmark`, by absolute imports, so that a copy of it works
outside the package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpllib.benchmark import (BASELINE, Benchmark, CellConfig, Check, DataSet, ImageCrops, Metric, Task, metrics, row,
                         to_uint8, train_and_test)

NAME = "denoising"
NOISY = "noisy input"  # the answer that needs no learning, recorded as a reference
SIGMAS = {"sigma25": 25 / 255, "sigma50": 50 / 255}  # data set -> noise standard deviation (images in [0, 1])
DATASETS = (DataSet("sigma25", "BSDS500, sigma 25", "beyond", "BSDS500 photos with Gaussian noise, sigma 25/255"),
            DataSet("sigma50", "BSDS500, sigma 50", "beyond", "BSDS500 photos with Gaussian noise, sigma 50/255"))
TEST_NOISE_SEED = 2017  # one noise draw on the test crops, the same for every cell

# Named budgets (see dpllib.benchmark.Benchmark.budgets): every setting the trainer reads. Crops
# are taken at the photos' own resolution; training crops are random ``crop`` px windows of
# the centre ``source_crop`` px of each training photo.
BUDGETS = {
    "smoke": {"network_mode": "eval", "steps": 50, "epochs": None, "warm_steps": 0, "batch_size": 8, "lr": 2e-3,
              "train_images": 16, "source_crop": 96, "crop": 32, "test_images": 4, "test_crop": 96, "depth": 4,
              "width": 16, "normalization": "network", "eval_every": 0, "lockstep": True},
    "offline": {"network_mode": "eval", "steps": 100, "epochs": None, "warm_steps": 300, "batch_size": 8, "lr": 2e-4,
                "train_images": 200, "source_crop": 192, "crop": 64, "test_images": 20, "test_crop": 192, "depth": 8,
                "width": 32, "normalization": "network", "eval_every": 0, "lockstep": True},
}


class DnCNN(nn.Module):
    """A DnCNN-style residual denoiser: conv + ReLU, ``depth - 2`` x (conv + batch norm + ReLU),
    conv, all 3 x 3; the output is the input minus the predicted noise. The last conv starts at
    zero, so an untrained model returns its input. N x 3 x H x W -> same, images in [0, 1]."""

    def __init__(self, depth: int = 8, width: int = 32):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.noise = nn.Sequential(*layers)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return noisy - self.noise(noisy)


def denoiser(settings: dict, dataset: str | None = None) -> DnCNN:
    """The network a budget's settings train (``depth``, ``width``); any data set."""
    return DnCNN(settings["depth"], settings["width"])


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over RGB, per image, of N x 3 x H x W images in [0, 1] (prediction clamped)."""
    mse = (prediction.clamp(0, 1) - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


def score(denoised: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (RGB) and SSIM (Y) of 8-bit ``denoised`` against ``clean`` (N x 3 x H x W)."""
    quantised = (denoised.clamp(0, 1) * 255).round() / 255
    return {"psnr": psnr(quantised, clean).mean().item(),
            "ssim": float(metrics.ssim_y(quantised, clean, border=0).mean())}


def make_task(cfg: CellConfig, settings: dict, device: torch.device) -> tuple[Task, dict]:
    s, sigma = settings, SIGMAS[cfg.dataset]
    source = ImageCrops("bsds500", "train", s["source_crop"], cfg.data_root, limit=s["train_images"], seed=cfg.seed)
    train = source.crops.to(device)  # uint8, resident on the device
    clean = ImageCrops("bsds500", "test", s["test_crop"], cfg.data_root, limit=s["test_images"]).crops.float() / 255
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(TEST_NOISE_SEED))
    clean, noisy = clean.to(device), (clean + sigma * noise).to(device)

    def sample(order, generator: torch.Generator) -> dict:
        x = train[order().to(device)].float() / 255
        top, left = torch.randint(0, s["source_crop"] - s["crop"] + 1, (2,), generator=generator).tolist()
        x = x[..., top:top + s["crop"], left:left + s["crop"]]
        return {"input": x + sigma * torch.randn(x.shape, generator=generator).to(device), "target": x}

    def test(model: nn.Module, point: str | None, alias: str) -> tuple[list[dict], dict]:
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(noisy[i:i + 4]).float() for i in range(0, len(noisy), 4)])
        rows = [row(point, alias, metric, value, "test") for metric, value in score(out, clean).items()]
        return rows, {"denoised": to_uint8(out[0])}

    task = Task(new_model=lambda: denoiser(s), n_items=len(train), sample=sample,
                forward=lambda model, batch: [model(batch["input"])],
                pixel_loss=lambda outputs, batch: F.mse_loss(outputs[0], batch["target"]), test=test,
                normalization=s["normalization"])
    fields = {"references": [{"method": NOISY, "metric": metric, "split": "test", "value": value}
                             for metric, value in score(noisy, clean).items()],
              "examples": {"reference": {"noisy": to_uint8(noisy[0]), "clean": to_uint8(clean[0])}},
              "data": {"train_images": len(train), "test_images": len(clean), "sigma": sigma,
                       "train_source": "BSDS500 train", "test_source": "BSDS500 test"}}
    return task, fields


def run(cfg: CellConfig | dict, progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """Train and test one denoiser per point of the cell; returns the record and the examples
    ({alias: {denoised}}, the first test crop)."""
    return train_and_test(cfg, make_task, progress, checkpoint_dir)


# --------------------------------------------------------------------------- what the book shows


def learning_checks(table, references) -> list[Check]:
    """The pixel-MSE control gains >= 1 dB PSNR over the noisy input in every seed; every
    perceptual model beats the noisy input in every seed."""
    from dpllib.benchmark import every_model_beats, learning_check, per_seed, reference_value

    ok = table[(table["status"] == "ok") & (table["metric"] == "psnr") & (table["split"] == "test")]
    base = ok["network"] == BASELINE
    noisy = reference_value(references, NOISY, "psnr", "test")
    return [learning_check(NAME, "pixel-MSE baseline PSNR >= the noisy input's + 1 dB", noisy + 1.0,
                           per_seed(ok[base])),
            *every_model_beats(NAME, "every perceptual model beats the noisy input (PSNR, every seed)", noisy,
                               ok[~base],
                               why="a feature loss alone need not keep pixel values: features that ignore a colour "
                                   "shift or the noise's fine grain leave them in the output")]


def example_figures(reference: dict, outputs: list[tuple[str, torch.Tensor]]) -> list:
    """The noisy crop, each output, the clean crop."""
    from IPython.display import Markdown

    from dpllib.benchmark import image_grid

    size = reference["clean"].shape[-1]
    return [image_grid([reference["noisy"], *[o for _, o in outputs], reference["clean"]],
                       ["noisy", *[t for t, _ in outputs], "clean"], height=192),
            Markdown(f"The centre {size} x {size} pixels of the first test photo, with its fixed noise draw.")]


BENCHMARK = Benchmark(
    name=NAME, title="Denoising",
    description="Trains a small DnCNN-style residual denoiser on BSDS500 training crops with Gaussian noise, with "
                "the feature MSE at one extraction point (one model per point), and tests it on BSDS500 test crops "
                "with a fixed noise draw: PSNR (RGB) and SSIM (Y) of the 8-bit outputs. The baseline trains with "
                "pixel MSE. Not a use case of the study.",
    datasets=DATASETS, default_dataset="sigma25", budgets=BUDGETS, run=run,
    primary=Metric("psnr", ("test",), "PSNR (dB, RGB) on BSDS500 test crops"),
    output_key="denoised", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="the noisy input", baseline_label="pixel-MSE training", model=denoiser,
)
