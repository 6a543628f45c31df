"""Super-resolution x4 data, made as the study's code makes it (super_res/main_utils.py).

Training: HR = the photo's short side resized to 288 (bilinear, antialiased), centre crop
288 x 288; LR = the photo blurred (PIL Gaussian blur, radius 1), its short side resized to 72
(bicubic, antialiased), centre crop 72 x 72; both 8-bit. Test images at full resolution: HR
cropped to a multiple of 4; LR = the photo blurred, cropped alike and resized by 1/4 (bicubic,
antialiased). All resizing is PIL's, as torchvision's transforms do it on PIL images.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image

SCALE = 4
HR_SIZE = 288
BLUR_RADIUS = 1  # PIL ImageFilter.GaussianBlur radius (= sigma) of the LR images
TEST_SETS = {"set5": ("set5", "."), "set14": ("set14", "."), "bsd100": ("bsds500", "images/val")}
TRAIN_SOURCES = ("coco", "bsds500")


def _resize_short_side_crop(image: Image.Image, size: int, resample: int) -> Image.Image:
    """torchvision's Resize(size) then CenterCrop(size) on a PIL image: the short side to
    ``size``, the long side to int(size * long / short), the centre ``size`` x ``size``."""
    w, h = image.size
    if w <= h:
        image = image.resize((size, int(size * h / w)), resample)
    else:
        image = image.resize((int(size * w / h), size), resample)
    w, h = image.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def _uint8(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


LR_PIPELINES = ("authors", "aligned")


def training_pair(photo: np.ndarray, hr_size: int = HR_SIZE,
                  pipeline: str = "authors") -> tuple[torch.Tensor, torch.Tensor]:
    """(LR 3 x s x s, HR 3 x S x S) uint8 of an H x W x 3 uint8 photo, s = S / 4. ``pipeline``
    'authors': the study's way (module docstring): LR and HR are resized from the photo
    separately, so they can be off by a pixel or two and in scale by up to ~1%. 'aligned': the
    same blur and resize applied to the HR image itself (LR = HR blurred, resized to s)."""
    if pipeline not in LR_PIPELINES:
        raise DplError(f"the SR LR pipeline must be one of {LR_PIPELINES}, got {pipeline!r}")
    image = Image.fromarray(photo)
    hr = _resize_short_side_crop(image, hr_size, Image.BILINEAR)
    small = hr_size // SCALE
    if pipeline == "aligned":
        lr = hr.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)).resize((small, small), Image.BICUBIC)
    else:
        lr = _resize_short_side_crop(image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)), small, Image.BICUBIC)
    return _uint8(lr), _uint8(hr)


def full_resolution_pair(photo: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) uint8 of a whole H x W x 3 photo: HR cropped to a multiple of 4, LR its blurred
    copy cropped alike and resized by 1/4 (bicubic, antialiased)."""
    h, w = (s - s % SCALE for s in photo.shape[:2])
    blurred = Image.fromarray(photo).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)).crop((0, 0, w, h))
    lr = _uint8(blurred.resize((w // SCALE, h // SCALE), Image.BICUBIC))
    return lr, torch.from_numpy(photo[:h, :w].copy()).permute(2, 0, 1)


def upscale_bicubic(lr: torch.Tensor, scale: int = SCALE, clamp: bool = True) -> torch.Tensor:
    """The bicubic baseline: LR upsampled by ``scale`` (clamped to [0, 1] unless ``clamp`` is
    False)."""
    up = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(0, 1) if clamp else up


def crop_pair(lr: torch.Tensor, hr: torch.Tensor, top: int, left: int,
              hr_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``hr_size`` px of HR (... x H x W) from (``top``, ``left``), multiples of 4, and the
    LR pixels under them."""
    small = hr_size // SCALE
    return (lr[..., top // SCALE:top // SCALE + small, left // SCALE:left // SCALE + small],
            hr[..., top:top + hr_size, left:left + hr_size])


def centre_crop_pair(lr: torch.Tensor, hr: torch.Tensor, hr_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre ``hr_size`` px of HR and the LR pixels under them (top and left rounded down
    to a multiple of 4)."""
    h, w = hr.shape[-2:]
    return crop_pair(lr, hr, (h - hr_size) // 2 // SCALE * SCALE, (w - hr_size) // 2 // SCALE * SCALE, hr_size)


class SRTrainSet(Dataset):
    """Training pairs (lr 3 x 72 x 72, hr 3 x 288 x 288) in [0, 1] (:func:`training_pair`).

    source 'coco': the study's seeded subset (``limit`` images, default 10,000) of MS-COCO
    2014 train; 'bsds500': BSDS500 train+test (400 photos), the offline stand-in.
    """

    def __init__(self, source: str = "coco", root: str | os.PathLike | None = None,
                 limit: int | None = None, seed: int = 0, hr_size: int = HR_SIZE, pipeline: str = "authors"):
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
            pairs = [training_pair(read_image(p), hr_size, pipeline) for p in files]
            return {"lr": torch.stack([lr for lr, _ in pairs]), "hr": torch.stack([hr for _, hr in pairs])}

        data = DecodeCache().get(files, f"sr-train-{pipeline}:{hr_size}", build)
        self.lr, self.hr = data["lr"], data["hr"]  # uint8

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lr[i].float() / 255, self.hr[i].float() / 255


class SRTestSet(Dataset):
    """Test pairs for 'set5', 'set14' or 'bsd100': (lr, hr) in [0, 1], full images of varying
    size (:func:`full_resolution_pair`; grayscale images repeated to RGB); ``pairs(288)``: the
    study's test transform instead (:func:`training_pair`)."""

    def __init__(self, name: str, root: str | os.PathLike | None = None):
        if name not in TEST_SETS:
            raise DplError(f"SR test sets are {sorted(TEST_SETS)}, got {name!r}")
        dataset, sub = TEST_SETS[name]
        self.name = name
        self.files = list_images(dataset_path(dataset, root) / sub)

        def build():
            out = {}
            for i, p in enumerate(self.files):
                photo = read_image(p)
                out[f"lr{i}"], out[f"hr{i}"] = full_resolution_pair(photo)
                out[f"lr{i}@{HR_SIZE}"], out[f"hr{i}@{HR_SIZE}"] = training_pair(photo, HR_SIZE)
            return out

        self.data = DecodeCache().get(self.files, "sr-test-authors", build)

    def __len__(self) -> int:
        return len(self.files)

    def pairs(self, size: int | None = None, limit: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``limit`` (None: all) (lr, hr) pairs in [0, 1]: full resolution (``size``
        None) or the study's test transform (``size`` 288)."""
        if size not in (None, HR_SIZE):
            raise DplError(f"SR test pairs are at full resolution (None) or {HR_SIZE} px, got {size!r}")
        tag = "" if size is None else f"@{size}"
        n = len(self) if limit is None else min(limit, len(self))
        return [(self.data[f"lr{i}{tag}"].float() / 255, self.data[f"hr{i}{tag}"].float() / 255) for i in range(n)]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[f"lr{i}"].float() / 255, self.data[f"hr{i}"].float() / 255
