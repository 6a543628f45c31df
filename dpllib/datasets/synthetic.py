"""2AFC sets made from real photos (BSDS500 patches), in the BAPPS layout, with answers known by
construction: the distortion-severity set (a sanity check) and the equal-MSE set (where pixel
distance cannot know the answer).

Each set is generated once into ``DPL_CACHE/generated`` under a lock (many processes may ask at
once) and appears there in one rename, complete.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image

from ..errors import DplError
from ..files import temporary_path
from ..paths import cache_dir
from .bapps import TwoAFC
from .core import dataset_path, list_images, lock_path, read_image

SEVERITY_DISTORTIONS = ("blur", "noise", "jpeg", "color", "contrast", "pixelate")


def generated_set(out: Path, config: dict, write: Callable[[Path], None]) -> Path:
    """The generated data set at ``out``, made by ``write(staging_folder)`` unless ``out`` already
    holds one made from the same ``config``; concurrent callers wait on a lock and reuse it."""
    marker = out / "config.json"

    def ready() -> bool:
        return marker.is_file() and json.loads(marker.read_text()) == config

    if ready():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(out.parent, out.name)):
        if ready():
            return out
        staging = temporary_path(out)
        shutil.rmtree(staging, ignore_errors=True)
        write(staging)
        (staging / "config.json").write_text(json.dumps(config))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    return out


def write_triplet(folder: Path, name: str, ref: Image.Image, p0: Image.Image, p1: Image.Image, judge: float) -> None:
    """One 2AFC triplet in the BAPPS layout (judge = 1 when p1 is the closer one)."""
    for part, image in (("ref", ref), ("p0", p0), ("p1", p1)):
        (folder / part).mkdir(parents=True, exist_ok=True)
        image.save(folder / part / f"{name}.png")
    (folder / "judge").mkdir(parents=True, exist_ok=True)
    np.save(folder / "judge" / f"{name}.npy", np.array([judge], dtype=np.float32))


def random_patch(photos: list[Path], size: int, pick: random.Random) -> Image.Image:
    """A ``size`` x ``size`` RGB patch at a random place of a random photo."""
    photo = Image.fromarray(read_image(pick.choice(photos)))
    x = pick.randrange(0, photo.width - size + 1)
    y = pick.randrange(0, photo.height - size + 1)
    return photo.crop((x, y, x + size, y + size))


def training_photos(root: str | os.PathLike | None = None) -> list[Path]:
    """BSDS500 train + test: the photos the generated sets draw patches from (val is BSD100,
    the super-resolution test set, and stays out)."""
    bsds = dataset_path("bsds500", root) / "images"
    return list_images(bsds / "train") + list_images(bsds / "test")


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
    not human judgement. Deterministic given the photos, sizes and seed.
    Layout: ``<out>/2afc/val/<distortion>/{ref,p0,p1,judge}``.
    """
    if not photos:
        raise DplError("make_severity_2afc needs at least one photo")
    config = {"photos": [p.name for p in photos], "n": n_per_distortion, "size": size, "seed": seed,
              "distortions": list(distortions), "version": 1}
    tag = f"severity2afc-s{seed}-n{n_per_distortion}-{size}px"

    def write(staging: Path) -> None:
        rng = np.random.default_rng(seed)
        pick = random.Random(seed)
        for kind in distortions:
            for i in range(n_per_distortion):
                ref = random_patch(photos, size, pick)
                mild, strong = sorted(pick.sample(range(1, 11), 2))
                mild_img = _distort(ref, kind, mild / 10, rng)
                strong_img = _distort(ref, kind, strong / 10, rng)
                p1_is_mild = pick.random() < 0.5
                p0, p1 = (strong_img, mild_img) if p1_is_mild else (mild_img, strong_img)
                write_triplet(staging / "2afc" / "val" / kind, f"{i:06d}", ref, p0, p1, float(p1_is_mild))

    return generated_set(Path(out) if out is not None else cache_dir() / "generated" / tag, config, write)


def severity_2afc(root: str | os.PathLike | None = None, n_per_distortion: int = 500,
                  seed: int = 0, size: int = 64) -> dict[str, TwoAFC]:
    """The severity 2AFC set from BSDS500 train+test photos, generated once into the cache:
    {distortion: TwoAFC}."""
    folder = make_severity_2afc(training_photos(root), n_per_distortion=n_per_distortion, size=size, seed=seed)
    return {kind: TwoAFC(folder / "2afc" / "val" / kind, size) for kind in SEVERITY_DISTORTIONS}


# --------------------------------------------------------------------------- equal-MSE 2AFC

PRESERVING = ("luminance", "contrast", "translation")  # changes that keep the structure
STRUCTURAL = ("blur", "noise", "jpeg")  # changes that damage it
MSE_TOLERANCE = 0.01  # relative difference allowed between the two distortions' MSE
# The structural share e of the closer image's change (by energy, the two changes being nearly
# uncorrelated), one per triplet in turn: its difficulty. The farther image's change is all
# structural (e = 1), so the closer one is known for every e < 1, and harder to find as e grows.
GRADES = (0.3, 0.5, 0.7, 0.9)
# The closer image's MSE is this much (relative) above or below the farther one's, above and below
# in turn within each grade; with the bisection's quarter of MSE_TOLERANCE it stays on its side,
# so pixel distance is right on exactly half of the triplets of each grade (n a multiple of 8).
SIDE_OFFSET = 0.003


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _preserving(photo: np.ndarray, y: int, x: int, size: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The patch at (y, x) of ``photo`` (uint8) under a structure-preserving change."""
    ref = photo[y:y + size, x:x + size].astype(np.float64) / 255
    if kind == "luminance":  # a global brightness shift of 5-15% of the range
        return _to_uint8(ref + rng.choice([-1, 1]) * rng.uniform(0.05, 0.15))
    if kind == "contrast":  # the contrast scaled about the mean by 0.6-0.85 or 1.15-1.4
        factor = rng.uniform(0.6, 0.85) if rng.random() < 0.5 else rng.uniform(1.15, 1.4)
        return _to_uint8(ref.mean() + (ref - ref.mean()) * factor)
    dy, dx = 0, 0  # translation: the same photo seen 1-2 pixels away (no padding)
    while dy == dx == 0:
        dy, dx = (int(v) for v in rng.integers(-2, 3, 2))
    return photo[y + dy:y + dy + size, x + dx:x + dx + size].copy()


def _structural(ref: np.ndarray, kind: str, strength: float, rng_seed: int) -> np.ndarray:
    """``ref`` (uint8) under a structural change at ``strength`` >= 1 (float image in [0, 1])."""
    from PIL import ImageFilter

    rng = np.random.default_rng(rng_seed)
    image = Image.fromarray(ref)
    if kind == "blur":
        return np.asarray(image.filter(ImageFilter.GaussianBlur(radius=1.5 * strength)), dtype=np.float64) / 255
    if kind == "noise":
        return np.clip(ref / 255 + rng.normal(0, 0.1 * strength, ref.shape), 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=max(1, int(round(10 / strength))))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float64) / 255


def equal_mse_distortion(ref: np.ndarray, target_mse: float, kind: str, seed: int) -> np.ndarray | None:
    """``ref`` (uint8) under the structural change ``kind``, blended with ``ref`` so that its
    8-bit MSE to ``ref`` is ``target_mse`` within a quarter of MSE_TOLERANCE; None when no strength
    reaches it."""
    ref_f = ref.astype(np.float64) / 255
    for strength in (1, 2, 4, 8):
        full = _structural(ref, kind, strength, seed)
        if _mse(_to_uint8(full), ref) >= target_mse:
            break
    else:
        return None
    return along(ref, full - ref_f, target_mse, 1.0)


def along(ref: np.ndarray, change: np.ndarray, target_mse: float, most: float) -> np.ndarray | None:
    """``ref`` (uint8) moved along ``change`` (float, [0, 1] units) by the factor in [0, ``most``]
    (bisected) that makes its 8-bit MSE to ``ref`` ``target_mse`` within a quarter of
    MSE_TOLERANCE; None when no factor does."""
    ref_f = ref.astype(np.float64) / 255
    lo, hi = 0.0, most
    for _ in range(50):
        factor = (lo + hi) / 2
        out = _to_uint8(ref_f + factor * change)
        mse = _mse(out, ref)
        if abs(mse - target_mse) <= MSE_TOLERANCE / 4 * target_mse:
            return out
        lo, hi = (factor, hi) if mse < target_mse else (lo, factor)
    return None


def graded(ref: np.ndarray, kept: np.ndarray, damaged: np.ndarray, grade: float, target_mse: float) -> np.ndarray | None:
    """The closer image of a graded triplet: ``ref`` (uint8) changed along sqrt(1 - grade) x the
    structure-preserving change (``kept`` - ``ref``) + sqrt(grade) x the structural one
    (``damaged`` - ``ref``), each scaled to unit RMS, to the 8-bit MSE ``target_mse``."""
    ref_f = ref.astype(np.float64) / 255

    def unit(image: np.ndarray) -> np.ndarray:
        change = image.astype(np.float64) / 255 - ref_f
        return change / np.sqrt(np.mean(change ** 2))

    change = np.sqrt(1 - grade) * unit(kept) + np.sqrt(grade) * unit(damaged)
    return along(ref, change, target_mse, 2 * np.sqrt(target_mse) / np.sqrt(np.mean(change ** 2)) + 1e-3)


def make_equal_mse_2afc(photos: list[Path], out: str | os.PathLike | None = None, n_per_kind: int = 200,
                        size: int = 64, seed: int = 0) -> Path:
    """Write an equal-MSE 2AFC set in the BAPPS layout and return its folder.

    Each triplet: a ``size`` x ``size`` patch of a real photo (ref); a structural change of it
    (blur, noise or JPEG, drawn at random, blended with the patch) and a change that is partly
    structure-preserving (a luminance shift, a contrast change, or a 1-2 px translation, mixed
    with the same structural change: its share ``GRADES``, in turn, :func:`graded`), both at the
    same pixel MSE to the patch (within 0.6%: the closer one's is 0.05-0.55% larger on half of the
    triplets of each grade and as much smaller on the other half, so pixel distance scores 0.5). The partly preserving one is the closer one (judge = 1 when it is
    p1): at equal MSE, mean shifts and contrast changes look far closer to the original than
    blur, noise or JPEG (Wang, Bovik, Sheikh, Simoncelli 2004, Fig. 2), a 1-2 px shift is barely
    visible, and it carries less of the structural change. Pixel distance cannot tell the two
    apart; the grades make the set neither trivial nor impossible for deep features.
    Layout: ``<out>/2afc/val/<luminance|contrast|translation>/{ref,p0,p1,judge}`` and
    ``meta.json`` (per triplet: structural kind, grade, ``mse_closer``, ``mse_farther``).
    """
    if not photos:
        raise DplError("make_equal_mse_2afc needs at least one photo")
    config = {"photos": [p.name for p in photos], "n": n_per_kind, "size": size, "seed": seed,
              "grades": list(GRADES), "side_offset": SIDE_OFFSET, "version": 4}
    tag = f"equalmse2afc-s{seed}-n{n_per_kind}-{size}px"

    def write(staging: Path) -> None:
        rng = np.random.default_rng(seed)
        meta: dict[str, list[dict]] = {}
        for kind in PRESERVING:
            meta[kind] = []
            while len(meta[kind]) < n_per_kind:
                photo = read_image(photos[int(rng.integers(len(photos)))])
                y = int(rng.integers(2, photo.shape[0] - size - 2))
                x = int(rng.integers(2, photo.shape[1] - size - 2))
                ref = photo[y:y + size, x:x + size]
                preserved = _preserving(photo, y, x, size, kind, rng)
                target = _mse(preserved, ref)
                if target < 1e-4:  # a flat patch: nothing to compare
                    continue
                structural = str(rng.choice(STRUCTURAL))
                damaged = equal_mse_distortion(ref, target, structural, int(rng.integers(2**31)))
                if damaged is None:
                    continue
                grade = GRADES[len(meta[kind]) % len(GRADES)]
                side = 1 if len(meta[kind]) // len(GRADES) % 2 else -1  # in turn within each grade
                mse_farther = _mse(damaged, ref)
                kept = graded(ref, preserved, damaged, grade, mse_farther * (1 + side * SIDE_OFFSET))
                if kept is None:
                    continue
                p1_kept = bool(rng.random() < 0.5)
                p0, p1 = (damaged, kept) if p1_kept else (kept, damaged)
                name = f"{len(meta[kind]):06d}"
                write_triplet(staging / "2afc" / "val" / kind, name, Image.fromarray(ref), Image.fromarray(p0),
                              Image.fromarray(p1), float(p1_kept))
                meta[kind].append({"structural": structural, "grade": grade, "mse_closer": _mse(kept, ref),
                                   "mse_farther": mse_farther})
        (staging / "meta.json").write_text(json.dumps(meta))

    return generated_set(Path(out) if out is not None else cache_dir() / "generated" / tag, config, write)


def equal_mse_2afc(root: str | os.PathLike | None = None, n_per_kind: int = 200, seed: int = 0,
                   size: int = 64) -> dict[str, TwoAFC]:
    """The equal-MSE 2AFC set from BSDS500 train+test photos, generated once into the cache:
    {structure-preserving change: TwoAFC}."""
    folder = make_equal_mse_2afc(training_photos(root), n_per_kind=n_per_kind, size=size, seed=seed)
    return {kind: TwoAFC(folder / "2afc" / "val" / kind, size) for kind in PRESERVING}
