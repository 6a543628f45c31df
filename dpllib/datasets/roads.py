"""Massachusetts Roads (Mnih 2013): aerial RGB images and binary road masks.

Official layout ``{train,valid,test}/{sat,map}`` uses the official split; the flat subset
layout ``{images,masks}`` is split deterministically (sorted names, seeded shuffle:
2/3 train, 1/6 val, 1/6 test). Images and masks are resized so the short side is ``size``;
training items are random ``crop`` crops with random flips.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image, to_tensor

SPLITS = ("train", "val", "test")


def road_files(split: str, root: str | os.PathLike | None = None, seed: int = 0) -> list[tuple[Path, Path]]:
    """(image, mask) paths of ``split``."""
    if split not in SPLITS:
        raise DplError(f"Massachusetts Roads splits are {SPLITS}, got {split!r}")
    base = dataset_path("mass_roads", root)
    if (base / "train").is_dir():
        folder = base / {"train": "train", "val": "valid", "test": "test"}[split]
        images, masks = list_images(folder / "sat"), list_images(folder / "map")
    else:
        images, masks = list_images(base / "images"), list_images(base / "masks")
    by_stem = {m.stem: m for m in masks}
    missing = [p.name for p in images if p.stem not in by_stem]
    if missing:
        raise DplError(f"Massachusetts Roads: no mask for {len(missing)} images (e.g. {missing[0]})")
    pairs = [(p, by_stem[p.stem]) for p in images]
    if (base / "train").is_dir():
        return pairs
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = n_test = max(1, len(pairs) // 6)
    n_train = len(pairs) - n_val - n_test
    chosen = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
              "test": order[n_train + n_val:]}[split]
    return [pairs[i] for i in sorted(chosen)]


class MassRoads(Dataset):
    """Items: (image 3 x crop x crop in [0, 1], mask 1 x crop x crop in {0, 1})."""

    def __init__(self, split: str, root: str | os.PathLike | None = None, size: int = 224,
                 crop: int = 224, train_augment: bool | None = None, seed: int = 0):
        self.pairs = road_files(split, root, seed)
        self.crop = crop
        self.augment = split == "train" if train_augment is None else train_augment
        self.rng = random.Random(seed)

        def build():
            images, masks = [], []
            for img_path, mask_path in self.pairs:
                img = to_tensor(read_image(img_path))
                mask = to_tensor(read_image(mask_path, mode="L"))
                h, w = img.shape[-2:]
                s = size / min(h, w)
                shape = (round(h * s), round(w * s))
                img = F.interpolate(img[None], size=shape, mode="bilinear", antialias=True, align_corners=False)[0]
                mask = F.interpolate(mask[None], size=shape, mode="bilinear", antialias=True, align_corners=False)[0]
                images.append((img.clamp(0, 1) * 255).round().byte())
                masks.append(mask > 0.5)
            return {"images": torch.stack(images), "masks": torch.stack(masks)}

        files = [p for pair in self.pairs for p in pair]
        data = DecodeCache().get(files, f"roads:{size}", build)
        self.images, self.masks = data["images"], data["masks"]
        if min(self.images.shape[-2:]) < crop:
            raise DplError(f"crop {crop} is larger than the resized images {tuple(self.images.shape[-2:])}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, mask = self.images[i].float() / 255, self.masks[i].float()
        h, w = img.shape[-2:]
        if self.augment:
            top, left = self.rng.randint(0, h - self.crop), self.rng.randint(0, w - self.crop)
        else:
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
        img = img[:, top:top + self.crop, left:left + self.crop]
        mask = mask[:, top:top + self.crop, left:left + self.crop]
        if self.augment:
            if self.rng.random() < 0.5:
                img, mask = img.flip(-1), mask.flip(-1)
            if self.rng.random() < 0.5:
                img, mask = img.flip(-2), mask.flip(-2)
        return img, mask
