"""Super-resolution x4 data (Johnson et al. 2016 as the study sets it up).

HR: resize the short side to 288, centre crop 288 x 288 (training); test images are cropped to
a multiple of 4. LR: Gaussian blur (sigma 1) then bicubic downsampling x4 (288 -> 72).
"""

from __future__ import annotations

import math
import os
import random

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image, to_tensor

SCALE = 4
HR_SIZE = 288
TEST_SETS = {"set5": ("set5", "."), "set14": ("set14", "."), "bsd100": ("bsds500", "images/val")}
TRAIN_SOURCES = ("coco", "bsds500")


def gaussian_blur(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur of N x C x H x W images (kernel radius 3 sigma, reflect padding)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def degrade(hr: torch.Tensor, scale: int = SCALE, sigma: float = 1.0) -> torch.Tensor:
    """The study's LR from HR (N x 3 x H x W in [0, 1], H and W multiples of ``scale``)."""
    blurred = gaussian_blur(hr, sigma)
    lr = F.interpolate(blurred, scale_factor=1 / scale, mode="bicubic", align_corners=False)
    return lr.clamp(0, 1)


def upscale_bicubic(lr: torch.Tensor, scale: int = SCALE, clamp: bool = True) -> torch.Tensor:
    """The bicubic baseline: LR upsampled by ``scale`` (clamped to [0, 1] unless ``clamp`` is
    False)."""
    up = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(0, 1) if clamp else up


def resize_crop(img: torch.Tensor, size: int, resize: bool = True) -> torch.Tensor:
    """A 3 x H x W image in [0, 1] with its short side resized to ``size`` (bicubic, antialiased;
    skipped when ``resize`` is False), then centre-cropped to ``size`` x ``size``."""
    h, w = img.shape[-2:]
    if resize:
        s = size / min(h, w)
        h, w = max(size, round(h * s)), max(size, round(w * s))
        img = F.interpolate(img[None], size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0]
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top:top + size, left:left + size].clamp(0, 1)


class SRTrainSet(Dataset):
    """Training pairs (lr 3 x 72 x 72, hr 3 x 288 x 288) in [0, 1].

    source 'coco': the study's seeded subset (``limit`` images, default 10,000) of MS-COCO
    2014 train; 'bsds500': BSDS500 train+test (400 photos), the offline stand-in.
    """

    def __init__(self, source: str = "coco", root: str | os.PathLike | None = None,
                 limit: int | None = None, seed: int = 0, hr_size: int = HR_SIZE):
        if source not in TRAIN_SOURCES:
            raise DplError(f"SR training source must be one of {TRAIN_SOURCES}, got {source!r}")
        if source == "coco":
            files = list_images(dataset_path("coco2014_train", root) / "train2014")
            limit = 10_000 if limit is None else limit
            files = sorted(random.Random(seed).sample(files, min(limit, len(files))))
        else:
            base = dataset_path("bsds500", root) / "images"
            files = list_images(base / "train") + list_images(base / "test")
            if limit is not None:
                files = sorted(random.Random(seed).sample(files, min(limit, len(files))))
        self.files = files

        def build():
            hr = torch.stack([resize_crop(to_tensor(read_image(p)), hr_size) for p in files])
            return {"hr": (hr * 255).round().byte()}

        self.hr = DecodeCache().get(files, f"sr-train:{hr_size}", build)["hr"]

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.hr[i].float() / 255
        return degrade(hr[None])[0], hr


class SRTestSet(Dataset):
    """Test pairs for 'set5', 'set14' or 'bsd100': (lr, hr), full images of varying size
    (HR cropped to a multiple of 4; grayscale images repeated to RGB)."""

    def __init__(self, name: str, root: str | os.PathLike | None = None):
        if name not in TEST_SETS:
            raise DplError(f"SR test sets are {sorted(TEST_SETS)}, got {name!r}")
        dataset, sub = TEST_SETS[name]
        self.name = name
        self.files = list_images(dataset_path(dataset, root) / sub)

        def build():
            out = {}
            for i, p in enumerate(self.files):
                hr = to_tensor(read_image(p))
                h, w = (s - s % SCALE for s in hr.shape[-2:])
                out[f"hr{i}"] = (hr[:, :h, :w] * 255).round().byte()
            return out

        data = DecodeCache().get(self.files, "sr-test", build)
        self.hr = [data[f"hr{i}"] for i in range(len(self.files))]

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.hr[i].float() / 255
        return degrade(hr[None])[0], hr
