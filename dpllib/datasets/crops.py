"""Square crops of real photos from the data root: the data of a new image-to-image use case."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image

# data set -> split -> folders (under the data set's folder) holding its photos
PHOTO_FOLDERS = {"bsds500": {"train": ("images/train",), "val": ("images/val",), "test": ("images/test",)},
                 "set5": {"test": (".",)}, "set14": {"test": (".",)}}


def centre_crop(photo: np.ndarray, size: int, short_side: int | None = None) -> torch.Tensor:
    """The centre ``size`` x ``size`` pixels (3 x size x size uint8) of an H x W x 3 uint8 photo,
    after resizing it so its short side is ``short_side`` (PIL bicubic, antialiased; None: the
    photo's own resolution). A photo smaller than the crop is an error."""
    image = Image.fromarray(photo)
    if short_side is not None:
        w, h = image.size
        scale = short_side / min(w, h)
        image = image.resize((max(short_side, round(w * scale)), max(short_side, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    if min(w, h) < size:
        raise DplError(f"a {w} x {h} photo is smaller than the {size} px crop; pass a smaller size or a short_side")
    left, top = (w - size) // 2, (h - size) // 2
    return torch.from_numpy(np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8).copy()
                            ).permute(2, 0, 1)


class ImageCrops(Dataset):
    """One square crop per photo of a data set's split, read from the data root.

    ``crops``: N x 3 x size x size uint8 (:func:`centre_crop` of each photo); items are float
    crops in [0, 1]. ``limit``: a seeded sample of that many photos (name order kept). Decoded
    once and kept in the decode cache. Data sets and splits: :data:`PHOTO_FOLDERS` (BSDS500
    train 200 / val 100 / test 200 photos of 481 x 321; Set5, Set14).
    """

    def __init__(self, dataset: str = "bsds500", split: str = "train", size: int = 96,
                 root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0,
                 short_side: int | None = None):
        if dataset not in PHOTO_FOLDERS:
            raise DplError(f"ImageCrops data set must be one of {sorted(PHOTO_FOLDERS)}, got {dataset!r}")
        if split not in PHOTO_FOLDERS[dataset]:
            raise DplError(f"{dataset} splits are {sorted(PHOTO_FOLDERS[dataset])}, got {split!r}")
        base = dataset_path(dataset, root)
        files = [f for folder in PHOTO_FOLDERS[dataset][split] for f in list_images(base / folder)]
        if limit is not None:
            files = sorted(random.Random(seed).sample(files, min(limit, len(files))))
        self.files = files

        def build() -> dict[str, torch.Tensor]:
            return {"crops": torch.stack([centre_crop(read_image(f), size, short_side) for f in files])}

        self.crops = DecodeCache().get(files, f"crops:{size}:{short_side}", build)["crops"]

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.crops[i].float() / 255
