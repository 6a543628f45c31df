"""The experiment grid: presets -> cells -> papermill runs -> records.

A preset (YAML) names benchmarks with their data sets, networks with weights and points, seeds
and a budget. Each cell is one run of the benchmark notebook, identified by the hash of its
config (:func:`dpllib.results.cell_id`); a cell whose record exists is skipped, so a rerun after
Ctrl-C, a crash or a new preset entry only runs what is missing. The grid never calls a
trainer: it runs notebooks and reads records.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import submitit
import yaml
from jupyter_client import AsyncKernelManager

from .benchmark import get_benchmark
from .config import BASELINE, CellConfig, entry_weights, preset_datasets, training_steps
from .errors import DplError
from .files import atomic_write, claim, release, temporary_is_orphaned, temporary_path
from .paths import resource, shipped_measurements
from .results import cell_id, code_version, failed_record, read_record, record_path, write_manifest, write_record

CELL_NOTEBOOK = "benchmarks/cell.ipynb"  # under the notebooks folder: one notebook for every benchmark
# What a preset may hold (JSON Schema); dpllib checks names (benchmarks, networks, points, data
# sets, budget settings) against its registries after the shapes are right.
NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
PRESET_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1}, "description": {"type": "string"},
        "budget": {"type": "string"}, "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                                "minItems": 1},
        "device": {"type": "string", "pattern": "^(auto|cpu|cuda(:[0-9]+)?)$"}, "data_root": {"type": ["string", "null"]},
        "benchmarks": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string", "minLength": 1}, NAMES]}},
        "networks": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["network"],
            "properties": {"network": {"type": "string", "minLength": 1},
                           "weights": {"anyOf": [{"type": "string"}, NAMES]}, "points": NAMES,
                           "benchmarks": NAMES, "yours": {"type": "boolean"}}}},
        "baselines": {"type": "boolean"}, "overrides": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}
# How to write each part, added to an error about it.
PRESET_HINTS = {"seeds": "a list of integers, e.g. seeds: [0, 1]",
                "benchmarks": "a mapping of benchmark to data set, or to a list of them, e.g. benchmarks: "
                              "{super_resolution: bsds500, autoencoding: [svhn, stl10]}",
                "networks": "a list of entries like {network: vgg16, weights: [imagenet], points: [relu2_2]}; "
                            "benchmarks: [similarity] limits an entry to those benchmarks, yours: true marks it as "
                            "the user's (dpl evaluate)",
                "overrides": "a mapping of benchmark to budget settings, e.g. overrides: {super_resolution: {steps: 100}}",
                "device": "auto, cpu, cuda or cuda:N"}


def preset_problems(preset: object) -> list[str]:
    """Every problem of a preset's shape, one line each: where it is, what is wrong, how to write it."""
    import jsonschema

    out = []
    for err in sorted(jsonschema.Draft202012Validator(PRESET_SCHEMA).iter_errors(preset), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.absolute_path) or "the preset"
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            what = f"{err.message}; allowed: {', '.join(allowed)}"
        else:
            what = err.message
        hint = PRESET_HINTS.get(str(err.absolute_path[0])) if err.absolute_path else None
        out.append(f"{where}: {what}" + (f" (write {hint})" if hint else ""))
    return out


# --------------------------------------------------------------------------- presets


def preset_path(name_or_path: str) -> Path:
    """A preset file: a path, or the name of a shipped preset (``offline``, ``paper``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = resources.files("dpllib") / "presets" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    names = [p.name.removesuffix(".yaml") for p in (resources.files("dpllib") / "presets").iterdir()
             if p.name.endswith(".yaml")]
    raise DplError(f"no preset {name_or_path!r}: not a YAML file and not one of {sorted(names)}")


def load_preset(name_or_path: str) -> dict:
    """Safe-load and validate a preset; unknown keys, networks, points, benchmarks or data sets
    are errors that name them."""
    path = preset_path(name_or_path)
    try:
        preset = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DplError(f"preset {path} is not valid YAML: {err}") from err
    problems = preset_problems(preset)
    if problems:
        raise DplError(f"preset {path} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  "
                       + "\n  ".join(problems))
    preset.setdefault("name", path.stem)
    preset.setdefault("seeds", [0])
    preset.setdefault("device", "auto")
    preset.setdefault("baselines", True)
    preset.setdefault("overrides", {})
    if preset.get("data_root"):  # relative to the preset file, absolute from here on
        preset["data_root"] = str((path.parent / Path(preset["data_root"]).expanduser()).resolve())
    budget = preset.get("budget", "smoke")
    preset["budget"] = budget
    chosen = preset.get("benchmarks") or {}
    for bench, dataset in preset_datasets(preset):
        try:
            descriptor = get_benchmark(bench)
            descriptor.dataset(dataset)
        except DplError as err:
            raise DplError(f"preset {path}: {err}") from None
        if budget not in descriptor.budgets:
            raise DplError(f"preset {path}: unknown budget {budget!r}; choose from {sorted(descriptor.budgets)}")
    for bench in preset["overrides"]:
        if bench not in chosen:
            raise DplError(f"preset {path}: overrides for {bench!r}, which the preset does not run")
    for entry in preset.get("networks") or []:
        for bench in set(entry.get("benchmarks", ())) - set(chosen):
            raise DplError(f"preset {path}: {entry['network']} is limited to {bench!r}, which the preset does not run; "
                           f"it runs {', '.join(chosen)}")
    cells(preset)  # validates every network, point and override through CellConfig
    return preset


def entry_points(entry: dict) -> list[str]:
    """The points of a preset's network entry: those it lists, else its network's study (or
    study-style) points."""
    from .networks import catalogue_points, network_info

    network = entry["network"]
    return list(entry.get("points") or catalogue_points(network) or network_info(network).study_points)


def points_by_network(entries: list[dict]) -> dict[str, list[str]]:
    """{network: the module of every point its entries run at}, in the entries' order (an alias
    and its module are one point; weights aside: the cost of a point does not depend on them)."""
    from .networks import point_module

    out: dict[str, list[str]] = {}
    for e in entries:
        modules = [point_module(e["network"], p) for p in entry_points(e)]
        out[e["network"]] = list(dict.fromkeys(out.get(e["network"], []) + modules))
    return out


def cells(preset: dict, results_dir: str | os.PathLike = "results") -> list[dict]:
    """Expand a preset into cell configs (validated; ``output_dir`` absolute)."""
    results_dir = Path(results_dir).expanduser().resolve()
    out = []
    for bench, dataset in preset_datasets(preset):
        for seed in preset["seeds"]:
            common = {"benchmark": bench, "dataset": dataset, "budget": preset["budget"], "seed": seed,
                      "device": preset["device"], "data_root": preset.get("data_root"),
                      "output_dir": str(results_dir), "batch_size": None,
                      "overrides": dict(preset["overrides"].get(bench, {}))}
            entries = [e for e in preset.get("networks") or [] if bench in e.get("benchmarks", [bench])]
            for entry in entries:
                weights = entry_weights(entry)
                points = entry_points(entry)
                if not points:
                    raise DplError(f"{entry['network']} has no study-style points (fewer than 4 spatial maps): "
                                   "list its points in the preset")
                for w in weights:
                    out.append({**common, "network": entry["network"], "points": list(points), "weights": w})
            if preset.get("baselines"):
                out.append({**common, "network": BASELINE, "points": [], "weights": "none"})
    for cell in out:
        cell.update(CellConfig.from_dict(cell).to_dict())  # validate; points become module names
    return out


def cell_ids(preset: dict) -> set[str]:
    """The ids of a preset's cells (the records a table of that preset reads)."""
    return {cell_id(c) for c in cells(preset)}


# --------------------------------------------------------------------------- the user's own networks

YOURS = "yours.json"  # beside a preset's records: the networks `dpl evaluate` added to its run


def read_yours(results_dir: str | os.PathLike) -> list[dict]:
    """The network entries evaluated beside a preset's run (``dpl evaluate``), each marked
    ``yours: true``; [] when there are none."""
    path = Path(results_dir) / YOURS
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())
    except ValueError as err:
        raise DplError(f"{path} is not valid JSON ({err}); delete it and rerun dpl evaluate") from err
    return [{**e, "yours": True} for e in entries]


def with_yours(preset: dict, results_dir: str | os.PathLike) -> dict:
    """``preset`` with the networks evaluated in ``results_dir`` appended (once)."""
    have = preset.get("networks") or []
    extra = [e for e in read_yours(results_dir) if e not in have]
    return {**preset, "networks": [*have, *extra]} if extra else preset


def _keep_weights(path: Path, results_dir: Path) -> Path:
    """A copy of the weights file ``path`` in ``results_dir/weights/<sha256 prefix>/<its name>``:
    the records then name its content (an edited file is a new loss network, a moved one still
    loads)."""
    from .download import sha256_of

    if not path.is_file():
        raise DplError(f"weights must be imagenet, random or a weights file (.pth, .pt, .safetensors); {str(path)!r} "
                       "is no file")
    kept = results_dir.resolve() / "weights" / sha256_of(path)[:16] / path.name
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(kept, lambda tmp: shutil.copyfile(path, tmp))
    return kept


def add_yours(preset: dict, results_dir: str | os.PathLike, network: str, weights: str = "imagenet",
              points: list[str] | None = None, benchmarks: list[str] | None = None) -> dict:
    """Record ``network`` with ``weights`` (imagenet, random or a weights file, kept by content
    in ``results_dir``) at ``points`` (default: its study or study-style points) as the user's,
    to run on the preset's benchmarks (or ``benchmarks`` of them) in ``results_dir``; returns its
    entry. It replaces an earlier entry of the same network and weights (file name); one the
    preset itself has is refused."""
    from .networks import point_module

    points = [point_module(network, p) for p in points or entry_points({"network": network})]
    if not points:
        raise DplError(f"{network} has no study-style points (fewer than 4 spatial maps); name them with --points "
                       f"(dpl networks {network} --all lists them)")
    ran = [b for b, _ in preset_datasets(preset)]
    unknown = sorted(set(benchmarks or ()) - set(ran))
    if unknown:
        raise DplError(f"the {preset['name']} preset does not run {', '.join(unknown)}; it runs {', '.join(ran)}")
    if weights not in ("imagenet", "random"):
        weights = str(_keep_weights(Path(weights).expanduser(), Path(results_dir)))
    for e in preset.get("networks") or []:
        if not e.get("yours") and e["network"] == network and weights in entry_weights(e):
            raise DplError(f"{network} ({weights}) is in the {preset['name']} preset already: its records are the "
                           "preset's own; evaluate other weights or another network")
    entry = {"network": network, "weights": [weights], "points": points}
    if benchmarks:
        entry["benchmarks"] = list(dict.fromkeys(benchmarks))
    cells({**preset, "networks": [entry], "baselines": False})  # validates it like a preset entry
    path = Path(results_dir) / YOURS
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [{k: v for k, v in e.items() if k != "yours"} for e in read_yours(results_dir)  # a new version replaces
            if (e["network"], Path(e["weights"][0]).name) != (network, Path(weights).name)]
    atomic_write(path, json.dumps([*kept, entry], indent=1))
    return {**entry, "yours": True}


# --------------------------------------------------------------------------- running one cell


class IsolatedKernelManager(AsyncKernelManager):
    """A kernel on IPC sockets in a private folder: parallel kernels cannot race for TCP ports
    (papermill issue 511), and nothing listens on the network. Asynchronous, so that nbclient
    polls it: a kernel that dies (the out-of-memory killer, a segfault) ends the notebook within
    seconds. Its exit status is kept in :data:`KERNEL_EXITS` for the failed record."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = os.path.join(tempfile.mkdtemp(prefix="dpl-kernel-"), "ipc")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # jupyter_client's hook
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.poll() is not None:
            KERNEL_EXITS.append(process.returncode)
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    cleanup_resources = _async_cleanup_resources


KERNEL_EXITS: list[int] = []  # exit statuses of kernels that had ended by their shutdown (this process)


def kernel_death(code: int | None) -> str:
    """A cause for a kernel's exit status: 'killed by signal 9 (SIGKILL; ...)' or 'exit status N'."""
    if code is None:
        return "the kernel died"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else "?"
        hint = "; the out-of-memory killer sends it" if name == "SIGKILL" else ""
        return f"the kernel was killed by signal {-code} ({name}{hint})"
    return f"the kernel exited with status {code}"


def absolute_environment() -> None:
    """Make the path settings in the environment absolute, before kernels and jobs (which run in
    other folders) inherit them."""
    for name in ("DPL_DATA_ROOT", "DPL_CACHE", "DPL_RESULTS", "TORCH_HOME", "HF_HOME"):
        value = os.environ.get(name)
        if value:
            os.environ[name] = str(Path(value).expanduser().resolve())


def run_cell_notebook(cell: dict, results_dir: str | os.PathLike) -> dict:
    """Run the benchmark notebook for one cell with papermill; keep the executed notebook beside the record.
    Returns the record. A notebook that dies before writing its record gets a 'failed' record
    with the traceback, so the grid goes on."""
    import papermill as pm

    absolute_environment()
    results_dir = Path(results_dir).resolve()
    path = record_path(cell, results_dir)
    executed = path.with_suffix(".ipynb")
    scratch = temporary_path(executed).with_suffix(".tmp.ipynb")
    path.parent.mkdir(parents=True, exist_ok=True)
    params = dict(cell)
    params["record_path"] = str(path)
    start = time.perf_counter()
    error = None
    exits = len(KERNEL_EXITS)
    try:
        pm.execute_notebook(str(resource("notebooks") / CELL_NOTEBOOK), str(scratch), parameters=params,
                            kernel_name="python3", progress_bar=False, cwd=str(path.parent),
                            kernel_manager_class="dpllib.grid.IsolatedKernelManager")
    except Exception as err:  # papermill's execution error, a dead kernel, ...
        error = traceback.format_exc()
        if type(err).__name__ == "DeadKernelError":
            cause = kernel_death(KERNEL_EXITS[-1] if len(KERNEL_EXITS) > exits else None)
            error += f"\nDeadKernelError: {cause}"
    if scratch.exists():
        os.replace(scratch, executed)
    if path.exists():
        return read_record(path)
    record = failed_record(cell, {}, (error or "the notebook wrote no record").strip().splitlines()[-1],
                           error or "", time.perf_counter() - start)
    write_record(record, path)
    return record


# --------------------------------------------------------------------------- the grid

STATES = ("done", "stale", "failed", "pending")


@dataclass
class CellStatus:
    cell: dict
    state: str  # done | stale (an ok record from other code) | failed | pending


def status(preset: dict, results_dir: str | os.PathLike) -> list[CellStatus]:
    """Each cell of the preset (and of the networks evaluated beside it) with its state from the
    records on disk."""
    return states(cells(with_yours(preset, results_dir), results_dir), results_dir)


def states(cell_list: list[dict], results_dir: str | os.PathLike) -> list[CellStatus]:
    """Each of ``cell_list`` with its state from the records on disk."""
    current = code_version()
    out = []
    for cell in cell_list:
        path = record_path(cell, results_dir)
        if not path.exists():
            out.append(CellStatus(cell, "pending"))
            continue
        try:
            record = read_record(path)
        except DplError:
            out.append(CellStatus(cell, "failed"))
            continue
        if record["status"] != "ok":
            state = "failed"
        else:
            state = "done" if record.get("code_version") == current else "stale"
        out.append(CellStatus(cell, state))
    return out


def status_table(preset: dict, results_dir: str | os.PathLike, statuses: list[CellStatus] | None = None) -> str:
    """done / stale / failed / pending per benchmark, as text, with what to do about the
    stale and failed ones (``statuses``: the preset's :func:`status` when already read)."""
    counts: dict[str, Counter] = {}
    for s in status(preset, results_dir) if statuses is None else statuses:
        counts.setdefault(s.cell["benchmark"], Counter())[s.state] += 1
    lines = [f"{'benchmark':18s} " + " ".join(f"{state:>7s}" for state in STATES)]
    for bench, c in [*counts.items(), ("total", sum(counts.values(), Counter()))]:
        lines.append(f"{bench:18s} " + " ".join(f"{c[state]:7d}" for state in STATES))
    total = sum(counts.values(), Counter())
    if total["stale"]:
        lines.append(f"{total['stale']} records come from other dpllib code (this code: {code_version()}); "
                     "rerun them with --rerun-stale")
    if total["failed"]:
        lines.append(f"{total['failed']} cells failed (their records hold the traceback); rerun them with "
                     "--retry-failed")
    lines.append(f"records: {Path(results_dir).resolve()}")
    return "\n".join(lines)


def wanted(state: str, retry_failed: bool = False, rerun_stale: bool = False) -> bool:
    """Whether a cell in ``state`` runs: pending ones, and failed or stale ones when asked."""
    return state == "pending" or (retry_failed and state == "failed") or (rerun_stale and state == "stale")


def to_run(cell_list: list[dict], results_dir: str | os.PathLike, retry_failed: bool = False,
           rerun_stale: bool = False) -> tuple[list[dict], Counter]:
    """The cells of ``cell_list`` to run (pending, and failed or stale ones when asked) and the
    count of the rest."""
    todo, skipped = [], Counter()
    for s in states(cell_list, results_dir):
        if wanted(s.state, retry_failed, rerun_stale):
            todo.append(s.cell)
        else:
            skipped[f"skipped ({s.state})" if s.state != "done" else "skipped"] += 1
    return todo, skipped


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
        return run_cell_notebook(cell, results_dir)["status"]
    finally:
        release(held)


def _run_cell_entry(cell: dict, results_dir: str, threads: int | None = None, gpu: int | None = None,
                    retry_failed: bool = False, rerun_stale: bool = False) -> tuple[str, str]:
    """One cell in a worker process; the kernel inherits the thread count and the GPU."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return cell_id(cell), run_claimed(cell, results_dir, retry_failed, rerun_stale)


def _is_done(cell: dict, results_dir: str | os.PathLike) -> bool:
    """Whether the cell has an ok record of this code."""
    path = record_path(cell, results_dir)
    try:
        record = read_record(path) if path.exists() else None
    except DplError:
        return False
    return record is not None and record["status"] == "ok" and record.get("code_version") == code_version()


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
    chosen = [c for c in _expand_and_record(preset, results_dir) if only is None or only(c)]
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
            futures = [pool.submit(_run_cell_entry, cell, str(results_dir), threads, i % gpus if gpus else None,
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
        todo = [c for c in cells if not _is_done(c, results_dir)]  # a requeued task skips finished cells
        if len(todo) <= 1:
            return [_run_cell_entry(c, results_dir, None, None, retry_failed, rerun_stale) for c in todo]
        threads = max(1, (os.cpu_count() or len(todo)) // len(todo))
        n = len(todo)
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_run_cell_entry, todo, [results_dir] * n, [threads] * n, [None] * n,
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
    todo, _ = to_run(_expand_and_record(preset, results_dir), results_dir, retry_failed, rerun_stale)
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


def _expand_and_record(preset: dict, results_dir: Path) -> list[dict]:
    """The preset's cells and those of the networks evaluated in ``results_dir``
    (:func:`with_yours`); the preset as run and their ids are written beside the records (the
    book and ``dpl table`` read them there: nothing expands the preset again)."""
    preset = with_yours(preset, results_dir)
    cell_list = cells(preset, results_dir)
    write_manifest(results_dir, preset, [cell_id(c) for c in cell_list])
    return cell_list


# --------------------------------------------------------------------------- estimates


def networks_table(preset: dict) -> str:
    """The preset's loss networks as text: name, weights, ImageNet top-1, what the weights
    learned from, and the points each runs at."""
    from .networks import imagenet_accuracy

    lines = [f"{'network':48s} {'weights':10s} {'top1':>6s}  {'trained on':38s} points"]
    for entry in preset.get("networks") or []:
        top1, _, training = imagenet_accuracy(entry["network"])
        lines.append(f"{entry['network']:48s} {','.join(entry_weights(entry))[:10]:10s} "
                     f"{f'{top1:.1f}' if top1 is not None else '-':>6s}  {training[:38]:38s} "
                     f"{', '.join(entry_points(entry))}"
                     + ("  (yours)" if entry.get("yours") else ""))
    return "\n".join(lines)


def step_cost_files() -> dict[str, dict]:
    """The shipped step-cost measurements ({file stem: contents}), one per device and code
    version (``dpllib/presets/step_costs/*.json``, written by ``dpl bench step_cost``)."""
    return shipped_measurements("step_costs")


def estimate(preset: dict, step_costs: dict[str, dict] | None = None) -> str:
    """Cell and training counts per benchmark and the device-hours each shipped step-cost
    measurement implies (one column per measurement, its device and mode listed below)."""
    measured = step_cost_files() if step_costs is None else step_costs
    by_bench: dict[str, list[dict]] = {}
    for cell in cells(preset):
        by_bench.setdefault(cell["benchmark"], []).append(cell)
    names = list(measured)
    head = f"{'benchmark':18s} {'cells':>5s} {'trainings':>9s} {'steps each':>10s}"
    lines = [head + "".join(f" {n[:14]:>14s}" for n in names)]
    totals = dict.fromkeys(names, 0.0)
    unknown: dict[str, set] = {n: set() for n in names}
    for bench, bench_cells in by_bench.items():
        descriptor = get_benchmark(bench)
        settings = CellConfig.from_dict(bench_cells[0]).settings()
        steps = training_steps(settings, descriptor.paper_training_items or 0)  # at the study's data sizes
        warm = settings.get("warm_steps") or 0

        def trainings_of(cell: dict) -> int:  # one model per point, or one calibration per cell
            return max(1, len(cell["points"])) if descriptor.trains_per_point else 1

        trainings = sum(trainings_of(c) for c in bench_cells)
        hours = dict.fromkeys(names, 0.0)
        for name, data in measured.items():
            costs = data.get("seconds_per_step", {})
            for cell in bench_cells:
                cost = costs.get(f"{bench}/{cell['network']}")
                if cost is None:
                    unknown[name].add(f"{bench}/{cell['network']}")
                    continue
                hours[name] += trainings_of(cell) * steps * cost / 3600
            if warm:  # one warm start per seed, at the baseline's cost
                base = costs.get(f"{bench}/{BASELINE}", 0.0)
                hours[name] += len({c["seed"] for c in bench_cells}) * warm * base / 3600
            totals[name] += hours[name]
        lines.append(f"{bench:18s} {len(bench_cells):5d} {trainings:9d} {steps:10d}"
                     + "".join(f" {hours[n]:14.1f}" for n in names))
    lines.append(f"{'total hours':18s} {sum(map(len, by_bench.values())):5d} {'':9s} {'':10s}"
                 + "".join(f" {totals[n]:14.1f}" for n in names))
    for name, data in measured.items():
        missing = f"; not measured: {len(unknown[name])} benchmark/network pairs" if unknown[name] else ""
        lines.append(f"{name}: {data.get('device', '?')}, torch {data.get('torch', '?')}, code {data.get('commit', '?')}, "
                     f"{data.get('measured', '?')}; {data.get('mode', '')}{missing}")
    return "\n".join(lines)


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
