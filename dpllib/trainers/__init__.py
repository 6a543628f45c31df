"""The four benchmarks: ``run(config) -> (record, examples)`` in each module, and
:func:`run_notebook_cell`, the one call a benchmark notebook's run cell makes."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import CellConfig
from ..errors import DplError
from . import autoencoding, segmentation, similarity, super_resolution
from .loop import NonFiniteLoss

RUNNERS = {"similarity": similarity.run, "super_resolution": super_resolution.run,
           "segmentation": segmentation.run, "autoencoding": autoencoding.run}


class CellFailed(RuntimeError):
    """A benchmark cell ended with status 'failed' (its record says why)."""


def run_notebook_cell(benchmark: str, record_path: str | None = None, progress: bool = True,
                      **parameters) -> tuple[dict, dict]:
    """Validate the notebook's parameters, train and test (saving progress to ``<record>.ckpt/``
    and resuming from it after an interruption), write the record (and its examples beside it)
    atomically, print one line. Returns (record, examples); raises CellFailed when the cell
    failed, so papermill marks the notebook as failed too.

    ``parameters`` are the keys of :class:`dpllib.config.CellConfig` except ``benchmark``;
    ``output_dir`` None means ``results_root()/notebooks``; ``record_path`` None means
    ``<output_dir>/<benchmark>/<cell id>.json``.
    """
    from ..paths import results_root
    from ..results import record_path as default_record_path
    from ..results import write_record

    if benchmark not in RUNNERS:
        raise DplError(f"benchmark must be one of {sorted(RUNNERS)}, got {benchmark!r}")
    parameters["output_dir"] = str(Path(parameters.get("output_dir") or results_root() / "notebooks").resolve())
    cfg = CellConfig.from_dict({"benchmark": benchmark, **parameters})
    path = Path(record_path) if record_path else default_record_path(cfg.to_dict(), cfg.output_dir)
    checkpoint_dir = path.with_suffix(".ckpt")
    record, examples = RUNNERS[benchmark](cfg, progress=progress, checkpoint_dir=checkpoint_dir)
    written = write_record(record, path, examples)
    if record["status"] == "ok":
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    print(f"{record['status']} in {record['wall_time_s']:.1f} s on {record['environment']['device_name']} -> {written}")
    if record["status"] != "ok":
        raise CellFailed(record["error"] + "\n" + record["traceback"])
    return record, examples


__all__ = ["CellFailed", "NonFiniteLoss", "RUNNERS", "autoencoding", "run_notebook_cell", "segmentation",
           "similarity", "super_resolution"]
