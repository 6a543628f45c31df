"""Super-resolution x4 (Johnson et al. 2016) trained with a single-point feature loss.

Loss: feature MSE at the chosen point only (no pixel term, no TV, as the study); the baseline
trains with pixel MSE. The checkpoint with the best validation PSNR is kept. Test: PSNR and SSIM
on the Y channel (outputs quantised to 8 bit, 4 border pixels cropped) on Set5, Set14 and
BSD100, at full resolution and/or resized as the authors' test script does (``test_sizes``);
bicubic and nearest-neighbour upscaling are recorded as references.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..benchmark import (BASELINE, Benchmark, CellConfig, Check, DataSet, Deviation, DplError, Metric, PerceptualLoss,
                         Study, Task, UnavailableError, datasets, metrics, row, to_uint8, train_and_test)

NAME = "super_resolution"
DATASETS = (DataSet("coco", "MS-COCO 2014", "study", "real photos, the study's 10k subset"),
            DataSet("bsds500", "BSDS500", "stand-in", "real photos, train + test; stand-in for MS-COCO"))
BORDER = 4

# Named budgets (see dpllib.benchmark.Benchmark.budgets): every setting the trainer reads.
BUDGETS = {
    "smoke": {"network_mode": "eval", "steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 1e-3,
              "hr_size": 96, "lr_pipeline": "aligned", "crop": 64, "train_limit": 16, "val_images": 4, "val_crop": 64,
              "eval_every": 10, "test_sets": ["set5"], "test_sizes": [None], "test_limit": 2, "channels": 16,
              "residual": True, "normalization": "none", "lockstep": True},
    "offline": {"network_mode": "eval", "steps": 60, "epochs": None, "warm_steps": 300, "batch_size": 4, "lr": 1e-4,
                "hr_size": 288, "lr_pipeline": "aligned", "crop": 64, "train_limit": 384, "val_images": 16,
                "val_crop": 96, "eval_every": 20, "test_sets": ["set5"], "test_sizes": [None], "test_limit": None,
                "channels": 32, "residual": True, "normalization": "none", "lockstep": True},
}

# The study's protocol (the authors' code; Study.budget): every setting the trainer reads.
PAPER_BUDGET = {"network_mode": "eval", "steps": 200_000, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 1e-3,
                "hr_size": 288, "lr_pipeline": "authors", "crop": None, "train_limit": 10_000, "val_images": 100,
                "val_crop": None, "eval_every": 2_500, "test_sets": ["set5", "set14", "bsd100"],
                "test_sizes": [None, 288], "test_limit": None, "channels": 64, "residual": False,
                "normalization": "none", "lockstep": True}

PROTOCOL = (
    Deviation(NAME, "network_mode", "-", "eval mode: the loss network is not a submodule of the trained generator "
              "(super_res/train.py, loss_networks.py FeatureExtractor calls eval())", "eval", "same"),
    Deviation(NAME, "steps", "200k iterations", "200k", 200_000, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation(NAME, "epochs", "-", "-", None, "unused (a step budget)"),
    Deviation(NAME, "warm_steps", "-", "-", 0, "same (none); offline: 300 pixel-MSE steps shared by all models of a seed, so 60 feature-loss steps start from a working model"),
    Deviation(NAME, "batch_size", "4", "4", 4, "same"),
    Deviation(NAME, "lr", "Adam 1e-3", "1e-3", 1e-3, "same; offline 1e-4 (fine-tuning)"),
    Deviation(NAME, "hr_size", "288 x 288 (resize + centre crop)", "img_transform(288)", 288, "same"),
    Deviation(NAME, "crop", "-", "-", None, "same (whole 288 px images); offline: random 64 px crops (CPU)"),
    Deviation(NAME, "train_limit", "10k MS-COCO 2014 images", "10k", 10_000, "same; offline: BSDS500 train+test (stand-in)"),
    Deviation(NAME, "val_images", "-", "100 images of MS-COCO val2014 (train.py)", 100,
              "differs: 100 held-out training images (MS-COCO train2014) pick the best checkpoint; offline 16 BSDS500 photos"),
    Deviation(NAME, "val_crop", "-", "-", None, "same (whole images); offline: centre 96 px crops"),
    Deviation(NAME, "eval_every", "keep best validation PSNR", "every epoch: 2,500 steps (10k images, batch 4; train.py)",
              2_500, "same (every 2,500 steps); offline every 20 of the 60 steps"),
    Deviation(NAME, "lr_pipeline", "Gaussian blur, bicubic x1/4",
              "LR: PIL Gaussian blur (radius 1) of the whole photo, antialiased bicubic resize of its short side to 72, "
              "centre crop; HR resized from the photo separately (main_utils.py Super_Resolution_Dataset, "
              "img_transform), so the two are off by up to a pixel or two and ~1% in scale", "authors",
              "same (datasets/sr.py training_pair, with PIL; full-resolution test LR: the blurred photo resized by "
              "1/4); offline 'aligned': the same blur and bicubic resize applied to the HR image itself. Measured on "
              "the offline baseline (seed 0, 300 + 60 steps): 26.70 dB on Set5 with the authors' pairs, 1.4 dB below "
              "bicubic (28.14), and 28.77 dB with aligned pairs; 360 CPU steps cannot learn around the misalignment"),
    Deviation(NAME, "test_sets", "Set5, Set14, BSD100", "Set5, Set14, BSD100", ["set5", "set14", "bsd100"],
              "same; offline: Set5 only (full-resolution Set14 costs ~7 s per model on this CPU)"),
    Deviation(NAME, "test_sizes", "-", "test images resized to 288 (super_res/test.py)", [None, 288],
              "both reported: full resolution (the field's standard, split 'set5') and the authors' 288 px ('set5@288')"),
    Deviation(NAME, "test_limit", "-", "-", None, "same (all test images)"),
    Deviation(NAME, "channels", "Johnson et al. x4 network", "64 channels (super_res/network.py)", 64, "same; offline 32 (CPU)"),
    Deviation(NAME, "residual", "-", "last conv -> BatchNorm(3) -> tanh (super_res/network.py ConvLayer)", False,
              "same (401,865 parameters at 64 channels); offline: bicubic + a zero-initialised correction without the "
              "batch norm, so short trainings start at bicubic quality"),
    Deviation(NAME, "parameters", "-", "401,865 (Transform_Network_Super_x4, network.py)", None,
              "same; offline: 32 channels and no output batch norm (rows 'channels', 'residual')"),
    Deviation(NAME, "normalization", "no ImageNet normalisation", "normalize_in=False", "none", "same"),
    Deviation(NAME, "lockstep", "-", "-", True, "how the 4 points train (same numbers either way): together on shared batches"),
    Deviation(NAME, "upsampling", "-", "nearest x2 + 3x3 conv, reflection padding (network.py)", None, "same"),
    Deviation(NAME, "metrics", "PSNR and SSIM", "Y-PSNR with torchmetrics (no border crop, data range of the target); "
              "PSNR / SSIM with scikit-image on the saved PNGs' Y (2 px crop, 7 x 7 uniform window) (super_res/test.py)",
              None, "both reported: the field's standard (Y of BT.601, 4 px crop, Gaussian-window SSIM: 'psnr', 'ssim') and "
              "the authors' three, labelled ('psnr_authors_y', 'psnr_authors_png', 'ssim_authors_png')"),
    Deviation(NAME, "precision", "-", "fp32", None, "fp32 evaluation, 8-bit quantised outputs before PSNR/SSIM; bf16 autocast only for CUDA training"),
)


def _conv(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    """A convolution with reflection padding (the authors' ConvLayer)."""
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel)]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(),
                                  *_conv(channels, channels, 3), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformNetSR(nn.Module):
    """Johnson et al.'s x4 super-resolution network as the authors build it: 9x9 conv, 4 residual
    blocks, two x2 nearest-neighbour upsamplings each followed by a 3x3 conv, a 9x9 conv;
    reflection padding, batch norm. Input/output in [0, 1] (N x 3 x h x w -> N x 3 x 4h x 4w).

    ``residual=False``: the last conv has batch norm too and the output is (tanh + 1) / 2 (the
    authors': 401,865 parameters at 64 channels). ``residual=True``: the output is the bicubic
    upscale plus a correction whose last conv (no batch norm, whose running statistics would
    shift bicubic at test) starts at zero, so an untrained model already equals bicubic
    upscaling (for short CPU trainings).
    """

    def __init__(self, channels: int = 64, blocks: int = 4, residual: bool = False):
        super().__init__()
        layers = [*_conv(3, channels, 9), nn.BatchNorm2d(channels), nn.ReLU()]
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(2):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv(channels, channels, 3),
                       nn.BatchNorm2d(channels), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(*_conv(channels, 3, 9), *([] if residual else [nn.BatchNorm2d(3)]))
        self.residual = residual
        if residual:
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(lr))
        return datasets.upscale_bicubic(lr, clamp=False) + out if self.residual else (torch.tanh(out) + 1) / 2


def generator(settings: dict, dataset: str | None = None) -> TransformNetSR:
    """The network a budget's settings train (``channels``, ``residual``); any data set."""
    return TransformNetSR(settings["channels"], residual=settings["residual"])


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] rounded to 8 bit, as a saved output would be."""
    return (images.clamp(0, 1) * 255).round() / 255


def lpips_metric(device: torch.device) -> tuple[nn.Module | None, str]:
    """LPIPS (alex, lin) on [0, 1] images, or None and why when its AlexNet ImageNet weights
    cannot be had (offline, not cached)."""
    try:
        return PerceptualLoss.lpips("alex", input_range=(0, 1), reduction="none").to(device), "LPIPS alex v0.1"
    except UnavailableError as err:
        return None, f"LPIPS not computed: {str(err).split('.')[0]}"


def score(upscale, pairs: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
          lpips_fn: nn.Module | None = None) -> dict[str, float]:
    """Mean PSNR and SSIM (Y, border 4, 8-bit outputs) of ``upscale(lr) -> sr`` over ``pairs``,
    the authors' three measures (:func:`~dpllib.metrics.authors_sr_scores`), and LPIPS (lower is
    closer) when ``lpips_fn`` is given."""
    out: dict[str, list[float]] = {"psnr": [], "ssim": []}
    with torch.no_grad():
        for lr, hr in pairs:
            lr, hr = lr[None].to(device), hr[None].to(device)
            raw = upscale(lr).float().clamp(0, 1)
            sr = quantize(raw)
            out["psnr"].append(metrics.psnr_y(sr, hr, BORDER).item())
            out["ssim"].append(float(metrics.ssim_y(sr, hr, BORDER)[0]))
            for metric, value in metrics.authors_sr_scores(raw, hr).items():
                out.setdefault(metric, []).append(value)
            if lpips_fn is not None:
                out.setdefault("lpips", []).append(lpips_fn(sr, hr).item())
    return {k: float(np.mean(v)) for k, v in out.items()}


def split_name(name: str, size: int | None) -> str:
    return name if size is None else f"{name}@{size}"


REFERENCES = {"bicubic": datasets.upscale_bicubic,
              "nearest": lambda lr: F.interpolate(lr, scale_factor=4, mode="nearest")}


def make_task(cfg: CellConfig, settings: dict, device: torch.device) -> tuple[Task, dict]:
    s = settings
    train = datasets.SRTrainSet(cfg.dataset, cfg.data_root, limit=s["train_limit"] + s["val_images"], seed=cfg.seed,
                       hr_size=s["hr_size"], pipeline=s["lr_pipeline"])
    n_train = len(train) - s["val_images"]
    if n_train < 1:
        raise DplError(f"only {len(train)} training images for {s['val_images']} validation images")
    lr_all, hr_all = train.lr.to(device), train.hr.to(device)  # uint8, resident on the device
    crop = s.get("crop") or s["hr_size"]
    val_lr, val_hr = lr_all[n_train:].float() / 255, hr_all[n_train:].float() / 255
    if s.get("val_crop"):
        val_lr, val_hr = datasets.centre_crop_pair(val_lr, val_hr, s["val_crop"])
    tests = {name: datasets.SRTestSet(name, cfg.data_root) for name in s["test_sets"]}
    pairs = {split_name(n, size): t.pairs(size, s["test_limit"]) for n, t in tests.items() for size in s["test_sizes"]}
    lpips_fn, lpips_note = lpips_metric(device)

    def sample(order, generator: torch.Generator) -> dict:
        idx = order().to(device)
        lr, hr = lr_all[idx].float() / 255, hr_all[idx].float() / 255
        if crop < s["hr_size"]:  # a random crop of HR and the LR pixels under it (4-pixel aligned)
            corners = torch.randint(0, (s["hr_size"] - crop) // datasets.SCALE + 1, (2,), generator=generator) * datasets.SCALE
            top, left = corners.tolist()
            lr, hr = datasets.crop_pair(lr, hr, top, left, crop)
        return {"input": lr, "target": hr}

    def validate(model: nn.Module, _loss=None) -> float:
        model.eval()
        with torch.no_grad():
            return metrics.psnr_y(model(val_lr).float(), val_hr, BORDER).mean().item()

    def test(model: nn.Module, point: str | None, alias: str) -> tuple[list[dict], dict]:
        model.eval()
        rows = [row(point, alias, metric, value, split)
                for split, ps in pairs.items() for metric, value in score(model, ps, device, lpips_fn).items()]
        lr, hr = example_pair(tests)
        with torch.no_grad():
            sr = model(lr[None].to(device)).float().cpu()[0]
        return rows, {"sr": to_uint8(sr)}

    references = [{"method": method, "metric": metric, "split": split, "value": value}
                  for method, upscale in REFERENCES.items() for split, ps in pairs.items()
                  for metric, value in score(upscale, ps, device).items()]
    lr, hr = example_pair(tests)
    task = Task(new_model=lambda: generator(s), n_items=n_train,
                sample=sample, forward=lambda model, b: [model(b["input"])],
                pixel_loss=lambda outputs, b: F.mse_loss(outputs[0], b["target"]), test=test, validate=validate,
                normalization=s["normalization"])
    fields = {"references": references,
              "examples": {"reference": {"lr": to_uint8(lr), "bicubic": to_uint8(datasets.upscale_bicubic(lr[None])[0]),
                                         "nearest": to_uint8(REFERENCES["nearest"](lr[None])[0]),
                                         "hr": to_uint8(hr)}},
              "data": {"train_images": n_train, "val_images": s["val_images"],
                       "train_source": next(d.label for d in DATASETS if d.name == cfg.dataset),
                       "test_sets": {split: len(ps) for split, ps in pairs.items()},
                       "metrics_note": f"PSNR/SSIM on Y (BT.601) of 8-bit outputs, 4-pixel border cropped; {lpips_note}"}}
    return task, fields


EXAMPLE_CROP = 128  # HR pixels of the example region


def example_pair(tests: dict[str, datasets.SRTestSet]) -> tuple[torch.Tensor, torch.Tensor]:
    """The example region shown in figures: the centre 128 x 128 HR pixels of the first image
    of the first test set (Set5's baby), and the LR pixels under them."""
    lr, hr = next(iter(tests.values()))[0]
    return datasets.centre_crop_pair(lr, hr, EXAMPLE_CROP)


def run(cfg: CellConfig | dict, progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """Train and test one model per point of the cell (resuming from ``checkpoint_dir``);
    returns the result record and the examples ({alias: {sr}}, the example region)."""
    return train_and_test(cfg, make_task, progress, checkpoint_dir)


# --------------------------------------------------------------------------- what the book shows


def learning_checks(table, references) -> list[Check]:
    """The pixel-MSE control reaches bicubic - 0.5 dB on Set5; every perceptual model beats
    nearest-neighbour upscaling on Set5 in every seed."""
    from ..benchmark import every_model_beats, learning_check, per_seed, reference_value

    ok = table[table["status"] == "ok"]
    base = ok["network"] == BASELINE
    psnr5 = (ok["metric"] == "psnr") & (ok["split"] == "set5")
    bicubic = reference_value(references, "bicubic", "psnr", "set5")
    nearest = reference_value(references, "nearest", "psnr", "set5")
    return [learning_check(NAME, "pixel-MSE baseline PSNR on Set5 >= bicubic - 0.5 dB", bicubic - 0.5,
                           per_seed(ok[psnr5 & base])),
            *every_model_beats(NAME, "every perceptual model beats nearest-neighbour on Set5 (every seed)", nearest,
                               ok[psnr5 & ~base],
                               why="a perceptual loss has no pixel term, so nothing in the training holds PSNR up; the "
                                   "models and seeds that miss are named, and the learning curves show how they "
                                   "trained")]


def example_figures(reference: dict, outputs: list[tuple[str, torch.Tensor]]) -> list:
    """LR (shown x4 nearest), bicubic, each output, HR: the example region."""
    from IPython.display import Markdown

    from ..benchmark import image_grid

    lr_big = F.interpolate(reference["lr"][None].float(), scale_factor=4, mode="nearest")[0].byte()
    return [image_grid([lr_big, reference["bicubic"], *[o for _, o in outputs], reference["hr"]],
                       ["LR (x4 nearest)", "bicubic", *[t for t, _ in outputs], "HR"], height=192),
            Markdown(f"The centre {EXAMPLE_CROP} x {EXAMPLE_CROP} pixels of the first test image, x4.")]


BENCHMARK = Benchmark(
    name=NAME, title="Super-resolution x4",
    description="Trains Johnson et al.'s x4 super-resolution network with the feature MSE at one extraction point "
                "(one model per point; no pixel term, as the study), keeps the checkpoint with the best validation "
                "PSNR, and tests on Set5, Set14 and BSD100: PSNR and SSIM on the Y channel with a 4-pixel border "
                "cropped. The baseline trains with pixel MSE.",
    datasets=DATASETS,
    default_dataset="bsds500",
    budgets=BUDGETS,
    run=run, primary=Metric("psnr", ("set5", "set14", "bsd100"),
                            "PSNR (dB, Y) at full resolution, mean of the test sets run"),
    output_key="sr", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="bicubic and nearest-neighbour upscaling",
    baseline_label="pixel-MSE training", model=generator,
    study=Study(budget=PAPER_BUDGET, authors_script="super_res/train.py", protocol=PROTOCOL,
                step_cost_overrides={"train_limit": 8, "val_images": 1, "test_limit": 1, "test_sets": ["set5"],
                                     "test_sizes": [None], "eval_every": 10_000}),
)
