"""The training engine the use cases share (``points``: one model per extraction point, trained in
lockstep; ``loop``: the fit loop with its checkpoints; ``common``: devices, seeds, the cell's
checkpoint) and :func:`run_cell_in_notebook`, the one call the benchmark notebook's run cell
makes. Importing this package loads no use case (nor torch): the registry imports a use case's
module when it is first looked up."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import BASELINE, CellConfig
from ..paths import results_root
from ..registry import get_benchmark
from ..results import record_path as default_record_path
from ..results import write_record


class CellFailed(RuntimeError):
    """A benchmark cell ended with status 'failed' (its record says why)."""


def run_cell_in_notebook(benchmark: str, record_path: str | None = None, progress: bool = True,
                      **parameters) -> tuple[dict, dict]:
    """The kernel's side of a cell (the runner's side: :func:`dpllib.grid.execute_cell_notebook`).
    Validate the notebook's parameters, train and test (saving progress to ``<record>.ckpt/``
    and resuming from it after an interruption), write the record (and its examples beside it)
    atomically, print one line. Returns (record, examples); raises CellFailed when the cell
    failed, so papermill marks the notebook as failed too.

    ``parameters`` are the keys of :class:`dpllib.config.CellConfig` except ``benchmark``;
    ``dataset`` None means the benchmark's default; ``points`` None (or empty) the network's
    study points; ``output_dir`` None means ``results_root()/notebooks``; ``record_path`` None
    means ``<output_dir>/<benchmark>/<cell id>.json``.
    """
    bench = get_benchmark(benchmark)
    parameters["output_dir"] = str(Path(parameters.get("output_dir") or results_root() / "notebooks").resolve())
    parameters["dataset"] = parameters.get("dataset") or bench.default_dataset
    if not parameters.get("points") and parameters.get("network", BASELINE) != BASELINE:
        from ..networks import network_info

        parameters["points"] = list(network_info(parameters["network"]).study_points)
    cfg = CellConfig.from_dict({"benchmark": benchmark, **parameters})
    path = Path(record_path) if record_path else default_record_path(cfg.to_dict(), cfg.output_dir)
    checkpoint_dir = path.with_suffix(".ckpt")
    record, examples = bench.run(cfg, progress=progress, checkpoint_dir=checkpoint_dir)
    written = write_record(record, path, examples)
    if record["status"] == "ok":
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    print(f"{record['status']} in {record['wall_time_s']:.1f} s on {record['environment']['device_name']} -> {written}")
    if record["status"] != "ok":
        raise CellFailed(record["error"] + "\n" + record["traceback"])
    return record, examples


__all__ = ["CellFailed", "run_cell_in_notebook"]
