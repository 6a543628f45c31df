"""Running a preset's missing cells as a Slurm job array (submitit), requeued on preemption."""

from __future__ import annotations

import os
from pathlib import Path

import submitit

from .local import expand_and_record, run_cell_in_worker
from .notebook import absolute_environment
from .status import states, to_run


class CellJob(submitit.helpers.Checkpointable):
    """One Slurm array task: a cell, or several cells at once on the task's GPU (processes
    sharing its CPUs). Preempted or out of time, submitit calls ``checkpoint`` and requeues the
    same call; each cell then resumes from its own on-disk checkpoint (finished cells are
    skipped by their records)."""

    def __call__(self, cells: dict | list[dict], results_dir: str, retry_failed: bool = False,
                 rerun_stale: bool = False) -> list[tuple[str, str]]:
        import concurrent.futures
        import multiprocessing

        cells = [cells] if isinstance(cells, dict) else cells
        todo = [s.cell for s in states(cells, results_dir) if s.state != "done"]  # a requeued task skips finished cells
        if len(todo) <= 1:
            return [run_cell_in_worker(c, results_dir, None, None, retry_failed, rerun_stale) for c in todo]
        threads = max(1, (os.cpu_count() or len(todo)) // len(todo))
        n = len(todo)
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(run_cell_in_worker, todo, [results_dir] * n, [threads] * n, [None] * n,
                                 [retry_failed] * n, [rerun_stale] * n))


def run_slurm(preset: dict, results_dir: str | os.PathLike = "results", partition: str | None = None,
              time_min: int = 240, parallelism: int = 16, gpus: int = 1, cluster: str | None = None,
              retry_failed: bool = False, rerun_stale: bool = False, cells_per_job: int = 1, wait: bool = False):
    """Submit every missing cell (and failed or stale ones when asked) as one Slurm job array
    through submitit: one GPU per task, ``cells_per_job`` cells sharing it, requeued on
    preemption or timeout. ``cluster='local'`` runs the same array with submitit's local
    executor (for tests)."""
    absolute_environment()
    results_dir = Path(results_dir).resolve()
    todo, _ = to_run(expand_and_record(preset, results_dir), results_dir, retry_failed, rerun_stale)
    if not todo:
        return []
    executor = submitit.AutoExecutor(folder=results_dir / ".submitit", cluster=cluster)
    params = {"timeout_min": time_min, "slurm_array_parallelism": parallelism}
    if executor.cluster == "slurm":
        params.update(gpus_per_node=gpus, tasks_per_node=1, cpus_per_task=8)
        if partition:
            params["slurm_partition"] = partition
    executor.update_parameters(**{k: v for k, v in params.items()
                                  if executor.cluster == "slurm" or not k.startswith("slurm_")})
    chunks = [todo[i:i + cells_per_job] for i in range(0, len(todo), max(1, cells_per_job))]
    n = len(chunks)
    jobs = executor.map_array(CellJob(), chunks, [str(results_dir)] * n, [retry_failed] * n, [rerun_stale] * n)
    if wait:
        for job in jobs:
            job.result()
    return jobs
