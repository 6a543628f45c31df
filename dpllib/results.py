"""Result records (one JSON per cell) and the tidy results table.

A record holds the cell's full config, the settings its budget resolved to, the environment
(device, versions, git commit), status ('ok' or 'failed' with a traceback), wall time, loss
curves and tidy rows {point, alias, metric, split, value}. Example images (for figures) sit
beside it in ``<cell id>.examples.pt``. Everything is written atomically, examples first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import BASELINE, CellConfig, entry_weights
from .errors import DplError
from .files import atomic_write

SCHEMA_VERSION = 2  # of a record: the one place it is written (2: loss curves per trained model everywhere)
TABLE_SCHEMA_VERSION = 1
# What identifies a cell: everything that can change its numbers (not where it runs or writes).
ID_KEYS = ("benchmark", "network", "points", "weights", "dataset", "budget", "batch_size", "seed", "overrides")
# The dpllib sources that compute a cell's numbers; their digest is each record's code_version.
NUMERIC_SOURCES = ("config.py", "loss.py", "loss_network.py", "features.py", "catalog.py", "networks.py",
                   "weights.py", "metrics.py", "datasets", "training", "benchmarks")


RUN_MANIFEST = "run.json"  # beside a preset's records: the preset as run and its cell ids


def source_digest(names: tuple[str, ...] | None = None) -> str:
    """12 hex digits of the sha256 of dpllib's sources (files or folders named relative to the
    package; None: all of them)."""
    package = Path(__file__).resolve().parent
    targets = [package / n for n in names] if names is not None else [package]
    digest = hashlib.sha256()
    for target in targets:
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def code_version() -> str:
    """The digest of the dpllib sources that compute a cell's numbers (NUMERIC_SOURCES): a
    record from other code is stale."""
    return source_digest(NUMERIC_SOURCES)


def cell_id(config: dict) -> str:
    """12 hex digits of the sha256 of the cell's identifying config (canonical JSON)."""
    key = {k: config.get(k) for k in ID_KEYS}
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def record_path(config: dict, results_dir: str | os.PathLike) -> Path:
    """Where a cell's record lives: ``<results_dir>/<benchmark>/<cell_id>.json``."""
    return Path(results_dir) / config["benchmark"] / f"{cell_id(config)}.json"


def examples_path(record: str | os.PathLike) -> Path:
    """Where a record's example images live: ``<cell id>.examples.pt`` beside the record."""
    return Path(record).with_suffix(".examples.pt")


# --------------------------------------------------------------------------- assembling a record


def row(point: str | None, alias: str | None, metric: str, value: float, split: str = "all") -> dict:
    """One tidy result row."""
    return {"point": point, "alias": alias, "metric": metric, "split": split, "value": float(value)}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    """``package.__version__`` where the process imported it, else the installed distribution's
    version (None when it is not installed): a record made without torch loads no torch."""
    import importlib.metadata
    import sys

    module = sys.modules.get(package)
    if module is not None:
        return module.__version__
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Device, library versions and git commit, for the record. The device and thread count are
    torch's where the process computed with torch, else the CPU's."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = platform.processor() or "cpu"
    return {"device_name": device, "python": platform.python_version(), "torch": _version("torch"),
            "torchvision": _version("torchvision"), "timm": _version("timm"),
            "dpllib": __import__("dpllib").__version__, "git_commit": _git_commit(),
            "threads": torch.get_num_threads() if torch is not None else os.cpu_count(), "host": platform.node()}


def new_record(config: dict, settings: dict, status: str, wall_time_s: float, **fields) -> dict:
    """A record of this schema: the cell's config and resolved settings, the environment, the
    status ('ok' or 'failed'), the wall time in seconds, and the trainer's fields (rows, curves)."""
    return {"schema": SCHEMA_VERSION, "code_version": code_version(), "config": config, "settings": settings,
            "environment": environment(), "status": status, "rows": [], **fields, "wall_time_s": wall_time_s}


def failed_record(config: dict, settings: dict, error: str, trace: str, wall_time_s: float) -> dict:
    """The record of a failed cell: no numbers, the error's last line and the traceback."""
    return new_record(config, settings, "failed", wall_time_s, error=error, traceback=trace)


def make_record(cfg: CellConfig, run: Callable[[], dict]) -> tuple[dict, dict]:
    """Run ``run() -> {"rows": [...], "loss_curve": ..., "examples": {...}, ...}`` and wrap its
    fields in a result record; the examples (tensors for figures) come back beside the record.
    A failure (NaN loss, any exception) becomes status 'failed' with its traceback, never a number."""
    start = time.perf_counter()
    try:
        out = run()
    except Exception as err:  # recorded, not raised: the grid goes on
        return failed_record(cfg.to_dict(), cfg.settings(), f"{type(err).__name__}: {err}",
                             traceback.format_exc(), time.perf_counter() - start), {}
    examples = out.pop("examples", {})
    return new_record(cfg.to_dict(), cfg.settings(), "ok", time.perf_counter() - start, **out), examples


# --------------------------------------------------------------------------- reading and writing


def write_record(record: dict, path: str | os.PathLike | None = None, examples: dict | None = None) -> Path:
    """Write ``record`` (atomically) to ``path`` or to its default place under its config's
    output_dir; ``examples`` (nested dicts of tensors) go to :func:`examples_path` first, so a
    record on disk always has its examples. Non-finite numbers are refused: a failure must say
    so, not hide in a NaN."""
    for r in record.get("rows", []):
        if not math.isfinite(r["value"]):
            raise DplError(f"record row {r} is not finite; record the cell as failed instead")
    path = Path(path) if path else record_path(record["config"], record["config"]["output_dir"])
    if examples:
        import torch

        atomic_write(examples_path(path), lambda tmp: torch.save(examples, tmp))
    record = {**record, "cell_id": cell_id(record["config"])}
    return atomic_write(path, json.dumps(record, indent=1, sort_keys=True, default=str))


def read_record(path: str | os.PathLike) -> dict:
    """Read a record; other schema versions are refused with a clear message."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DplError(f"cannot read record {path}: {err}") from err
    schema = record.get("schema")
    if schema != SCHEMA_VERSION:
        raise DplError(f"record {path} has schema {schema}, this dpllib reads schema {SCHEMA_VERSION}; "
                       "rerun that cell (delete the record) or use the dpllib version that wrote it")
    return record


def read_examples(record: str | os.PathLike) -> dict:
    """The example images written with the record at ``record`` ({} when it has none)."""
    path = examples_path(record)
    if not path.is_file():
        return {}
    import torch

    return torch.load(path, weights_only=True)


def records(results_dir: str | os.PathLike, cell_ids: set[str] | None = None) -> list[dict]:
    """The records under ``results_dir`` (``*/*.json``), sorted by path; only those of
    ``cell_ids`` when given."""
    paths = sorted(Path(results_dir).glob("*/*.json"))
    return [read_record(p) for p in paths if cell_ids is None or p.stem in cell_ids]


def write_manifest(results_dir: str | os.PathLike, preset: dict, cell_ids: list[str]) -> Path:
    """The preset as run and its cells' ids, beside the records (the book and ``dpl table``
    read which records belong to the run from here)."""
    return atomic_write(Path(results_dir) / RUN_MANIFEST,
                        json.dumps({"preset": preset, "cell_ids": sorted(cell_ids)}, indent=1, default=str))


def read_manifest(results_dir: str | os.PathLike) -> tuple[dict, set[str]]:
    """(preset, cell ids) of the run in ``results_dir``."""
    path = Path(results_dir) / RUN_MANIFEST
    try:
        manifest = json.loads(path.read_text())
        return manifest["preset"], set(manifest["cell_ids"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DplError(f"cannot read the run manifest {path} ({err}); `dpl run PRESET` writes it") from err


def references(recs: list[dict]) -> pd.DataFrame:
    """The references the cells recorded beside their rows (bicubic and nearest upscaling, the
    all-road answer, PCA-64 probes, SSIM): one row per benchmark, seed, method, metric, split."""
    rows = [{"benchmark": rec["config"]["benchmark"], "seed": rec["config"]["seed"], "dataset": rec["config"]["dataset"],
             **ref} for rec in recs if rec["status"] == "ok" for ref in rec.get("references", [])]
    frame = pd.DataFrame(rows, columns=["benchmark", "seed", "dataset", "method", "metric", "split", "value"])
    return frame.groupby(["benchmark", "seed", "dataset", "method", "metric", "split"], as_index=False)["value"].mean()


def cell_examples(results_dir: str | os.PathLike, recs: list[dict]) -> list[tuple[dict, dict]]:
    """(config, examples) of every ok record that wrote examples."""
    out = []
    for rec in recs:
        if rec["status"] == "ok":
            examples = read_examples(Path(results_dir) / rec["config"]["benchmark"] / f"{rec['cell_id']}.json")
            if examples:
                out.append((rec["config"], examples))
    return out


@dataclass
class Run:
    """A run as the book's chapters read it: the table of the preset's cells, the preset, the
    records, the references and (read on first use) the examples."""

    table: pd.DataFrame
    preset: dict
    records: list[dict]
    references: pd.DataFrame
    results_dir: Path

    @functools.cached_property
    def examples(self) -> list[tuple[dict, dict]]:
        """(config, examples) of the records that wrote examples (:func:`cell_examples`), read when
        first asked for: a chapter that shows none loads no tensors (and no torch)."""
        return cell_examples(self.results_dir, self.records)

    def first_datasets(self) -> dict[str, str]:
        """{benchmark: its first data set this run has}, in the benchmark's own order of data
        sets (the study's first)."""
        from .registry import get_benchmark

        ran = set(zip(self.table["benchmark"], self.table["dataset"]))
        return {b: next(d for d in get_benchmark(b).dataset_names if (b, d) in ran)
                for b in dict.fromkeys(self.table["benchmark"])}

    def on_datasets(self, chosen: dict[str, str]) -> Run:
        """This run with only the data set ``chosen`` for each benchmark ({benchmark: data
        set}; other benchmarks are kept whole)."""
        def keep(bench: str, dataset: str) -> bool:
            return chosen.get(bench, dataset) == dataset

        table = self.table[[keep(b, d) for b, d in zip(self.table["benchmark"], self.table["dataset"])]]
        refs = self.references[[keep(b, d) for b, d in zip(self.references["benchmark"], self.references["dataset"])]]
        records = [r for r in self.records if keep(r["config"]["benchmark"], r["config"]["dataset"])]
        return Run(table, self.preset, records, refs, self.results_dir)


def yours(preset: dict) -> set[tuple[str, str]]:
    """(network, weights) of the preset's entries marked ``yours`` (``dpl evaluate``)."""
    out = set()
    for e in preset.get("networks") or []:
        if e.get("yours"):
            out |= {(e["network"], w) for w in entry_weights(e)}
    return out


def mark_yours(frame: pd.DataFrame, preset: dict) -> pd.DataFrame:
    """``frame`` with ``yours`` True on the rows of the user's networks in ``preset``."""
    if frame.empty:
        return frame
    mine = yours(preset)
    return frame.assign(yours=[(n, w) in mine for n, w in zip(frame["network"], frame["weights"])])


def load_run(results_dir: str | os.PathLike, table_path: str | os.PathLike | None = None) -> Run:
    """The run in ``results_dir`` (its manifest names the cells; each record is read once); the
    table is read from ``table_path`` when given. The user's networks (``dpl evaluate``) are
    marked in the table's ``yours`` column."""
    preset, ids = read_manifest(results_dir)
    recs = records(results_dir, ids)
    frame = mark_yours(read_table(table_path) if table_path else table_of(recs), preset)
    return Run(frame, preset, recs, references(recs), Path(results_dir))


# --------------------------------------------------------------------------- the table


def table(results_dir: str | os.PathLike, cell_ids: set[str] | None = None) -> pd.DataFrame:
    """The tidy table (:func:`table_of`) of the records under ``results_dir`` (only those of
    ``cell_ids`` when given: a run's cells, :func:`read_manifest`)."""
    return table_of(records(results_dir, cell_ids))


def table_of(recs: list[dict]) -> pd.DataFrame:
    """One tidy row per cell, point, metric and split, joined with network and point metadata:
    top1, depth, has_batchnorm, params, pretrained (weights == 'imagenet'), family, training
    (what the weights learned from) and kind (CNN or transformer)."""
    from .networks import network_info, resolve_point

    rows = []
    for rec in recs:
        cfg = rec["config"]
        base = {"cell_id": rec["cell_id"], "benchmark": cfg["benchmark"], "network": cfg["network"],
                "weights": cfg["weights"], "dataset": cfg["dataset"], "budget": cfg["budget"],
                "seed": cfg["seed"], "status": rec["status"], "wall_time_s": rec.get("wall_time_s"),
                "code_version": rec.get("code_version")}
        if cfg["network"] == BASELINE:
            meta = {"family": BASELINE, "top1": None, "params": None, "has_batchnorm": None, "training": None,
                    "kind": None}
        else:
            info = network_info(cfg["network"])
            meta = {"family": info.family, "top1": info.top1 if cfg["weights"] in ("imagenet", "random") else None,
                    "params": info.params, "has_batchnorm": info.has_batchnorm,  # a weights file's accuracy is unknown
                    "training": info.training if cfg["weights"] == "imagenet" else cfg["weights"] if cfg["weights"] == "random"
                    else "your file", "kind": info.kind}
        if rec["status"] != "ok":
            rows.append({**base, **meta, "point": None, "alias": None, "metric": None, "split": None,
                         "value": None, "depth": None, "study_index": None})
            continue
        for r in rec["rows"]:
            depth = study_index = None
            if cfg["network"] != BASELINE and r["point"]:
                p = resolve_point(cfg["network"], r["point"])
                depth, study_index = p.depth, p.study_index
            rows.append({**base, **meta, **r, "depth": depth, "study_index": study_index})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["pretrained"] = frame["weights"] == "imagenet"
        frame["yours"] = False  # a network the user evaluated beside a preset (mark_yours)
    frame.attrs["schema_version"] = TABLE_SCHEMA_VERSION
    return frame


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Parquet with the table schema version in its metadata; written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           b"dpl_schema_version": str(TABLE_SCHEMA_VERSION).encode()})
    return atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table; another schema version is refused with a clear message."""
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    version = (arrow.schema.metadata or {}).get(b"dpl_schema_version", b"?").decode()
    if version != str(TABLE_SCHEMA_VERSION):
        raise DplError(f"results table {path} has schema version {version}, expected "
                       f"{TABLE_SCHEMA_VERSION}; rebuild it with dpllib.results.table(results_dir)")
    return arrow.to_pandas()
