"""Where dpllib reads data and writes caches."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DplError

DATA_ROOT_ENV = "DPL_DATA_ROOT"
CACHE_ENV = "DPL_CACHE"
RESULTS_ENV = "DPL_RESULTS"


def cache_dir() -> Path:
    """dpllib's writable cache (``$DPL_CACHE``, default ``~/.cache/dpllib``)."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "dpllib")).expanduser().resolve()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$DPL_DATA_ROOT``, else ``~/.cache/dpllib/data``.

    It may be read-only: downloads go there only when it is writable, generated sets and
    decode caches always go to :func:`cache_dir`.
    """
    path = Path(root if root is not None else os.environ.get(DATA_ROOT_ENV, cache_dir() / "data"))
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise DplError(f"the data root {path} does not exist. Point it at your data folder with "
                       f"the environment variable {DATA_ROOT_ENV}=/path/to/data (or the data_root "
                       "argument), or create it to let dpllib download into it.")
    return path


RESOURCES = ("notebooks", "book")  # shipped beside the package (setup.py copies them into a wheel)


def source_checkout() -> Path | None:
    """The source checkout dpllib runs from (an editable install), or None (an installed
    wheel). The only place that looks above the package."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and all((checkout / r).is_dir() for r in RESOURCES):
        return checkout
    return None


def resource(name: str) -> Path:
    """A shipped folder: ``notebooks`` (benchmark and analysis notebooks) or ``book`` (the book's
    sources): the checkout's own, else the copy inside the installed package."""
    if name not in RESOURCES:
        raise DplError(f"resource must be one of {RESOURCES}, got {name!r}")
    checkout = source_checkout()
    path = checkout / name if checkout else Path(__file__).resolve().parent / "_resources" / name
    if not path.is_dir():
        raise DplError(f"dpllib's {name} folder is missing at {path}; reinstall dpllib (pip install dpllib)")
    return path


def results_root() -> Path:
    """The folder that holds each preset's results folder, always absolute: ``$DPL_RESULTS``;
    else ``results/`` in the source checkout dpllib runs from; else ``results/`` in the current
    folder. The CLI, the grid and the book all use this one rule."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    checkout = source_checkout()
    return (checkout or Path.cwd().resolve()) / "results"


def preset_results_dir(preset_name: str, explicit: str | os.PathLike | None = None) -> Path:
    """A preset's results folder: ``explicit`` (made absolute) or ``results_root()/preset_name``."""
    return Path(explicit).expanduser().resolve() if explicit else results_root() / preset_name


def shipped_measurements(folder: str) -> dict[str, dict]:
    """The measurements shipped in ``dpllib/presets/<folder>/*.json`` ({file stem: contents},
    in file-name order): step costs, point costs."""
    import json
    from importlib import resources

    root = resources.files("dpllib") / "presets" / folder
    return {Path(str(p)).stem: json.loads(p.read_text()) for p in sorted(root.iterdir(), key=str)
            if str(p).endswith(".json")}
