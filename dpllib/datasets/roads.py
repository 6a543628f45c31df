"""Massachusetts Roads (Mnih 2013): aerial RGB images and binary road masks.

Official layout ``{train,valid,test}/{sat,map}`` uses the official split; the flat subset
layout ``{images,masks}`` is split deterministically (sorted names, seeded shuffle:
2/3 train, 1/6 val, 1/6 test). Images and masks are resized so the short side is ``size``;
the original-resolution masks are kept for scoring.

Many tiles are partly outside the imaged area: those pixels are white in the image while the
map still draws roads there. :func:`imaged` tells them apart, so losses and scores can leave
out what no model can see.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image, to_tensor

SPLITS = ("train", "val", "test")
NO_DATA = 250  # a pixel whose three channels are all at least this bright is outside the image


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


def imaged(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W: True where a N x 3 x H x W image (uint8, or float in [0, 1]) shows ground,
    False in the white no-data areas."""
    bright = images >= NO_DATA if images.dtype == torch.uint8 else images >= NO_DATA / 255
    return ~bright.all(dim=-3, keepdim=True)


class MassRoads:
    """One split: ``images`` (N x 3 x H x W uint8) and ``masks`` (N x 1 x H x W bool) resized so
    the short side is ``size`` (None: the original 1500 px); ``full_masks`` and
    ``full_imaged`` at the original resolution (for scoring)."""

    def __init__(self, split: str, root: str | os.PathLike | None = None, size: int | None = 224, seed: int = 0):
        self.pairs = road_files(split, root, seed)
        self.split = split

        def build():
            images, masks, full_masks, full_imaged = [], [], [], []
            for img_path, mask_path in self.pairs:
                img = torch.from_numpy(read_image(img_path)).permute(2, 0, 1)
                mask = to_tensor(read_image(mask_path, mode="L"))
                full_masks.append(mask > 0.5)
                full_imaged.append(imaged(img[None])[0])
                if size is not None:
                    h, w = img.shape[-2:]
                    shape = (round(h * size / min(h, w)), round(w * size / min(h, w)))
                    img = F.interpolate(img[None].float(), size=shape, mode="bilinear", antialias=True,
                                        align_corners=False)[0].round().clamp(0, 255).byte()
                    mask = F.interpolate(mask[None], size=shape, mode="bilinear", antialias=True, align_corners=False)[0]
                images.append(img)
                masks.append(mask > 0.5)
            return {"images": torch.stack(images), "masks": torch.stack(masks),
                    "full_masks": torch.stack(full_masks), "full_imaged": torch.stack(full_imaged)}

        files = [p for pair in self.pairs for p in pair]
        data = DecodeCache().get(files, f"roads:{size}:v2", build)
        self.images, self.masks = data["images"], data["masks"]
        self.full_masks, self.full_imaged = data["full_masks"], data["full_imaged"]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    def crops(self, idx: torch.Tensor, crop: int, generator: torch.Generator,
              device: torch.device | str = "cpu", flips: str = "horizontal") -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``crop`` x ``crop`` crops of the items ``idx`` with random flips (``flips``
        'horizontal', as the study's code, or 'both': horizontal and vertical), drawn from
        ``generator``: (images N x 3 x c x c in [0, 1], masks N x 1 x c x c in {0, 1})."""
        if flips not in ("horizontal", "both"):
            raise DplError(f"flips must be 'horizontal' or 'both', got {flips!r}")
        h, w = self.size
        if crop > min(h, w):
            raise DplError(f"crop {crop} is larger than the resized images {(h, w)}; lower the crop or raise the size")
        draws = torch.randint(0, 2**31, (len(idx), 4), generator=generator).tolist()
        images, masks = [], []
        for i, (a, b, flip_h, flip_v) in zip(idx.tolist(), draws):
            top, left = a % (h - crop + 1), b % (w - crop + 1)
            img = self.images[i, :, top:top + crop, left:left + crop]
            mask = self.masks[i, :, top:top + crop, left:left + crop]
            dims = [d for d, flip in ((-1, flip_h % 2), (-2, flip_v % 2 and flips == "both")) if flip]
            if dims:
                img, mask = img.flip(dims), mask.flip(dims)
            images.append(img)
            masks.append(mask)
        return (torch.stack(images).to(device).float() / 255, torch.stack(masks).to(device).float())
