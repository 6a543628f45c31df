"""Road segmentation (Mosinska et al. 2018) with BCE + 0.01 x feature MSE.

U-Net (4 down / 4 up) with iterative refinement: the network sees the image and its previous
prediction (zeros at first); K=1 refinement in training (loss over both outputs), K=3 at test,
threshold 0.3. Masks enter the loss network as 3-channel images, ImageNet-normalised.
Metrics (pixel-wise, no tolerance) per test image, averaged: completeness, correctness, quality.
The baseline trains with BCE only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import MassRoads
from ..metrics import road_scores
from .common import (CellConfig, autocast, batches, loss_for, make_record, per_point, pick_device,
                     row, train_steps)

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


def run(cfg: CellConfig | dict, progress: bool = True, examples: dict | None = None) -> dict:
    """Train and test one model per point of the cell; returns the result record. When
    ``examples`` is a dict, it receives {alias: {image, mask, prediction}} (two test images)."""
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(cfg)

    def body() -> dict:
        s = cfg.settings()
        device = pick_device(cfg.device)
        train = MassRoads("train", cfg.data_root, size=s["size"], crop=s["crop"], seed=cfg.seed)
        # validation and test see whole (resized) images
        val = MassRoads("val", cfg.data_root, size=s["size"], crop=s["size"], seed=cfg.seed)
        test = MassRoads("test", cfg.data_root, size=s["size"], crop=s["size"], seed=cfg.seed)
        def train_point(point, alias, gen) -> dict:
            model = UNet(s["width"]).to(device)
            perceptual = None if point is None else loss_for(cfg, point, "imagenet", device, grayscale="rgb")
            opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
            index = batches(len(train), s["batch_size"], gen)
            best = {"quality": -np.inf, "state": None, "step": 0}
            val_curve = []

            def step(_i):
                model.train()
                img, mask = (torch.stack(t).to(device) for t in zip(*(train[j] for j in next(index).tolist())))
                with autocast(device):
                    outputs = refine(model, img, K_TRAIN)
                loss = 0.0
                for logits in outputs:
                    logits = logits.float()
                    loss = loss + F.binary_cross_entropy_with_logits(logits, mask)
                    if perceptual is not None:
                        loss = loss + PERCEPTUAL_WEIGHT * perceptual(torch.sigmoid(logits), mask)
                loss = loss / len(outputs)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                return loss.item()

            def validate(at_step):
                _, mask, prob = predict(model, val, device)
                quality = road_scores(prob > THRESHOLD, mask)["quality"].mean()
                val_curve.append([at_step, float(quality)])
                if quality > best["quality"]:
                    best.update(quality=quality, state={k: v.clone() for k, v in model.state_dict().items()},
                                step=at_step)

            steps = s["steps"] or s["epochs"] * max(1, len(train) // s["batch_size"])
            eval_every = s["eval_every"] if s["steps"] else s["eval_every"] * max(1, len(train) // s["batch_size"])
            curve, seconds = train_steps(step, steps, f"roads {cfg.network} {alias}", validate, eval_every, progress)
            model.load_state_dict(best["state"])
            img, mask, prob = predict(model, test, device)
            scores = road_scores(prob > THRESHOLD, mask)
            if examples is not None:
                examples[alias] = dict(image=img[:2], mask=mask[:2], prediction=(prob[:2] > THRESHOLD).float())
            return {"rows": [row(point, alias, metric, values.mean(), "test") for metric, values in scores.items()],
                    "loss_curve": curve, "val_curve": val_curve, "best_step": best["step"],
                    "seconds_per_step": seconds}

        out = per_point(cfg, train_point)
        subset = train.pairs[0][0].parent.name == "images"
        out["data"] = {"train": len(train), "val": len(val), "test": len(test),
                       "kind": "Massachusetts Roads" + (" (local subset, seeded split)" if subset else "")}
        return out

    return make_record(cfg, body)
