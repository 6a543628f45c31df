"""BAPPS (Zhang et al. 2018) 2AFC and JND sets.

2AFC folder: ``<subset>/{ref,p0,p1}/NAME.png`` + ``judge/NAME.npy`` (judge = fraction of
people who found p1 closer to ref). JND folder: ``<subset>/{p0,p1}/NAME.png`` +
``same/NAME.npy`` (fraction who found the pair the same).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DplError
from .core import DecodeCache, dataset_path, list_images, read_image

TWOAFC_TRAIN = ("traditional", "cnn", "mix")
TWOAFC_VAL = ("cnn", "color", "deblur", "frameinterp", "superres", "traditional")
JND_VAL = ("cnn", "traditional")


def _load_images(paths: list[Path], size: int) -> torch.Tensor:
    """N x 3 x size x size uint8, resized with antialiasing where needed."""
    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)
    for i, p in enumerate(paths):
        t = torch.from_numpy(read_image(p)).permute(2, 0, 1)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t[None].float(), size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
        out[i] = t
    return out


def _paired(folder: Path, parts: tuple[str, ...], label: str) -> tuple[list[str], dict[str, list[Path]]]:
    for part in (*parts, label):
        if not (folder / part).is_dir():
            raise DplError(f"BAPPS folder {folder} has no '{part}' sub-folder; expected "
                           f"{', '.join(parts)} and {label} (the BAPPS layout)")
    names = [p.stem for p in list_images(folder / parts[0])]
    if not names:
        raise DplError(f"BAPPS folder {folder / parts[0]} holds no images")
    files = {}
    for part in parts:
        by_stem = {p.stem: p for p in list_images(folder / part)}
        missing = [n for n in names if n not in by_stem]
        if missing:
            raise DplError(f"{folder / part} lacks {len(missing)} images that {parts[0]} has (e.g. {missing[0]})")
        files[part] = [by_stem[n] for n in names]
    files[label] = [folder / label / f"{n}.npy" for n in names]
    missing = [p for p in files[label] if not p.is_file()]
    if missing:
        raise DplError(f"{len(missing)} {label} files are missing (e.g. {missing[0]})")
    return names, files


class TwoAFC(Dataset):
    """One 2AFC subset: items are dicts with ref, p0, p1 (3 x size x size in [0, 1]) and judge."""

    parts = ("ref", "p0", "p1")
    label = "judge"

    def __init__(self, folder: str | os.PathLike, size: int = 64, cache: DecodeCache | None = None):
        self.folder = Path(folder)
        self.names, files = _paired(self.folder, self.parts, self.label)
        paths = [p for part in self.parts for p in files[part]]
        key = f"{type(self).__name__}:{size}"

        def build():
            data = {part: _load_images(files[part], size) for part in self.parts}
            labels = []
            for p in files[self.label]:
                try:
                    labels.append(float(np.load(p).reshape(-1)[0]))
                except Exception as err:
                    raise DplError(f"cannot read {p}: {err}") from err
            data[self.label] = torch.tensor(labels)
            return data

        self.data = (cache or DecodeCache()).get(paths + files[self.label], key, build)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {part: self.data[part][i].float() / 255 for part in self.parts}
        item[self.label] = self.data[self.label][i]
        return item

    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything at once: uint8 image stacks and the float labels."""
        return self.data


class JND(TwoAFC):
    """One JND subset: items are dicts with p0, p1 and same (fraction judging them the same)."""

    parts = ("p0", "p1")
    label = "same"


def bapps_2afc(split: str, subset: str, root: str | os.PathLike | None = None, size: int = 64) -> TwoAFC:
    """BAPPS 2AFC ``split`` in {'train', 'val'}, ``subset`` e.g. 'cnn' (see TWOAFC_TRAIN/VAL)."""
    allowed = TWOAFC_TRAIN if split == "train" else TWOAFC_VAL if split == "val" else None
    if allowed is None or subset not in allowed:
        raise DplError(f"BAPPS 2AFC has splits train {TWOAFC_TRAIN} and val {TWOAFC_VAL}; got {split}/{subset}")
    return TwoAFC(dataset_path(f"bapps_2afc_{split}", root) / "2afc" / split / subset, size)


def bapps_jnd(subset: str, root: str | os.PathLike | None = None, size: int = 64) -> JND:
    """BAPPS JND val ``subset`` in {'cnn', 'traditional'}."""
    if subset not in JND_VAL:
        raise DplError(f"BAPPS JND val subsets are {JND_VAL}; got {subset!r}")
    return JND(dataset_path("bapps_jnd_val", root) / "jnd" / "val" / subset, size)
