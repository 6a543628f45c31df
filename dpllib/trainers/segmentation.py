"""Road segmentation (Mosinska et al. 2018) with BCE + 0.01 x feature MSE.

U-Net (4 down / 4 up) with iterative refinement: the network sees the image and its previous
prediction (zeros at first); K=1 refinement in training (loss over both outputs), K=3 at test,
threshold 0.3. Masks enter the loss network as 3-channel images, ImageNet-normalised.
Metrics (pixel-wise, no tolerance) per test image, averaged: completeness, correctness, quality.
The baseline trains with BCE only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import MassRoads
from ..config import CellConfig, evaluation_interval, training_steps
from ..metrics import road_scores
from ..results import row
from .common import autocast, batches, loss_for, run_cell
from .loop import Trainee, fit

PERCEPTUAL_WEIGHT = 0.01
K_TRAIN, K_TEST, THRESHOLD = 1, 3, 0.3


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net with 4 down and 4 up steps; input image (3) + previous prediction (1), output logits."""

    def __init__(self, width: int = 64, in_channels: int = 4):
        super().__init__()
        chs = [width * 2**i for i in range(5)]
        self.down = nn.ModuleList([_double_conv(in_channels, chs[0])] +
                                  [_double_conv(chs[i], chs[i + 1]) for i in range(4)])
        self.up = nn.ModuleList(nn.ConvTranspose2d(chs[i + 1], chs[i], 2, stride=2) for i in reversed(range(4)))
        self.merge = nn.ModuleList(_double_conv(2 * chs[i], chs[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(chs[0], 1, 1)

    def forward(self, image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, previous], dim=1)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def refine(model: nn.Module, image: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Logits of the first pass and of ``k`` refinement passes."""
    previous = torch.zeros_like(image[:, :1])
    outputs = []
    for _ in range(k + 1):
        logits = model(image, previous)
        outputs.append(logits)
        previous = torch.sigmoid(logits)
    return outputs


def predict(model: nn.Module, data, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, masks, road probabilities after K_TEST refinements) for a whole data set."""
    model.eval()
    img, mask = (torch.stack(t) for t in zip(*(data[j] for j in range(len(data)))))
    probs = []
    with torch.no_grad():
        for b in range(0, len(img), 4):
            with autocast(device):
                probs.append(torch.sigmoid(refine(model, img[b:b + 4].to(device), K_TEST)[-1].float()).cpu())
    return img, mask, torch.cat(probs)


@dataclass
class RoadData:
    train: MassRoads
    val: MassRoads
    test: MassRoads


def load_data(cfg: CellConfig, settings: dict, device: torch.device | None = None) -> RoadData:
    """Training crops; validation and test see whole (resized) images."""
    size = settings["size"]
    return RoadData(MassRoads("train", cfg.data_root, size=size, crop=settings["crop"], seed=cfg.seed),
                    MassRoads("val", cfg.data_root, size=size, crop=size, seed=cfg.seed),
                    MassRoads("test", cfg.data_root, size=size, crop=size, seed=cfg.seed))


def segmentation_loss(model: nn.Module, image: torch.Tensor, mask: torch.Tensor, perceptual: nn.Module | None,
                      device: torch.device) -> torch.Tensor:
    """BCE (+ PERCEPTUAL_WEIGHT x feature MSE of the road probabilities against the mask), averaged
    over the first pass and the K_TRAIN refinements."""
    with autocast(device):
        outputs = refine(model, image, K_TRAIN)
    loss = 0.0
    for logits in outputs:
        logits = logits.float()
        loss = loss + F.binary_cross_entropy_with_logits(logits, mask)
        if perceptual is not None:
            loss = loss + PERCEPTUAL_WEIGHT * perceptual(torch.sigmoid(logits), mask)
    return loss / len(outputs)


def train_point(cfg: CellConfig, settings: dict, data: RoadData, point: str | None, alias: str,
                generator: torch.Generator, device: torch.device, progress: bool = True) -> dict:
    """Train one U-Net with BCE (+ the feature loss at ``point``), keep the best validation-quality
    checkpoint, test it. Returns rows, curves and examples (two test images)."""
    model = UNet(settings["width"]).to(device)
    perceptual = None if point is None else loss_for(cfg, point, "imagenet", device, grayscale="rgb")
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    index = batches(len(data.train), settings["batch_size"], generator)

    def batch_at(_i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(torch.stack(t).to(device) for t in zip(*(data.train[j] for j in next(index).tolist())))

    def train_step(batch) -> float:
        model.train()
        loss = segmentation_loss(model, *batch, perceptual, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    def validate() -> float:
        _, mask, prob = predict(model, data.val, device)
        return float(road_scores(prob > THRESHOLD, mask)["quality"].mean())

    n = len(data.train)
    report = fit([Trainee(alias, model, optimizer, train_step, validate)], batch_at, training_steps(settings, n),
                 f"roads {cfg.network} {alias}", evaluation_interval(settings, n), progress)[alias]
    img, mask, prob = predict(model, data.test, device)
    scores = road_scores(prob > THRESHOLD, mask)
    examples = dict(image=img[:2], mask=mask[:2], prediction=(prob[:2] > THRESHOLD).float())
    return {"rows": [row(point, alias, metric, values.mean(), "test") for metric, values in scores.items()],
            **report, "examples": examples}


def describe_data(cfg: CellConfig, data: RoadData) -> dict:
    subset = data.train.pairs[0][0].parent.name == "images"
    return {"train": len(data.train), "val": len(data.val), "test": len(data.test),
            "kind": "Massachusetts Roads" + (" (local subset, seeded split)" if subset else "")}


def run(cfg: CellConfig | dict, progress: bool = True) -> tuple[dict, dict]:
    """Train and test one model per point of the cell; returns the result record and the
    examples {alias: {image, mask, prediction}} (two test images)."""
    return run_cell(cfg, load_data, train_point, describe_data, progress)
