"""The data set registry, verified fetching into the data root, image decoding and the decode cache."""

from __future__ import annotations

import hashlib
import html.parser
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image, UnidentifiedImageError

from ..download import download, sha256_of
from ..errors import DplError, UnavailableError
from ..files import atomic_write
from ..paths import cache_dir, data_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set's public source. ``sha256``: the published digest, checked on
    download; None where none is published: trust on first use (the digest of the first
    download is recorded beside it, ``<file>.sha256``, and checked from then on)."""

    url: str
    sha256: str | None = None
    size: int | None = None  # bytes, where known
    listing: bool = False  # url is an HTML index whose linked image files are fetched


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set lives under the data root and where it comes from."""

    name: str
    folder: str  # relative to the data root
    required: tuple[str, ...]  # sub-folders that must exist (relative to folder)
    files: tuple[tuple[RemoteFile, str], ...] = ()  # (source, sub-folder to extract/put it in)
    moves: tuple[tuple[str, str], ...] = ()  # after extraction: (from, to) inside folder
    layout: str = ""
    citation: str = ""


BAPPS_URL = "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset/{}.tar.gz"
MASS_ROADS_URL = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/{}/{}/index.html"
NIGHTS_ZIP = "https://data.csail.mit.edu/nights/nights.zip"  # dreamsim's dataset/download_dataset.sh

DATASETS: dict[str, DatasetSpec] = {
    "bapps_2afc_train": DatasetSpec(
        "bapps_2afc_train", "bapps", ("2afc/train",),
        files=((RemoteFile(BAPPS_URL.format("twoafc_train")), "."),),
        layout="bapps/2afc/train/{traditional,cnn,mix}/{ref,p0,p1}/*.png + judge/*.npy",
        citation="Zhang et al. 2018, The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"),
    "bapps_2afc_val": DatasetSpec(
        "bapps_2afc_val", "bapps", ("2afc/val",),
        files=((RemoteFile(BAPPS_URL.format("twoafc_val")), "."),),
        layout="bapps/2afc/val/{cnn,color,deblur,frameinterp,superres,traditional}/{ref,p0,p1}/*.png + judge/*.npy",
        citation="Zhang et al. 2018"),
    "bapps_jnd_val": DatasetSpec(
        "bapps_jnd_val", "bapps", ("jnd/val",),
        files=((RemoteFile(BAPPS_URL.format("jnd")), "."),),
        layout="bapps/jnd/val/{cnn,traditional}/{p0,p1}/*.png + same/*.npy",
        citation="Zhang et al. 2018"),
    "set5": DatasetSpec(
        "set5", "sr/Set5", (".",),
        files=((RemoteFile("https://huggingface.co/datasets/eugenesiow/Set5/resolve/main/data/Set5_HR.tar.gz"), "."),),
        moves=(("Set5_HR", "."),),
        layout="sr/Set5/*.png (5 HR colour images)", citation="Bevilacqua et al. 2012"),
    "set14": DatasetSpec(
        "set14", "sr/Set14", (".",),
        files=((RemoteFile("https://huggingface.co/datasets/eugenesiow/Set14/resolve/main/data/Set14_HR.tar.gz"), "."),),
        moves=(("Set14_HR", "."),),
        layout="sr/Set14/*.png (14 HR images)", citation="Zeyde et al. 2010"),
    "bsds500": DatasetSpec(
        "bsds500", "bsds500", ("images/train", "images/val", "images/test"),
        files=((RemoteFile("http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"), "."),),
        moves=(("BSR/BSDS500/data/images", "images"),),
        layout="bsds500/images/{train,val,test}/*.jpg (val = BSD100)", citation="Arbelaez et al. 2011"),
    "coco2014_train": DatasetSpec(
        "coco2014_train", "coco", ("train2014",),
        # sha256 and size as published in TensorFlow Datasets' url_checksums/coco2014.txt
        files=((RemoteFile("http://images.cocodataset.org/zips/train2014.zip",
                           sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
                           size=13510573713), "."),),
        layout="coco/train2014/COCO_train2014_*.jpg", citation="Lin et al. 2014"),
    "mass_roads": DatasetSpec(
        "mass_roads", "mass_roads", ("train", "valid", "test"),
        files=tuple((RemoteFile(MASS_ROADS_URL.format(split, kind), listing=True), f"{split}/{kind}")
                    for split in ("train", "valid", "test") for kind in ("sat", "map")),
        layout="mass_roads/{train,valid,test}/{sat,map}/*.tif(f) (official split), or "
               "mass_roads/{images,masks}/*.png (a subset, split by dpllib)",
        citation="Mnih 2013, Machine Learning for Aerial Image Labeling"),
    "nights": DatasetSpec(
        "nights", "nights", ("ref", "distort", "data.csv"),
        files=((RemoteFile(NIGHTS_ZIP), "."),), moves=(("nights", "."),),
        layout="nights/{ref/DDD/FFF.png, distort/DDD/FFF_0.png + FFF_1.png, data.csv} (58 GB; by chunks, or a "
               "subset of them: dpl data nights --subset N)",
        citation="Fu et al. 2023, DreamSim: Learning New Dimensions of Human Visual Similarity"),
    "cifar10_jpeg": DatasetSpec(
        "cifar10_jpeg", "cifar10", ("train", "test"),
        layout="cifar10/{train,test}/CLASS/*.jpg (label = folder); the python version is "
               "downloaded by torchvision instead", citation="Krizhevsky 2009"),
}


def dataset_path(name: str, root: str | os.PathLike | None = None, download_missing: bool = True) -> Path:
    """The folder of data set ``name`` under the data root, fetched first when missing and
    downloadable. Raises UnavailableError naming the URLs and the layout expected."""
    if name not in DATASETS:
        from ..errors import close_matches

        raise DplError(f"unknown data set {name!r}; close matches: {close_matches(name, DATASETS)}")
    spec = DATASETS[name]
    base = data_root(root)
    folder = base / spec.folder
    if all((folder / r).exists() for r in spec.required):
        return folder
    # the flat Massachusetts Roads subset is a valid layout too
    if name == "mass_roads" and (folder / "images").is_dir() and (folder / "masks").is_dir():
        return folder
    urls = ", ".join(f.url for f, _ in spec.files) or "(no public archive; see the layout)"
    manual = (f"Data set {name!r} is not in the data root {base}. Expected layout: {spec.layout}. "
              f"Source: {urls}.")
    if not spec.files or not download_missing:
        raise UnavailableError(manual + " Place the files there by hand.")
    if not os.access(base, os.W_OK):
        raise UnavailableError(manual + " The data root is read-only, so dpllib cannot download "
                               "into it: download there by hand or point DPL_DATA_ROOT elsewhere.")
    # one process fetches, the others (a job array on one data root) wait and find it there
    with FileLock(lock_path(base, name)):
        if all((folder / r).exists() for r in spec.required):
            return folder
        try:
            fetch(spec, base)
        except UnavailableError as err:
            raise UnavailableError(f"{manual} Download failed: {err}") from err
    return folder


def lock_path(folder: Path, name: str) -> Path:
    """The lock file that serialises fetching or generating ``name`` in ``folder``: in
    ``folder/.locks``, or in the cache when ``folder`` is read-only (nothing is written there)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.access(folder, os.W_OK):
        locks = folder / ".locks"
    else:
        locks = cache_dir() / "locks" / hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    locks.mkdir(parents=True, exist_ok=True)
    return locks / f"{name}.lock"


def fetch(spec: DatasetSpec, base: Path) -> None:
    """Download and extract every file of ``spec`` into a staging folder beside the data set,
    then move each new sub-folder into ``base/spec.folder`` with one rename: a data set's
    folders appear only once complete, and what is already there is neither copied nor touched."""
    downloads = base / ".downloads"
    final = base / spec.folder
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=base))
    try:
        for remote, sub in spec.files:
            target = staging / sub
            target.mkdir(parents=True, exist_ok=True)
            if remote.listing:
                for url in _listed_files(remote.url):
                    name = Path(urllib.parse.urlparse(url).path).name
                    path = download(url, downloads / spec.name / sub / name, None, what=f"{spec.name} {name}", progress=False)
                    shutil.copy2(path, target / name)
                continue
            archive = downloads / Path(urllib.parse.urlparse(remote.url).path).name
            download(remote.url, archive, remote.sha256 or _recorded_sha256(archive), what=spec.name)
            _record_sha256(archive)
            extract_archive(archive, target)
        for src, dst in spec.moves:  # archives nest their content; bring it to the layout
            src_path, dst_path = staging / src, staging / dst
            if not src_path.exists():
                continue
            dst_path.mkdir(parents=True, exist_ok=True)
            for item in src_path.iterdir():
                os.replace(item, dst_path / item.name)
            src_path.rmdir()
        missing = [r for r in spec.required if not (staging / r).exists() and not (final / r).exists()]
        if missing:
            raise DplError(f"{spec.name}: after download the folders {missing} are missing "
                           f"(expected layout: {spec.layout}); the archive may have changed")
        _merge(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _merge(src: Path, dst: Path) -> None:
    """Move ``src``'s entries into ``dst``: a new entry by one rename, a folder present in both
    by merging its entries, a file present in both is replaced."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir() and target.is_dir():
            _merge(item, target)
        else:
            os.replace(item, target)


def _recorded_sha256(archive: Path) -> str | None:
    record = archive.with_name(archive.name + ".sha256")
    return record.read_text().strip() if record.is_file() else None


def _record_sha256(archive: Path) -> None:
    record = archive.with_name(archive.name + ".sha256")
    if not record.is_file():
        record.write_text(sha256_of(archive) + "\n")


def extract_archive(archive: Path, target: Path) -> None:
    """Unpack a zip or tar ``archive`` into ``target`` (unsafe member paths refused); any other
    file is copied there as it is."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                _safe_member(member, archive)
            z.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(target, filter="data")  # refuses absolute paths and '..'
    else:
        shutil.copy2(archive, target / archive.name)


def _safe_member(member: str, archive: Path) -> None:
    if member.startswith("/") or ".." in Path(member).parts:
        raise DplError(f"{archive} holds an unsafe path {member!r}; refusing to extract it")


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links += [v for k, v in attrs if k == "href" and v]


def _listed_files(index_url: str) -> list[str]:
    try:
        with urllib.request.urlopen(index_url, timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
    except OSError as err:
        raise UnavailableError(f"could not read the file listing {index_url} ({err})") from err
    parser = _Links()
    parser.feed(page)
    return [urllib.parse.urljoin(index_url, link) for link in parser.links
            if link.lower().endswith(IMAGE_SUFFIXES)]


# --------------------------------------------------------------------------- images


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name. A missing folder is an error."""
    if not folder.is_dir():
        raise DplError(f"expected the folder {folder}, which does not exist: check the data set's layout")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image to H x W x 3 uint8 RGB (or H x W for mode 'L').

    Grayscale is repeated to RGB, RGBA/LA lose alpha, palette images are expanded, 16-bit
    images are scaled to 8 bit. An unreadable or truncated file is an error naming it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                scale = 65535.0 if arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr / scale * 255 + 0.5, 0, 255).astype(np.uint8))
            img = img.convert(mode)
            return np.array(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DplError(f"cannot read image {path}: {err}. The file is damaged or not an image; "
                       "replace it (re-download the data set).") from err


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]; H x W -> 1 x H x W."""
    t = torch.from_numpy(img)
    t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
    return t.float().div_(255)


class DecodeCache:
    """Decoded, transformed tensors kept on disk, keyed by the sources' sha256 and the transform.

    ``get(paths, transform_key, build)`` returns ``build()``'s tensor dict, computed once;
    later calls (other processes too) load it from ``cache_dir()/decoded``.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = folder or cache_dir() / "decoded"

    def key(self, paths: Sequence[Path], transform_key: str) -> str:
        digest = hashlib.sha256(transform_key.encode())
        for path in paths:
            digest.update(_file_digest(path).encode())
        return digest.hexdigest()[:32]

    def get(self, paths: Sequence[Path], transform_key: str,
            build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        path = self.folder / f"{self.key(paths, transform_key)}.pt"
        if path.is_file():
            try:
                return torch.load(path, weights_only=True)
            except Exception:  # a damaged cache entry is rebuilt, never trusted
                path.unlink(missing_ok=True)
        value = build()
        atomic_write(path, lambda tmp: torch.save(value, tmp))
        return value


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) within the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_of(path)
    return _DIGESTS[key]
