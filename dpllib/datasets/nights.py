"""NIGHTS (Fu et al., NeurIPS 2023: DreamSim): 20,019 triplets of Stable-Diffusion images with
human 2AFC votes, read as DreamSim's code reads them (ssundaram21/dreamsim, dataset/dataset.py).

Layout: ``nights/{ref/DDD/FFF.png, distort/DDD/FFF_{0,1}.png, data.csv}``. ``data.csv`` is read as
their loader reads it: rows with ``votes`` >= 6 (20,019 -> 17,444), the ``split`` column (train,
val, test; ``test_imagenet`` / ``test_no_imagenet``: test rows with ``is_imagenet`` true / false),
and by position the triplet's id (column 0), its vote share p (column 2) and the reference, left
and right image paths (columns 4-6). Images are resized to 224 x 224 px, bicubic, as DreamSim
feeds them. The 2AFC credit of a triplet is DreamSim's (evaluation/score.py):
(d_left < d_right)(1 - p) + (d_right < d_left) p + 0.5 on a tie, BAPPS's with p as its judge.

Downloads: the whole set (``nights.zip``, 58 GB unzipped), or its 200 chunks (``ref/DDD.zip``,
``distort/DDD.zip``) with ``data.csv`` read out of ``nights.zip`` by HTTP range requests (the
chunks do not hold it: dreamsim issue 21); ``subset`` fetches the first folders only.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..download import download
from ..errors import DplError, UnavailableError
from ..files import atomic_write
from ..paths import data_root
from .core import NIGHTS_ZIP, DecodeCache, dataset_path, extract_archive, lock_path

NIGHTS_CHUNK = "https://data.csail.mit.edu/nights/nights_chunked/{kind}/{index:03d}.zip"
CHUNKS = 100  # folders 000-099 under ref/ and distort/
SPLITS = ("train", "val", "test", "test_imagenet", "test_no_imagenet")
MIN_VOTES = 6
SIZE = 224
CSV_COLUMNS = ("votes", "split", "is_imagenet")  # read by name; the rest by position, as DreamSim does


def read_rows(folder: str | os.PathLike, split: str) -> pd.DataFrame:
    """The rows of ``data.csv`` in ``folder`` that DreamSim's loader keeps for ``split``, with
    columns id, p, ref, left, right (paths relative to the folder)."""
    if split not in SPLITS:
        raise DplError(f"NIGHTS splits are {', '.join(SPLITS)}; got {split!r}")
    path = Path(folder) / "data.csv"
    if not path.is_file():
        raise DplError(f"NIGHTS needs {path} (the votes and splits); a chunked download lacks it: "
                       "dpl data nights fetches it from nights.zip")
    csv = pd.read_csv(path)
    missing = [c for c in CSV_COLUMNS if c not in csv.columns]
    if missing or csv.shape[1] < 7:
        raise DplError(f"{path} lacks the columns {missing or 'id, p, ref, left, right (positions 0, 2, 4-6)'}; "
                       "it is not NIGHTS's data.csv")
    csv = csv[csv["votes"] >= MIN_VOTES]
    if split in ("test_imagenet", "test_no_imagenet"):
        csv = csv[(csv["split"] == "test") & (csv["is_imagenet"].astype(bool) == (split == "test_imagenet"))]
    else:
        csv = csv[csv["split"] == split]
    return pd.DataFrame({"id": csv.iloc[:, 0].to_numpy(), "p": csv.iloc[:, 2].astype(np.float32).to_numpy(),
                         "ref": csv.iloc[:, 4].to_numpy(), "left": csv.iloc[:, 5].to_numpy(),
                         "right": csv.iloc[:, 6].to_numpy()})


def _load(path: Path, size: int) -> torch.Tensor:
    """3 x size x size uint8: the image resized bicubic (PIL, as torchvision's Resize on a PIL image)."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((size, size), Image.BICUBIC)
            return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
    except OSError as err:
        raise DplError(f"cannot read NIGHTS image {path}: {err}; re-download that folder") from err


class NightsTwoAFC:
    """One NIGHTS split as a 2AFC set in BAPPS's shape: ``tensors()`` gives uint8 stacks ref, p0
    (left), p1 (right), each N x 3 x 224 x 224, and ``judge`` (p: DreamSim's credit for the right
    image). Triplets whose images are not on disk (a subset download) are left out and counted in
    ``missing``; none present is an error."""

    parts = ("ref", "p0", "p1")
    label = "judge"

    def __init__(self, folder: str | os.PathLike, split: str, size: int = SIZE, cache: DecodeCache | None = None):
        self.folder = Path(folder)
        rows = read_rows(self.folder, split)
        present = [all((self.folder / r[k]).is_file() for k in ("ref", "left", "right"))
                   for r in rows.to_dict("records")]
        self.missing = int(len(rows) - sum(present))
        rows = rows[present]
        if rows.empty:
            raise DplError(f"none of NIGHTS's {split} triplets has its images under {self.folder} "
                           f"({self.missing} listed): download them with dpl data nights")
        self.ids = rows["id"].tolist()
        files = {part: [self.folder / p for p in rows[col]] for part, col in zip(self.parts, ("ref", "left", "right"))}

        def build() -> dict[str, torch.Tensor]:
            data = {part: torch.stack([_load(p, size) for p in files[part]]) for part in self.parts}
            data[self.label] = torch.tensor(rows["p"].to_numpy(), dtype=torch.float32)
            return data

        key = f"nights:{split}:{size}:" + ",".join(map(str, self.ids))
        self.data = (cache or DecodeCache()).get([p for part in self.parts for p in files[part]], key, build)

    def __len__(self) -> int:
        return len(self.ids)

    def tensors(self) -> dict[str, torch.Tensor]:
        return self.data


def nights_2afc(split: str, root: str | os.PathLike | None = None, size: int = SIZE) -> NightsTwoAFC:
    """NIGHTS ``split`` (see :data:`SPLITS`) from the data root's ``nights`` folder."""
    return NightsTwoAFC(dataset_path("nights", root), split, size)


# --------------------------------------------------------------------------- downloading


class _RangeReader(io.RawIOBase):
    """A remote file read by HTTP range requests, seekable: enough for ``zipfile`` to read one
    member of a large archive without fetching the rest."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.url, self.timeout, self.pos = url, timeout, 0
        request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            whole = answer.headers.get("Content-Range", "").rpartition("/")[2]
            if answer.status != 206 or not whole.isdigit():
                raise DplError(f"{url} does not answer range requests; download the whole archive instead")
            self.size = int(whole)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            data = answer.read(end - self.pos)  # a server may send more than the range's end
        self.pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def zip_member(url: str, member_suffix: str) -> bytes:
    """The bytes of the member of the remote zip ``url`` whose name ends with ``member_suffix``
    (the archive's directory and that member only are fetched)."""
    with zipfile.ZipFile(_RangeReader(url)) as archive:
        names = [n for n in archive.namelist() if n.endswith(member_suffix)]
        if not names:
            raise DplError(f"{url} holds no {member_suffix}")
        return archive.read(min(names, key=len))


def download_nights(root: str | os.PathLike | None = None, subset: int | None = None,
                    zip_url: str = NIGHTS_ZIP, chunk_url: str = NIGHTS_CHUNK) -> Path:
    """Fetch NIGHTS into ``<data root>/nights`` by its chunks: ``data.csv`` out of the whole
    archive (range requests), then ``ref`` and ``distort`` folders 000 to ``subset - 1`` (all
    100 by default), each chunk verified on first use and extracted once. Resumable: finished
    folders are skipped. Returns the folder."""
    chunks = CHUNKS if subset is None else subset
    if not 1 <= chunks <= CHUNKS:
        raise DplError(f"subset is a number of NIGHTS folders, 1 to {CHUNKS}; got {subset}")
    base = data_root(root)
    folder = base / "nights"
    from filelock import FileLock

    with FileLock(lock_path(base, "nights")):
        try:
            if not (folder / "data.csv").is_file():
                atomic_write(folder / "data.csv", zip_member(zip_url, "data.csv"))
            for index in range(chunks):
                for kind in ("ref", "distort"):
                    if (folder / kind / f"{index:03d}").is_dir():
                        continue
                    archive = download(chunk_url.format(kind=kind, index=index),
                                       base / ".downloads" / "nights" / kind / f"{index:03d}.zip", None,
                                       what=f"NIGHTS {kind} {index:03d}", progress=False)
                    staging = folder / kind / f".{index:03d}.partial"
                    staging.mkdir(parents=True, exist_ok=True)
                    extract_archive(archive, staging)
                    inner = staging / f"{index:03d}"  # a chunk holds its folder DDD/
                    os.replace(inner if inner.is_dir() else staging, folder / kind / f"{index:03d}")
                    if staging.exists():
                        staging.rmdir()
        except (OSError, urllib.error.URLError, UnavailableError) as err:
            raise UnavailableError(f"NIGHTS could not be downloaded ({err}). By hand: {zip_url} (58 GB unzipped; "
                                   f"unzip it into {base}), or the chunks {chunk_url.format(kind='ref', index=0)} ... "
                                   f"with data.csv from the archive, into {folder}") from err
    return folder
