"""The experiment grid: presets -> cells -> papermill runs -> records.

A preset (YAML) names benchmarks with their data sets, networks with weights and points, seeds
and a budget. Each cell is one notebook run, identified by the hash of its config
(:func:`dpllib.results.cell_id`); a cell whose record exists is skipped, so a rerun after Ctrl-C,
a crash or a new preset entry only runs what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from jupyter_client import KernelManager

from .config import (BASELINE, BENCHMARK_DATASETS, BENCHMARKS, BUDGETS, PAPER_TRAINING_ITEMS, CellConfig,
                     training_steps)
from .errors import DplError, close_matches
from .files import atomic_write
from .results import cell_id, failed_record, read_record, record_path, write_record

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks" / "benchmarks"
PRESET_KEYS = {"name", "description", "budget", "seeds", "device", "data_root", "benchmarks",
               "networks", "baselines", "overrides"}
NETWORK_KEYS = {"network", "weights", "points"}


# --------------------------------------------------------------------------- presets


def preset_path(name_or_path: str) -> Path:
    """A preset file: a path, or the name of a shipped preset (``offline``, ``paper``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = resources.files("dpllib") / "presets" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    names = [p.name.removesuffix(".yaml") for p in (resources.files("dpllib") / "presets").iterdir()]
    raise DplError(f"no preset {name_or_path!r}: not a YAML file and not one of {sorted(names)}")


def load_preset(name_or_path: str) -> dict:
    """Safe-load and validate a preset; unknown keys, networks, points, benchmarks or data sets
    are errors that name them."""
    path = preset_path(name_or_path)
    try:
        preset = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DplError(f"preset {path} is not valid YAML: {err}") from err
    if not isinstance(preset, dict):
        raise DplError(f"preset {path} must be a mapping, got {type(preset).__name__}")
    unknown = set(preset) - PRESET_KEYS
    if unknown:
        raise DplError(f"preset {path}: unknown keys {sorted(unknown)}; allowed: {sorted(PRESET_KEYS)}")
    preset.setdefault("name", path.stem)
    preset.setdefault("seeds", [0])
    preset.setdefault("device", "auto")
    preset.setdefault("baselines", True)
    preset.setdefault("overrides", {})
    budget = preset.get("budget", "smoke")
    preset["budget"] = budget
    benchmarks = preset.get("benchmarks") or {}
    for bench, dataset in benchmarks.items():
        if bench not in BENCHMARKS:
            raise DplError(f"preset {path}: unknown benchmark {bench!r}; close matches: {close_matches(bench, BENCHMARKS)}")
        if dataset not in BENCHMARK_DATASETS[bench]:
            raise DplError(f"preset {path}: {bench} data set must be one of {BENCHMARK_DATASETS[bench]}, got {dataset!r}")
        if budget not in BUDGETS[bench]:
            raise DplError(f"preset {path}: unknown budget {budget!r}; choose from {sorted(BUDGETS[bench])}")
    for bench in preset["overrides"]:
        if bench not in benchmarks:
            raise DplError(f"preset {path}: overrides for {bench!r}, which the preset does not run")
    for entry in preset.get("networks") or []:
        unknown = set(entry) - NETWORK_KEYS
        if unknown:
            raise DplError(f"preset {path}: network entry {entry} has unknown keys {sorted(unknown)}; "
                           f"allowed: {sorted(NETWORK_KEYS)}")
        if "network" not in entry:
            raise DplError(f"preset {path}: network entry {entry} lacks 'network'")
    cells(preset)  # validates every network, point and override through CellConfig
    return preset


def cells(preset: dict, results_dir: str | os.PathLike = "results") -> list[dict]:
    """Expand a preset into cell configs (validated)."""
    from .networks import network_info

    out = []
    for bench, dataset in (preset.get("benchmarks") or {}).items():
        for seed in preset["seeds"]:
            common = {"benchmark": bench, "dataset": dataset, "budget": preset["budget"], "seed": seed,
                      "device": preset["device"], "data_root": preset.get("data_root"),
                      "output_dir": str(results_dir), "batch_size": None,
                      "overrides": dict(preset["overrides"].get(bench, {}))}
            entries = list(preset.get("networks") or [])
            for entry in entries:
                weights = entry.get("weights", ["imagenet"])
                weights = [weights] if isinstance(weights, str) else weights
                points = entry.get("points") or list(network_info(entry["network"]).study_points)
                if not points:
                    raise DplError(f"{entry['network']} has no study points: list its points in the preset")
                for w in weights:
                    out.append({**common, "network": entry["network"], "points": list(points), "weights": w})
            if preset.get("baselines"):
                out.append({**common, "network": BASELINE, "points": [], "weights": "none"})
    for cell in out:
        cell.update(CellConfig.from_dict(cell).to_dict())  # validate; points become module names
    return out


# --------------------------------------------------------------------------- running one cell


class IsolatedKernelManager(KernelManager):
    """A kernel on IPC sockets in a private folder: parallel kernels cannot race for TCP ports
    (papermill issue 511)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = os.path.join(tempfile.mkdtemp(prefix="dpl-kernel-"), "ipc")

    def cleanup_resources(self, restart: bool = False) -> None:
        super().cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)


def run_cell(cell: dict, results_dir: str | os.PathLike) -> dict:
    """Run one cell's notebook with papermill; keep the executed notebook beside the record.
    Returns the record. A notebook that dies before writing its record gets a 'failed' record
    with the traceback, so the grid goes on."""
    import papermill as pm

    results_dir = Path(results_dir)
    path = record_path(cell, results_dir)
    executed = path.with_suffix(".ipynb")
    tmp_nb = executed.with_name(f".{executed.name}.{os.getpid()}.tmp.ipynb")
    path.parent.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in cell.items() if k != "benchmark"}
    params["record_path"] = str(path)
    start = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(NOTEBOOKS / f"{cell['benchmark']}.ipynb"), str(tmp_nb), parameters=params,
                            kernel_name="python3", progress_bar=False, cwd=str(results_dir),
                            kernel_manager_class="dpllib.grid.IsolatedKernelManager")
    except Exception:  # papermill's execution error, a dead kernel, ...
        error = traceback.format_exc()
    if tmp_nb.exists():
        os.replace(tmp_nb, executed)
    if path.exists():
        return read_record(path)
    record = failed_record(cell, {}, (error or "the notebook wrote no record").strip().splitlines()[-1],
                           error or "", time.perf_counter() - start)
    write_record(record, path)
    return record


# --------------------------------------------------------------------------- the grid


@dataclass
class CellStatus:
    cell: dict
    state: str  # "done", "failed", "pending"


def status(preset: dict, results_dir: str | os.PathLike) -> list[CellStatus]:
    """Each cell of the preset with its state from the records on disk."""
    out = []
    for cell in cells(preset, results_dir):
        path = record_path(cell, results_dir)
        if not path.exists():
            out.append(CellStatus(cell, "pending"))
            continue
        try:
            state = "done" if read_record(path)["status"] == "ok" else "failed"
        except DplError:
            state = "failed"
        out.append(CellStatus(cell, state))
    return out


def status_table(preset: dict, results_dir: str | os.PathLike) -> str:
    """done / failed / pending per benchmark, as text."""
    counts: dict[str, Counter] = {}
    for s in status(preset, results_dir):
        counts.setdefault(s.cell["benchmark"], Counter())[s.state] += 1
    lines = [f"{'benchmark':18s} {'done':>5s} {'failed':>6s} {'pending':>7s}"]
    for bench, c in counts.items():
        lines.append(f"{bench:18s} {c['done']:5d} {c['failed']:6d} {c['pending']:7d}")
    total = sum(counts.values(), Counter())
    lines.append(f"{'total':18s} {total['done']:5d} {total['failed']:6d} {total['pending']:7d}")
    return "\n".join(lines)


def _run_cell_entry(cell: dict, results_dir: str) -> tuple[str, str]:
    record = run_cell(cell, results_dir)
    return cell_id(cell), record["status"]


def run(preset: dict, results_dir: str | os.PathLike = "results", workers: int = 1,
        retry_failed: bool = False, progress: bool = True) -> Counter:
    """Run every missing cell locally (sequentially, or in ``workers`` processes); returns the
    count of outcomes. Cells with a record are skipped (failed ones too, unless
    ``retry_failed``); temporary files an interrupted run left are removed first."""
    from tqdm.auto import tqdm

    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    outcome: Counter = Counter()
    removed = clean_temporaries(results_dir)
    if removed:
        outcome["temporaries removed"] = removed
    for s in status(preset, results_dir):
        if s.state == "pending" or (retry_failed and s.state == "failed"):
            todo.append(s.cell)
        else:
            outcome["skipped"] += 1
    _write_manifest(preset, results_dir)
    bar = tqdm(total=len(todo), desc=f"{preset['name']} cells", unit="cell", disable=not progress)
    if workers <= 1:
        for cell in todo:
            bar.set_postfix_str(f"{cell['benchmark']} {cell['network']} {cell['weights']}")
            outcome[run_cell(cell, results_dir)["status"]] += 1
            bar.update()
    else:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(_run_cell_entry, cell, str(results_dir)) for cell in todo]
            for fut in concurrent.futures.as_completed(futures):
                outcome[fut.result()[1]] += 1
                bar.update()
    bar.close()
    return outcome


def run_slurm(preset: dict, results_dir: str | os.PathLike = "results", partition: str | None = None,
              time_min: int = 240, parallelism: int = 16, gpus: int = 1, cluster: str | None = None,
              wait: bool = False):
    """Submit every missing cell as one Slurm job array through submitit (one GPU per task).
    ``cluster='local'`` runs the same array with submitit's local executor (for tests)."""
    import submitit

    results_dir = Path(results_dir).resolve()
    todo = [s.cell for s in status(preset, results_dir) if s.state == "pending"]
    _write_manifest(preset, results_dir)
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
    jobs = executor.map_array(_run_cell_entry, todo, [str(results_dir)] * len(todo))
    if wait:
        for job in jobs:
            job.result()
    return jobs


def _write_manifest(preset: dict, results_dir: Path) -> None:
    """The preset as run, beside the records (the book's methods page reads it)."""
    atomic_write(results_dir / "preset.json", json.dumps(preset, indent=1, default=str))


# --------------------------------------------------------------------------- estimates


def estimate(preset: dict, step_costs: dict | None = None) -> str:
    """Cell counts per benchmark and device-hours estimated from measured step costs
    (``dpllib/presets/step_costs.json``, written by ``benchmarks/step_cost.py``)."""
    if step_costs is None:
        path = Path(str(resources.files("dpllib") / "presets" / "step_costs.json"))
        step_costs = json.loads(path.read_text()) if path.is_file() else {}
    costs = step_costs.get("seconds_per_step", {})
    lines = [f"{'benchmark':18s} {'cells':>5s} {'trainings':>9s} {'steps each':>10s} {'est. hours':>10s}"]
    total_h, unknown = 0.0, set()
    by_bench: dict[str, list[dict]] = {}
    for cell in cells(preset):
        by_bench.setdefault(cell["benchmark"], []).append(cell)
    for bench, bench_cells in by_bench.items():
        hours = 0.0
        trainings = 0
        settings = CellConfig.from_dict(bench_cells[0]).settings()
        steps = _steps(bench, settings)
        for cell in bench_cells:
            # a similarity cell calibrates all its points in one training
            for point in (cell["points"] or [None]) if bench != "similarity" else [None]:
                trainings += 1
                key = f"{bench}/{cell['network']}"
                cost = costs.get(key)
                if cost is None:
                    unknown.add(key)
                    continue
                hours += steps * cost / 3600
        total_h += hours
        lines.append(f"{bench:18s} {len(bench_cells):5d} {trainings:9d} {steps:10d} {hours:10.1f}")
    lines.append(f"{'total':18s} {sum(map(len, by_bench.values())):5d} {'':9s} {'':10s} {total_h:10.1f}")
    device = step_costs.get("device", "unknown device")
    lines.append(f"(hours from step costs measured on {device}; "
                 + (f"no measurement for {len(unknown)} benchmark/network pairs: {sorted(unknown)[:4]}...)"
                    if unknown else "all pairs measured)"))
    return "\n".join(lines)


def _steps(bench: str, settings: dict) -> int:
    """Optimizer steps of one training at the study's data sizes (the similarity cell: its lin
    calibration steps)."""
    return training_steps(settings, PAPER_TRAINING_ITEMS.get(bench, 0))


def clean_temporaries(results_dir: str | os.PathLike) -> int:
    """Remove temporary files a killed run left behind (never records); returns how many."""
    n = 0
    for p in Path(results_dir).rglob(".*.tmp*"):
        if p.is_file():
            p.unlink()
            n += 1
        elif p.is_dir():
            shutil.rmtree(p)
            n += 1
    return n
