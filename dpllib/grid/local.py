"""Running a preset's missing cells on this machine: claimed one at a time, in order or in
worker processes; the run's manifest written first; temporaries of dead runs removed."""

from __future__ import annotations

import itertools
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..files import claim, release, temporary_is_orphaned
from ..results import cell_id, record_path, write_manifest
from .notebook import absolute_environment, execute_cell_notebook
from .presets import cells
from .status import states, to_run, wanted
from .yours import with_yours


def run_claimed(cell: dict, results_dir: str | os.PathLike, retry_failed: bool = False,
                rerun_stale: bool = False) -> str:
    """Run a cell unless another run holds its claim (``<cell id>.claim`` beside the record) or
    has, meanwhile, done it; returns the outcome: the record's status or 'skipped (...)'. Several
    runners on one results folder so share the cells."""
    path = record_path(cell, results_dir)
    held = path.with_suffix(".claim")
    if not claim(held):
        return "skipped (another run has it)"
    try:
        if not wanted(states([cell], results_dir)[0].state, retry_failed, rerun_stale):
            return "skipped (done by another run)"
        return execute_cell_notebook(cell, results_dir)["status"]
    finally:
        release(held)


def run_cell_in_worker(cell: dict, results_dir: str, threads: int | None = None, gpu: int | None = None,
                       retry_failed: bool = False, rerun_stale: bool = False) -> tuple[str, str]:
    """One cell in a worker process; the kernel inherits the thread count and the GPU."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return cell_id(cell), run_claimed(cell, results_dir, retry_failed, rerun_stale)


def _visible_gpus() -> int:
    """How many CUDA devices this machine shows (0 without CUDA), without initialising CUDA in
    this process."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run(preset: dict, results_dir: str | os.PathLike = "results", workers: int = 1,
        retry_failed: bool = False, rerun_stale: bool = False, progress: bool = True,
        only: Callable[[dict], bool] | None = None) -> Counter:
    """Run every missing cell locally (sequentially, or in ``workers`` processes that share the
    CPU cores between them and take the GPUs in turn, so several trainings share each GPU);
    returns the count of outcomes. Cells with a record are skipped (failed and stale ones too,
    unless asked to rerun them); temporary files that dead runs left are removed first.
    ``only(cell)`` picks the cells to run (default: all); the manifest lists them all."""
    from tqdm.auto import tqdm

    absolute_environment()
    results_dir = Path(results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    outcome: Counter = Counter()
    removed = clean_temporaries(results_dir)
    if removed:
        outcome["temporaries removed"] = removed
    chosen = [c for c in expand_and_record(preset, results_dir) if only is None or only(c)]
    todo, skipped = to_run(chosen, results_dir, retry_failed, rerun_stale)
    outcome.update(skipped)
    bar = tqdm(total=len(todo), desc=f"{preset['name']} cells", unit="cell", disable=not progress)
    if workers <= 1:
        for cell in todo:
            bar.set_postfix_str(f"{cell['benchmark']} {cell['network']} {cell['weights']}")
            outcome[run_claimed(cell, results_dir, retry_failed, rerun_stale)] += 1
            bar.update()
    else:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or workers) // workers)
        gpus = _visible_gpus()
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_cell_in_worker, cell, str(results_dir), threads, i % gpus if gpus else None,
                                   retry_failed, rerun_stale) for i, cell in enumerate(interleaved(todo))]
            for fut in concurrent.futures.as_completed(futures):
                outcome[fut.result()[1]] += 1
                bar.update()
    bar.close()
    return outcome


def interleaved(todo: list[dict]) -> list[dict]:
    """``todo`` in turns over its groups of cells that share a warm start (benchmark, data set,
    seed): the first cell of each group, then the second, ... Parallel workers then start
    different groups instead of one making a group's warm start while the others wait on its
    lock."""
    groups: dict[tuple, list[dict]] = {}
    for cell in todo:
        groups.setdefault((cell["benchmark"], cell["dataset"], cell["seed"]), []).append(cell)
    turns = itertools.zip_longest(*groups.values())
    return [cell for turn in turns for cell in turn if cell is not None]


def expand_and_record(preset: dict, results_dir: Path) -> list[dict]:
    """The preset's cells and those of the networks evaluated in ``results_dir``
    (:func:`with_yours`); the preset as run and their ids are written beside the records (the
    book and ``dpl table`` read them there: nothing expands the preset again)."""
    preset = with_yours(preset, results_dir)
    cell_list = cells(preset, results_dir)
    write_manifest(results_dir, preset, [cell_id(c) for c in cell_list])
    return cell_list


def clean_temporaries(results_dir: str | os.PathLike, max_age_s: float = 86_400) -> int:
    """Remove temporary files that a killed run left behind; returns how many. A temporary of a
    process on this host that is still alive is kept (a run in progress); one from another host
    (a shared file system) only goes once it is older than ``max_age_s``. Records and in-cell
    checkpoints are never touched."""
    n = 0
    for p in Path(results_dir).rglob(".*.tmp*"):
        if not temporary_is_orphaned(p, max_age_s):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n
