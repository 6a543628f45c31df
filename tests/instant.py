"""An instant benchmark that exists only in the tests (registered through
``$DPL_BENCHMARKS=tests.instant``, so that notebook kernels and Slurm jobs find it too).

A cell trains nothing: it reads its data root, optionally waits or fails, and writes a real
record through the real notebook in about a second. The grid's mechanics (claims, kills, dead
kernels, workers, Slurm, status, stale records, installed copies) are tested on it, since they
do not depend on what a cell computes; each real trainer runs end to end through the notebook in
``tests/test_notebooks.py``.

Budget settings (overrides): ``seconds`` to wait before the record is written, ``fail`` an
error message to fail with, ``only`` the seeds they apply to ([] for every cell).
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from dpllib.benchmark import Benchmark, DataSet, Metric
from dpllib.config import BASELINE
from dpllib.paths import data_root
from dpllib.results import make_record, row

NAME = "instant"
BUDGETS = {"smoke": {"seconds": 0.0, "fail": "", "only": []}}


def score(seed: int, index: int) -> float:
    """The made-up score of a cell's ``index``-th point (higher for later points and seeds)."""
    return 0.5 + 0.01 * index + 0.001 * seed


def run(cfg, progress=True, checkpoint_dir=None):
    settings = cfg.settings()
    applies = not settings["only"] or cfg.seed in settings["only"]

    def compute() -> dict:
        entries = sorted(p.name for p in data_root(cfg.data_root).iterdir())  # the cell reads its data root
        if applies:
            time.sleep(settings["seconds"])
            if settings["fail"]:
                raise RuntimeError(settings["fail"])
        if cfg.network == BASELINE:
            points = [(None, BASELINE)]
        else:
            from dpllib.networks import resolve_point

            points = [(p, resolve_point(cfg.network, p).alias) for p in cfg.points]
        rows = [row(p, alias, "score", score(cfg.seed, i), "test") for i, (p, alias) in enumerate(points)]
        return {"rows": rows, "loss_curve": {}, "val_curve": {}, "references": [], "data_root_entries": entries}

    return make_record(cfg, compute)


BENCHMARK = Benchmark(
    name=NAME, title="Instant (test)", description="Trains nothing; writes a record at once (a test-only benchmark).",
    datasets=(DataSet("none", "no data", "sanity", "reads only the data root's listing"),), default_dataset="none",
    budgets=BUDGETS, run=run, primary=Metric("score", ("test",), "a made-up score"), output_key="output",
    example_figures=lambda reference, outputs: [],
)


def instant_preset(folder: Path, seeds=(0, 1), networks=(), **overrides) -> Path:
    """A preset of the instant benchmark (tests/instant.py): one baseline cell per seed, plus
    ``networks`` entries; ``overrides`` are its budget settings (seconds, fail, only: seeds)."""
    preset = {"name": "instant", "budget": "smoke", "seeds": list(seeds), "device": "cpu",
              "benchmarks": {"instant": "none"}, "networks": list(networks), "baselines": True,
              "overrides": {"instant": overrides} if overrides else {}}
    path = folder / "instant.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path
