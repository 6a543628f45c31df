"""Road segmentation (Mosinska et al. 2018) with BCE + 0.01 x feature MSE.

The authors' small U-Net with iterative refinement: the network sees the image and its previous
road probabilities (zeros at first); ``k_train`` passes in training (the authors' K=1: one
pass), ``k_test`` = 3 and threshold 0.3 at test. The road probabilities enter the loss network as
3-channel images. Scores at the masks' original resolution (predictions upsampled):
completeness, correctness and quality, pixel-exact and relaxed (3-px buffer), averaged over test
images. The baseline trains with BCE only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..benchmark import (BASELINE, Benchmark, CellConfig, Check, DataSet, Deviation, Metric, ReferenceFigure, Study,
                         Task, datasets, metrics, row, to_uint8, train_and_test)

NAME = "segmentation"
DATASETS = (DataSet("mass_roads", "Massachusetts Roads", "study", "real aerial photos and road maps"),)
# Named budgets (see dpllib.benchmark.Benchmark.budgets): every setting the trainer reads.
BUDGETS = {
    "smoke": {"network_mode": "train", "steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 4, "lr": 2e-3,
              "size": 224, "train_size": 224, "crop": 64, "flips": "horizontal", "eval_every": 10, "pos_weight": 5.0,
              "mask_no_data": True, "k_train": 1, "k_test": 3, "select_by": "quality", "lockstep": True},
    "offline": {"network_mode": "train", "steps": 60, "epochs": None, "warm_steps": 3000, "batch_size": 8, "lr": 1e-3,
                "size": 750, "train_size": 750, "crop": 128, "flips": "horizontal", "eval_every": 10,
                "pos_weight": 4.0, "mask_no_data": True, "k_train": 1, "k_test": 3, "select_by": "quality",
                "lockstep": True},
}

# The study's protocol (the authors' code; Study.budget): every setting the trainer reads.
PAPER_BUDGET = {"network_mode": "train", "steps": None, "epochs": 100, "warm_steps": 0, "batch_size": 8, "lr": 1e-3,
                "size": 224, "train_size": None, "crop": 224, "flips": "horizontal", "eval_every": 1, "pos_weight": 1.0,
                "mask_no_data": False, "k_train": 1, "k_test": 3, "select_by": "bce", "lockstep": True}

PROTOCOL = (
    Deviation(NAME, "epochs", "100 epochs", "100", 100, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation(NAME, "steps", "-", "-", None, "unused (an epoch budget)"),
    Deviation(NAME, "warm_steps", "-", "-", 0, "same (none); offline: 3,000 BCE steps shared by all models of a seed (validated before fine-tuning: split 'warm_start')"),
    Deviation(NAME, "batch_size", "8", "8", 8, "same"),
    Deviation(NAME, "lr", "Adam 1e-3", "1e-3", 1e-3, "same"),
    Deviation(NAME, "size", "short side resized to 224", "validation and test images resized to 224 (topology_aware_delineation/main.py, test.py)",
              224, "same (validation and test; training: row 'train_size'); offline 750 (roads stay 3-4 px wide)"),
    Deviation(NAME, "crop", "random 224 crops with flips", "random 224 crops of the full-resolution tiles (main.py)", 224,
              "same; offline: 128 px crops of 750 px tiles"),
    Deviation(NAME, "flips", "with flips", "horizontal flips only (main.py)", "horizontal", "same (offline too)"),
    Deviation(NAME, "train_size", "short side resized to 224", "training crops of the full-resolution (1500 px) tiles (main.py)",
              None, "same (None: full resolution); offline 750, the test's scale (the 60 fine-tuning steps learn "
              "at the scale they are tested at)"),
    Deviation(NAME, "training masks", "-", "binary masks at full resolution, cropped with the image (main.py)", None,
              "same (train_size None); offline: masks resized with the image to 750 px (bilinear), thresholded at 0.5"),
    Deviation(NAME, "network_mode", "-", "training mode: topology_net_model.train() reaches the loss network "
              "(topology_aware_delineation/main.py): batch statistics, dropout", "train", "same (offline too); weights frozen"),
    Deviation(NAME, "eval_every", "-", "every epoch", 1, "same; offline every 10 of the 60 steps"),
    Deviation(NAME, "pos_weight", "BCE", "BCE", 1.0, "same; offline 4 (roads are ~3% of the imaged pixels; short trainings otherwise predict no road)"),
    Deviation(NAME, "mask_no_data", "-", "all pixels", False,
              "same; offline: the white no-data areas (where maps show roads no image shows) are left out of loss and scores, 'test_all_pixels' keeps them"),
    Deviation(NAME, "k_train", "K=1 in training", "--K 1: one pass (Topology_Aware_Delineation_Net)", 1, "same"),
    Deviation(NAME, "k_test", "K=3 at test", "K=3", 3, "same"),
    Deviation(NAME, "select_by", "-", "lowest validation BCE of one pass (K = 1) on 224 px inputs (main.py)", "bce",
              "differs: BCE of the last of K = 3 passes against the masks at their original 1500 px; offline: "
              "validation quality"),
    Deviation(NAME, "lockstep", "-", "-", True, "how the 4 points train (same numbers either way)"),
    Deviation(NAME, "U-Net", "U-Net, 4 down / 4 up", "4x4 stride-2 convs, widths 8-16-32-32 from 4 input channels, BN (train.py)",
              None, "same widths, kernels and normalisation; activations after the normalisation (the authors' code applies them first and swaps LeakyReLU and ReLU)"),
    Deviation(NAME, "parameters", "-", "64,546 (Topology_Aware_Delineation_Net, train.py)", None, "same"),
    Deviation(NAME, "metrics", "pixel-wise completeness, correctness, quality",
              "pixel-exact at 224 px (images and masks resized), threshold 0.3, per image; the loop over the K passes "
              "adds every earlier pass's scores again (test.py)", None,
              "differs: pixel-exact at the masks' original 1500 px (predictions upsampled), threshold 0.3, and relaxed "
              "with a 3-px buffer, the field's standard (Wiedemann et al. 1998; Mnih 2013; split 'test_relaxed'); the "
              "authors' 224 px scores, with their accumulation over passes, are not computed"),
    Deviation(NAME, "data split", "1108 / 14 / 49", "official split; tests on 'val'", None,
              "official train / valid / test; offline: the 24-image subset split 16 / 4 / 4 (seeded)"),
)

PERCEPTUAL_WEIGHT = 0.01
THRESHOLD = 0.3
RELAXED_BUFFER = 3  # pixels at the original resolution (Mnih 2013)


class UNet(nn.Module):
    """The authors' U-Net: 4 down steps (4x4 stride-2 convolutions, batch norm, LeakyReLU 0.2)
    with widths doubling from the input's channel count (image + previous prediction: 4 -> 8,
    16, 32, 32), 4 up steps (4x4 stride-2 transposed convolutions, batch norm, ReLU) with skip
    connections; returns logits (the authors apply the sigmoid inside). H and W must be
    multiples of 16."""

    def __init__(self, in_channels: int = 4):
        super().__init__()
        c = in_channels
        widths = [c * 2, c * 4, c * 8, c * 8]

        def down(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2))

        def up(a, b):
            return nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

        self.down = nn.ModuleList(down(a, b) for a, b in zip([c] + widths[:-1], widths))
        self.up = nn.ModuleList([up(widths[3], widths[2]), up(2 * widths[2], widths[1]), up(2 * widths[1], widths[0])])
        self.head = nn.Sequential(nn.ConvTranspose2d(2 * widths[0], 1, 4, 2, 1, bias=False), nn.BatchNorm2d(1))

    def forward(self, image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, previous], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for block, skip in zip(self.up[1:], (skips[2], skips[1])):
            x = block(torch.cat([x, skip], dim=1))
        return self.head(torch.cat([x, skips[0]], dim=1))


def refine(model: nn.Module, image: torch.Tensor, passes: int) -> list[torch.Tensor]:
    """Logits of ``passes`` passes, each fed the previous pass's road probabilities."""
    previous = torch.zeros_like(image[:, :1])
    outputs = []
    for _ in range(passes):
        logits = model(image, previous)
        outputs.append(logits)
        previous = torch.sigmoid(logits)
    return outputs


def pad16(images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Images reflect-padded to multiples of 16 (the U-Net's stride), and the original size."""
    h, w = images.shape[-2:]
    return F.pad(images, (0, -w % 16, 0, -h % 16), mode="reflect"), (h, w)


def probabilities(model: nn.Module, data: datasets.MassRoads, passes: int, device: torch.device) -> torch.Tensor:
    """Road probabilities after ``passes`` passes for every image of ``data``, at the masks'
    original resolution (bilinear upsampling), on the CPU."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(data)):
            image, size = pad16(data.images[i:i + 1].to(device).float() / 255)
            prob = torch.sigmoid(refine(model, image, passes)[-1].float())[..., :size[0], :size[1]]
            out.append(F.interpolate(prob, size=data.full_masks.shape[-2:], mode="bilinear", align_corners=False).cpu())
    return torch.cat(out)


def scores(prob: torch.Tensor, data: datasets.MassRoads, mask_no_data: bool,
           pixel_exact_only: bool = False) -> dict[str, dict[str, float]]:
    """{split: {metric: mean over images}}: "test" pixel-exact (imaged pixels only when
    ``mask_no_data``), and unless ``pixel_exact_only`` (validation: the others cost twice as
    much) "test_relaxed" with the 3-pixel buffer and "test_all_pixels" (no-data areas counted,
    as the authors' code does) when ``mask_no_data``."""
    pred = prob > THRESHOLD
    valid = data.full_imaged if mask_no_data else None
    splits = {"test": metrics.road_scores(pred, data.full_masks, valid)}
    if not pixel_exact_only:
        splits["test_relaxed"] = metrics.road_scores(pred, data.full_masks, valid, RELAXED_BUFFER)
    if mask_no_data and not pixel_exact_only:
        splits["test_all_pixels"] = metrics.road_scores(pred, data.full_masks)
    return {split: {k: float(v.mean()) for k, v in s.items()} for split, s in splits.items()}


def make_task(cfg: CellConfig, settings: dict, device: torch.device) -> tuple[Task, dict]:
    s = settings
    train = datasets.MassRoads("train", cfg.data_root, size=s["train_size"], seed=cfg.seed)
    val, test_set = (datasets.MassRoads(split, cfg.data_root, size=s["size"], seed=cfg.seed) for split in ("val", "test"))
    pos_weight = torch.tensor(float(s["pos_weight"]), device=device)
    train.images, train.masks = train.images.to(device), train.masks.to(device)  # resident: crops on the device

    def sample(order, generator) -> dict:
        image, mask = train.crops(order(), s["crop"], generator, device, s["flips"])
        valid = datasets.imaged(image).float() if s["mask_no_data"] else torch.ones_like(mask)
        # the loss network sees no roads where no image is (both sides masked alike)
        return {"image": image, "mask": mask, "valid": valid, "target": mask * valid}

    def pixel_loss(outputs: list[torch.Tensor], batch: dict) -> torch.Tensor:
        """BCE over the imaged pixels of each pass, pass i weighted i + 1 (the authors')."""
        total = 0.0
        for i, logits in enumerate(outputs):
            bce = F.binary_cross_entropy_with_logits(logits, batch["mask"], pos_weight=pos_weight, reduction="none")
            total = total + (i + 1) * (bce * batch["valid"]).sum() / batch["valid"].sum().clamp_min(1)
        return total / (len(outputs) * (len(outputs) + 1) / 2)

    def validate(model: nn.Module, _loss=None) -> float:
        prob = probabilities(model, val, s["k_test"], device)
        if s["select_by"] == "bce":  # the authors': the lowest validation BCE of the last pass
            return -F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), val.full_masks.float()).item()
        return scores(prob, val, s["mask_no_data"], pixel_exact_only=True)["test"]["quality"]

    def test(model: nn.Module, point: str | None, alias: str) -> tuple[list[dict], dict]:
        prob = probabilities(model, test_set, s["k_test"], device)
        rows = [row(point, alias, metric, value, split)
                for split, values in scores(prob, test_set, s["mask_no_data"]).items() for metric, value in values.items()]
        return rows, {"prediction": example_region(prob[:1] > THRESHOLD, test_set)}

    all_road = scores(torch.ones_like(test_set.full_masks, dtype=torch.float), test_set, s["mask_no_data"])
    reference = {"image": example_region(test_set.images[:1].float() / 255, test_set),
                 "mask": example_region(test_set.full_masks[:1].float(), test_set),
                 "imaged": example_region(test_set.full_imaged[:1].float(), test_set)}
    task = Task(new_model=UNet, n_items=len(train), sample=sample,
                forward=lambda model, b: refine(model, b["image"], s["k_train"]), pixel_loss=pixel_loss,
                test=test, validate=validate, loss_images=lambda logits, b: torch.sigmoid(logits) * b["valid"],
                normalization="imagenet",
                pixel_weight=1.0, feature_weight=PERCEPTUAL_WEIGHT)
    fields = {"references": [{"method": "all road", "metric": metric, "split": split, "value": value}
                             for split, values in all_road.items() for metric, value in values.items()],
              "examples": {"reference": reference},
              "data": {"train": len(train), "val": len(val), "test": len(test_set), "size": s["size"],
                       "imaged_fraction_test": float(test_set.full_imaged.float().mean()),
                       "road_pixels_imaged_test": float((test_set.full_masks & test_set.full_imaged).sum()
                                                        / test_set.full_masks.sum().clamp_min(1)),
                       "kind": "Massachusetts Roads" + (" (local subset, seeded split)"
                                                        if train.pairs[0][0].parent.name == "images" else "")}}
    return task, fields


EXAMPLE_SIZE = 384  # pixels of the example region at the original resolution


def example_window(data: datasets.MassRoads) -> tuple[int, int]:
    """(top, left) of the 384 x 384 region of the first test image with the most road pixels
    inside the imaged area (the example shown in figures)."""
    seen = (data.full_masks[0, 0] & data.full_imaged[0, 0]).float()[None, None]
    counts = F.avg_pool2d(seen, EXAMPLE_SIZE, stride=EXAMPLE_SIZE // 4)[0, 0]
    row, col = divmod(int(counts.argmax()), counts.shape[1])
    return row * (EXAMPLE_SIZE // 4), col * (EXAMPLE_SIZE // 4)


def example_region(images: torch.Tensor, data: datasets.MassRoads) -> torch.Tensor:
    """The example region (:func:`example_window`) of the first test image, from an image of the
    working or the original resolution, as uint8."""
    full = data.full_masks.shape[-2:]
    if images.shape[-2:] != full:
        images = F.interpolate(images.float(), size=full, mode="bilinear", align_corners=False)
    top, left = example_window(data)
    return to_uint8(images[0, :, top:top + EXAMPLE_SIZE, left:left + EXAMPLE_SIZE].float())


def run(cfg: CellConfig | dict, progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """Train and test one model per point of the cell (resuming from ``checkpoint_dir``);
    returns the result record and the examples ({alias: {prediction}}, the example region)."""
    return train_and_test(cfg, make_task, progress, checkpoint_dir)


# --------------------------------------------------------------------------- what the book shows

WHY_BASELINE_MISSES = ("the 24-image subset leaves 16 training tiles, most of them partly outside the imaged area; "
                       "scores are pixel-exact at the masks' 1500 px from predictions at 750 px (the relaxed 3-px "
                       "scores are under 'Other measures')")


def learning_checks(table, references) -> list[Check]:
    """The BCE-only control reaches quality 0.15 and completeness and correctness 0.3 and (when
    warm-started) does not get worse while it fine-tunes: its mean validation quality over the
    fine-tuning is at most 2 SDs of those validations below the warm start's (a single
    validation: the quality moves by about 0.01-0.02 between validations 10 steps apart). On
    unchanged i.i.d. validations it fails in ~12% of 2-seed runs; a fall of 3 SDs in ~96%
    (tests/test_statistics.py)."""
    from ..benchmark import learning_check, per_seed

    ok = table[(table["status"] == "ok") & (table["network"] == BASELINE)]
    test = ok[ok["split"] == "test"]
    checks = [learning_check(NAME, f"BCE baseline {metric} >= {required}", required,
                             per_seed(test[test["metric"] == metric]), why=WHY_BASELINE_MISSES)
              for metric, required in (("quality", 0.15), ("completeness", 0.3), ("correctness", 0.3))]
    validation = ok[ok["metric"] == "validation"].pivot_table(index="seed", columns="split", values="value")
    if {"warm_start", "fine_tuning_mean", "fine_tuning_sd"} <= set(validation.columns):
        # one warm-start validation against the mean of the fine-tuning's: in units of how much
        # the validation quality moves between validations (its SD while fine-tuning)
        change = (validation["fine_tuning_mean"] - validation["warm_start"]) / validation["fine_tuning_sd"]
        checks.append(learning_check(
            NAME, "BCE baseline: (mean validation quality while fine-tuning - the warm start's) / its SD across "
                  "the fine-tuning's validations >= -2 (fine-tuning does not make it worse beyond the validation's "
                  "own fluctuation)", -2.0, change))
    return checks


def overlay(image: torch.Tensor, mask: torch.Tensor, prediction: torch.Tensor,
            imaged: torch.Tensor | None = None) -> torch.Tensor:
    """An aerial image (3 x H x W uint8) with true roads the prediction found in green, missed
    ones in blue and wrongly predicted ones in red; outside ``imaged`` (the no-data areas, left
    out of the scores) nothing is coloured."""
    out = image.clone()
    m, p = mask[0] > 127, prediction[0] > 127
    inside = imaged[0] > 127 if imaged is not None else m.new_ones(m.shape)
    m, p = m & inside, p & inside
    for colour, where in (((0, 200, 0), m & p), ((40, 90, 255), m & ~p), ((230, 30, 30), ~m & p)):
        for c, v in enumerate(colour):
            out[c][where] = v
    return out


def example_figures(reference: dict, outputs: list[tuple[str, torch.Tensor]]) -> list:
    """The aerial image and, per output, the road map it predicts over it."""
    from IPython.display import Markdown

    from ..benchmark import image_grid

    shown = [overlay(reference["image"], reference["mask"], o, reference.get("imaged")) for _, o in outputs]
    return [image_grid([reference["image"], *shown], ["aerial image", *[t for t, _ in outputs]], height=220),
            Markdown("Green: roads found; blue: roads missed; red: predicted where the map has none. "
                     "White areas have no imagery and are not scored.")]


BENCHMARK = Benchmark(
    name=NAME, title="Road segmentation",
    description="Trains the authors' small U-Net with iterative refinement on Massachusetts Roads with BCE + 0.01 x "
                "the feature MSE at one extraction point (one model per point; K=1 in training, K=3 and threshold "
                "0.3 at test). Completeness, correctness and quality per test image, averaged. The baseline trains "
                "with BCE only.",
    datasets=DATASETS, default_dataset="mass_roads", budgets=BUDGETS, run=run,
    primary=Metric("quality", ("test",), "road quality TP/(TP+FP+FN), pixel-exact"),
    output_key="prediction", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="the all-road answer",
    baseline_label="BCE only", model=lambda settings, dataset: UNet(),
    study=Study(
        budget=PAPER_BUDGET, authors_script="topology_aware_delineation/main.py", protocol=PROTOCOL,
        reference_figures=(ReferenceFigure("quality", "test", BASELINE, None, "none", "mass_roads", "paper", 0.434,
                                           "a Mosinska-style U-Net re-implementation, 224 px, BCE only"),),
        training_items=1108, step_cost_overrides={"eval_every": 10_000}),
)
