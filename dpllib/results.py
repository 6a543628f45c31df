"""Result records (one JSON per cell) and the tidy results table.

A record holds the cell's full config, the settings its budget resolved to, the environment
(device, versions, git commit), status ('ok' or 'failed' with a traceback), wall time, loss
curve and tidy rows {point, alias, metric, split, value}. Records are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pandas as pd

from .errors import DplError

SCHEMA_VERSION = 1
TABLE_SCHEMA_VERSION = 1
# What identifies a cell: everything that can change its numbers (not where it runs or writes).
ID_KEYS = ("benchmark", "network", "points", "weights", "dataset", "budget", "batch_size", "seed", "overrides")


def cell_id(config: dict) -> str:
    """12 hex digits of the sha256 of the cell's identifying config (canonical JSON)."""
    key = {k: config.get(k) for k in ID_KEYS}
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def record_path(config: dict, results_dir: str | os.PathLike) -> Path:
    """Where a cell's record lives: ``<results_dir>/<benchmark>/<cell_id>.json``."""
    return Path(results_dir) / config["benchmark"] / f"{cell_id(config)}.json"


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file in the same folder, fsync, then rename: readers see the old
    file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_record(record: dict, path: str | os.PathLike | None = None) -> Path:
    """Write ``record`` (atomically) to ``path`` or to its default place under its config's
    output_dir. Non-finite numbers are refused: a failure must say so, not hide in a NaN."""
    for r in record.get("rows", []):
        if not math.isfinite(r["value"]):
            raise DplError(f"record row {r} is not finite; record the cell as failed instead")
    path = Path(path) if path else record_path(record["config"], record["config"]["output_dir"])
    record = {**record, "cell_id": cell_id(record["config"])}
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=str))


def read_record(path: str | os.PathLike) -> dict:
    """Read a record; older schema versions are refused with a clear message."""
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


def records(results_dir: str | os.PathLike) -> list[dict]:
    """All records under ``results_dir`` (``*/*.json``), sorted by path."""
    return [read_record(p) for p in sorted(Path(results_dir).glob("*/*.json"))]


def table(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One tidy row per cell, point, metric and split, joined with network and point metadata:
    top1, depth, has_batchnorm, params, pretrained (weights == 'imagenet'), family."""
    from .networks import network_info, resolve_point
    from .trainers.common import BASELINE

    rows = []
    for rec in records(results_dir):
        cfg = rec["config"]
        base = {"cell_id": rec["cell_id"], "benchmark": cfg["benchmark"], "network": cfg["network"],
                "weights": cfg["weights"], "dataset": cfg["dataset"], "budget": cfg["budget"],
                "seed": cfg["seed"], "status": rec["status"], "wall_time_s": rec.get("wall_time_s")}
        if cfg["network"] == BASELINE:
            meta = {"family": BASELINE, "top1": None, "params": None, "has_batchnorm": None}
        else:
            info = network_info(cfg["network"])
            meta = {"family": info.family, "top1": info.top1, "params": info.params,
                    "has_batchnorm": info.has_batchnorm}
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
    frame.attrs["schema_version"] = TABLE_SCHEMA_VERSION
    return frame


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Parquet with the table schema version in its metadata; written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           b"dpl_schema_version": str(TABLE_SCHEMA_VERSION).encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table; another schema version is refused with a clear message."""
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    version = (arrow.schema.metadata or {}).get(b"dpl_schema_version", b"?").decode()
    if version != str(TABLE_SCHEMA_VERSION):
        raise DplError(f"results table {path} has schema version {version}, expected "
                       f"{TABLE_SCHEMA_VERSION}; rebuild it with dpllib.results.table(results_dir)")
    return arrow.to_pandas()
