"""A fifth benchmark that exists only in the tests: denoising a few BSDS500 crops at a tiny
budget. It shows what adding a use case takes: this one module and its registration (here
through ``$DPL_BENCHMARKS=tests.toy_denoising``, so that notebook kernels find it too)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dpllib.benchmark import BASELINE, Benchmark, DataSet, ImageCrops, Metric, Task, row, to_uint8, train_and_test

NAME = "denoising"
NOISY = "noisy input"
BUDGETS = {"smoke": {"steps": 6, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 1e-3, "images": 10,
                     "test_images": 2, "size": 64, "noise": 0.1, "eval_every": 0, "lockstep": True}}


class TinyDenoiser(nn.Module):
    """x + a correction (two 3x3 convs; the last starts at zero, so training starts at x)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(self.body[2].weight)
        nn.init.zeros_(self.body[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(F.mse_loss(a.clamp(0, 1), b).item())


def make_task(cfg, settings, device):
    s = settings
    clean = ImageCrops(cfg.dataset, "train", s["size"], cfg.data_root, limit=s["images"], seed=cfg.seed,
                       short_side=s["size"]).crops.float() / 255
    n_train = len(clean) - s["test_images"]
    train, test = clean[:n_train].to(device), clean[n_train:].to(device)
    test_noisy = (test + s["noise"] * torch.randn(test.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)

    def sample(order, generator):
        x = train[order().to(device)]
        return {"input": (x + s["noise"] * torch.randn(x.shape, generator=generator)).clamp(0, 1), "target": x}

    def test_fn(model, point, alias):
        model.eval()
        with torch.no_grad():
            out = model(test_noisy)
        return [row(point, alias, "psnr", psnr(out, test), "test")], {"denoised": to_uint8(out[0])}

    task = Task(new_model=TinyDenoiser, n_items=n_train, sample=sample, forward=lambda m, b: [m(b["input"])],
                pixel_loss=lambda o, b: F.mse_loss(o[0], b["target"]), test=test_fn, normalization="imagenet")
    fields = {"references": [{"method": NOISY, "metric": "psnr", "split": "test", "value": psnr(test_noisy, test)}],
              "examples": {"reference": {"noisy": to_uint8(test_noisy[0]), "clean": to_uint8(test[0])}}}
    return task, fields


def run(cfg, progress=True, checkpoint_dir=None):
    return train_and_test(cfg, make_task, progress, checkpoint_dir)


def learning_checks(table, references):
    from dpllib.benchmark import learning_check, per_seed, reference_value

    ok = table[(table["status"] == "ok") & (table["network"] == BASELINE) & (table["metric"] == "psnr")]
    noisy = reference_value(references, NOISY, "psnr", "test")
    return [learning_check(NAME, "pixel-MSE baseline beats the noisy input (PSNR)", noisy, per_seed(ok),
                           lambda v, r: v > r)]


def example_figures(reference, outputs):
    from dpllib.benchmark import image_grid

    return [image_grid([reference["noisy"], *[o for _, o in outputs], reference["clean"]],
                       ["noisy", *[t for t, _ in outputs], "clean"], height=96)]


BENCHMARK = Benchmark(
    name=NAME, title="Denoising (toy)", description="Removes Gaussian noise from BSDS500 crops (a test-only toy).",
    datasets=(DataSet("bsds500", "BSDS500", "stand-in", "real photos"),), default_dataset="bsds500",
    budgets=BUDGETS, run=run, primary=Metric("psnr", ("test",), "PSNR (dB) of the denoised test crops"),
    output_key="denoised", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="the noisy input",
)
