"""Autoencoder data: SVHN and STL-10 through torchvision's own downloaders (the study's
sets), CIFAR-10 from local JPEG folders (the offline stand-in)."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from filelock import FileLock
from torch.utils.data import TensorDataset

from ..errors import DplError, UnavailableError
from ..paths import data_root
from .core import DecodeCache, dataset_path, list_images, lock_path, read_image

NAMES = ("cifar10", "svhn", "stl10")
SPLITS = {"cifar10": ("train", "test"), "svhn": ("train", "test", "extra"), "stl10": ("train", "test", "unlabeled")}


def autoencoder_dataset(name: str, split: str, root: str | os.PathLike | None = None,
                        limit: int | None = None, pad: str = "reflect") -> TensorDataset:
    """(image 3 x S x S in [0, 1], label) pairs; STL-10's ``unlabeled`` split has label -1.

    cifar10: 32 px from ``cifar10/{train,test}/CLASS/*.jpg``; svhn: 32 px padded by 16 to 64
    (``pad`` 'reflect' as the authors, or 'zero'); stl10: 96 px. ``limit`` keeps the first
    images per class in order (cifar10) or the first ``limit`` overall.
    """
    if name not in NAMES:
        raise DplError(f"autoencoder data sets are {NAMES}, got {name!r}")
    if split not in SPLITS[name]:
        raise DplError(f"{name} splits are {SPLITS[name]}, got {split!r}")
    if pad not in ("reflect", "zero"):
        raise DplError(f"pad must be 'reflect' or 'zero', got {pad!r}")
    if name == "cifar10":
        folder = dataset_path("cifar10_jpeg", root) / split
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise DplError(f"{folder} has no class folders (expected cifar10/{split}/CLASS/*.jpg)")
        files, labels = [], []
        for label, cls in enumerate(classes):
            imgs = list_images(folder / cls)
            if limit is not None:
                imgs = imgs[: max(1, limit // len(classes))]
            files += imgs
            labels += [label] * len(imgs)

        def build():
            return {"x": torch.stack([torch.from_numpy(read_image(p)).permute(2, 0, 1) for p in files])}

        x = DecodeCache().get(files, "cifar-jpeg", build)["x"]
        return TensorDataset(x.float() / 255, torch.tensor(labels))
    base = data_root(root) / name
    with FileLock(lock_path(data_root(root), name)):  # one process downloads, the others wait
        x, y = _torchvision_set(name, split, base)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    x = x.float() / 255
    if name == "svhn":
        x = F.pad(x, (16, 16, 16, 16), mode="reflect" if pad == "reflect" else "constant")
    return TensorDataset(x, y)


def _torchvision_set(name: str, split: str, base) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN or STL-10 through torchvision's own downloader (which checks their MD5)."""
    import torchvision

    try:
        if name == "svhn":
            ds = torchvision.datasets.SVHN(str(base), split=split, download=True)
            x, y = torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype("int64"))
        else:
            ds = torchvision.datasets.STL10(str(base), split=split, download=True)
            labels = ds.labels if ds.labels is not None else -torch.ones(len(ds.data)).numpy()
            x, y = torch.from_numpy(ds.data), torch.from_numpy(labels.astype("int64"))
    except (RuntimeError, OSError) as err:
        raise UnavailableError(
            f"{name} is not in {base} and torchvision could not download it ({err}). Offline, "
            f"put torchvision's files there by hand ({'train_32x32.mat, test_32x32.mat' if name == 'svhn' else 'stl10_binary/'})."
        ) from err
    return x, y
