"""BAPPS (Zhang et al. 2018) 2AFC and JND sets, and a distortion-severity 2AFC set made from real
photos in the same layout.

2AFC folder: ``<subset>/{ref,p0,p1}/NAME.png`` + ``judge/NAME.npy`` (judge = fraction of
people who found p1 closer to ref). JND folder: ``<subset>/{p0,p1}/NAME.png`` +
``same/NAME.npy`` (fraction who found the pair the same).
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DplError
from ..paths import cache_dir
from .core import DecodeCache, dataset_path, list_images, read_image

TWOAFC_TRAIN = ("traditional", "cnn", "mix")
TWOAFC_VAL = ("cnn", "color", "deblur", "frameinterp", "superres", "traditional")
JND_VAL = ("cnn", "traditional")
SEVERITY_DISTORTIONS = ("blur", "noise", "jpeg", "color", "contrast", "pixelate")


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


# --------------------------------------------------------------------------- severity 2AFC


def _distort(patch: Image.Image, kind: str, level: float, rng: np.random.Generator) -> Image.Image:
    """Apply distortion ``kind`` at ``level`` in (0, 1] to an RGB patch."""
    from PIL import ImageFilter

    arr = np.asarray(patch, dtype=np.float32) / 255
    if kind == "blur":
        return patch.filter(ImageFilter.GaussianBlur(radius=0.3 + 2.7 * level))
    if kind == "noise":
        arr = arr + rng.normal(0, 0.02 + 0.2 * level, arr.shape)
    elif kind == "jpeg":
        buf = io.BytesIO()
        patch.save(buf, format="JPEG", quality=int(round(60 - 55 * level)))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    elif kind == "color":
        direction = rng.normal(0, 1, 3)
        arr = arr + (0.03 + 0.3 * level) * direction / np.linalg.norm(direction)
    elif kind == "contrast":
        arr = (arr - arr.mean()) * (1 - 0.85 * level) + arr.mean()
    elif kind == "pixelate":
        side = max(2, int(round(64 / (1.5 + 10 * level))))
        small = patch.resize((side, side), Image.BILINEAR)
        return small.resize(patch.size, Image.NEAREST)
    else:
        raise DplError(f"unknown distortion {kind!r}; choose from {SEVERITY_DISTORTIONS}")
    return Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))


def make_severity_2afc(
    photos: list[Path],
    out: str | os.PathLike | None = None,
    n_per_distortion: int = 500,
    size: int = 64,
    seed: int = 0,
    distortions: tuple[str, ...] = SEVERITY_DISTORTIONS,
) -> Path:
    """Write a 2AFC set with known answers in the BAPPS layout and return its folder.

    Each triplet: a random ``size`` x ``size`` patch of a random photo (ref), and the same patch
    under one distortion at two severities (p0, p1, randomly ordered). The milder one is the
    closer one by construction, so judge = 1.0 when p1 is milder, else 0.0. A sanity benchmark,
    not human judgement. Deterministic given the photos, sizes and seed; written atomically.
    Layout: ``<out>/2afc/val/<distortion>/{ref,p0,p1,judge}``.
    """
    if not photos:
        raise DplError("make_severity_2afc needs at least one photo")
    config = {"photos": [p.name for p in photos], "n": n_per_distortion, "size": size, "seed": seed,
              "distortions": list(distortions), "version": 1}
    tag = f"severity2afc-s{seed}-n{n_per_distortion}-{size}px"
    out = Path(out) if out is not None else cache_dir() / "generated" / tag
    marker = out / "config.json"
    if marker.is_file() and json.loads(marker.read_text()) == config:
        return out
    staging = out.with_name(out.name + f".{os.getpid()}.tmp")
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    for kind in distortions:
        folder = staging / "2afc" / "val" / kind
        for part in ("ref", "p0", "p1", "judge"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_distortion):
            photo = Image.fromarray(read_image(pick.choice(photos)))
            x = pick.randrange(0, photo.width - size + 1)
            y = pick.randrange(0, photo.height - size + 1)
            ref = photo.crop((x, y, x + size, y + size))
            mild, strong = sorted(pick.sample(range(1, 11), 2))
            mild_img = _distort(ref, kind, mild / 10, rng)
            strong_img = _distort(ref, kind, strong / 10, rng)
            p1_is_mild = pick.random() < 0.5
            p0, p1 = (strong_img, mild_img) if p1_is_mild else (mild_img, strong_img)
            name = f"{i:06d}"
            ref.save(folder / "ref" / f"{name}.png")
            p0.save(folder / "p0" / f"{name}.png")
            p1.save(folder / "p1" / f"{name}.png")
            np.save(folder / "judge" / f"{name}.npy", np.array([1.0 if p1_is_mild else 0.0], dtype=np.float32))
    (staging / "config.json").write_text(json.dumps(config))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, out)
    return out


def severity_2afc(root: str | os.PathLike | None = None, n_per_distortion: int = 500,
                  seed: int = 0, size: int = 64) -> dict[str, TwoAFC]:
    """The severity 2AFC set from BSDS500 train+test photos, generated once into the cache:
    {distortion: TwoAFC}."""
    bsds = dataset_path("bsds500", root) / "images"
    photos = list_images(bsds / "train") + list_images(bsds / "test")
    folder = make_severity_2afc(photos, n_per_distortion=n_per_distortion, size=size, seed=seed)
    return {kind: TwoAFC(folder / "2afc" / "val" / kind, size) for kind in SEVERITY_DISTORTIONS}
