"""The ``dpl`` command: ``dpl run | status | table | recommend | evaluate | data | book | lab | networks | bench``."""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
from pathlib import Path


def _networks(args: argparse.Namespace) -> int:
    from .networks import extraction_points, list_networks, network_info

    if args.name:
        info = network_info(args.name)
        print(info)
        points = extraction_points(args.name, study_only=not args.all)
        for p in points:
            flag = f"study {p.study_index}" if p.in_study else ""
            layout = f"{p.layout}" + (f" (+{p.prefix_tokens} prefix)" if p.prefix_tokens else "")
            print(f"  {p.module:40s} {p.alias:16s} depth {p.depth:.3f}  C={p.channels}  /{p.reduction}  {layout:20s} {flag}")
        return 0
    print(f"{'network':20s} {'top1':>6s} {'params(M)':>9s} {'GMACs':>7s} {'BN':>3s}  study points")
    for name in list_networks():
        info = network_info(name)
        top1 = f"{info.top1:.1f}" if info.top1 is not None else "-"
        print(f"{name:20s} {top1:>6s} {info.params / 1e6:9.1f} {info.gmacs:7.2f} {'yes' if info.has_batchnorm else 'no':>3s}  "
              + ", ".join(info.study_points))
    return 0


SPEED_SCRIPTS = ("loss_speed", "data_speed", "step_cost", "point_cost")  # modules of dpllib.perf


def _bench(args: argparse.Namespace) -> int:
    sys.argv = [f"dpl bench {args.what}", *args.rest]
    runpy.run_module(f"dpllib.perf.{args.what}", run_name="__main__", alter_sys=True)
    return 0


def _results_dir(args: argparse.Namespace, preset: dict) -> Path:
    from .paths import preset_results_dir

    return preset_results_dir(preset["name"], args.results)


def _run(args: argparse.Namespace) -> int:
    from . import grid

    preset = grid.load_preset(args.preset)
    results_dir = _results_dir(args, preset)
    if args.dry_run:
        preset = grid.with_yours(preset, results_dir)
        print(f"preset {preset['name']}: {len(grid.cells(preset))} cells -> {results_dir}")
        print(grid.networks_table(preset))
        print(grid.estimate(preset))
        return 0
    if args.slurm:
        jobs = grid.run_slurm(preset, results_dir, partition=args.partition, time_min=args.time_min,
                              parallelism=args.parallelism, retry_failed=args.retry_failed,
                              rerun_stale=args.rerun_stale, cells_per_job=args.cells_per_job)
        print(f"submitted {len(jobs)} cells" + (f" as job array {jobs[0].job_id.split('_')[0]}" if jobs else ""))
        return 0
    outcome = grid.run(preset, results_dir, workers=args.workers, retry_failed=args.retry_failed,
                       rerun_stale=args.rerun_stale)
    print(", ".join(f"{k}: {v}" for k, v in sorted(outcome.items())))
    statuses = grid.status(preset, results_dir)  # expanded and read once for the table and the exit code
    print(grid.status_table(preset, results_dir, statuses))
    failed = sum(s.state == "failed" for s in statuses)
    if failed:  # a script (Slurm, CI) must see it
        print(f"dpl run: {failed} cell(s) of {preset['name']} are failed; their records hold the cause", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from . import grid

    preset = grid.load_preset(args.preset)
    print(grid.status_table(preset, _results_dir(args, preset)))
    return 0


def _table(args: argparse.Namespace) -> int:
    from . import grid, results

    if args.preset is None and args.results is None:
        print("dpl table: name a preset (the records of its run) or --results FOLDER (all its records)", file=sys.stderr)
        return 2
    ids = preset = None
    if args.preset is not None:  # the run as it ran: its manifest names the preset and the cells
        folder = _results_dir(args, grid.load_preset(args.preset))
        preset, ids = results.read_manifest(folder)
    else:
        folder = Path(args.results).resolve()
    frame = results.table(folder, None if args.all_records else ids)
    if preset is not None:
        frame = results.mark_yours(frame, preset)
    out = Path(args.out).resolve() if args.out else folder / "table.parquet"
    results.write_table(frame, out)
    print(f"{len(frame)} rows from {frame['cell_id'].nunique() if len(frame) else 0} cells -> {out}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from . import grid, results
    from .advice import recommend
    from .costs import run_costs

    preset = grid.load_preset(args.preset)
    folder = _results_dir(args, preset)
    run = results.load_run(folder)
    if args.benchmark not in set(run.table["benchmark"]):
        print(f"dpl recommend: the {preset['name']} results have no {args.benchmark} records; run: dpl run {args.preset}",
              file=sys.stderr)
        return 2
    run = run.on_datasets({args.benchmark: args.dataset or run.first_datasets()[args.benchmark]})
    print(recommend(run.table, args.benchmark, args.max_ms, args.max_memory,
                    None if args.weights == "any" else args.weights, args.costs or run_costs(folder)))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import grid
    from .config import preset_datasets
    from .costs import measure_run_costs

    preset = grid.load_preset(args.preset)
    results_dir = _results_dir(args, preset)
    entry = grid.add_yours(preset, results_dir, args.network, args.weights, args.points, args.benchmarks)
    weights = entry["weights"][0]

    def mine(cell: dict) -> bool:
        return cell["network"] == entry["network"] and cell["weights"] == weights

    print(f"{entry['network']} ({weights}) at {', '.join(entry['points'])} on the {preset['name']} preset's "
          f"{', '.join(entry.get('benchmarks') or dict.fromkeys(b for b, _ in preset_datasets(preset)))} "
          f"({preset['budget']} budget, seeds {preset['seeds']}) -> {results_dir}")
    outcome = grid.run(preset, results_dir, workers=args.workers, retry_failed=args.retry_failed, only=mine)
    print(", ".join(f"{k}: {v}" for k, v in sorted(outcome.items())))
    statuses = grid.status(preset, results_dir)
    failed = sum(s.state == "failed" for s in statuses if mine(s.cell))
    others = sum(s.state != "done" for s in statuses if not mine(s.cell))
    if not args.no_costs:
        import torch

        device = "cuda" if torch.cuda.is_available() and preset["device"] != "cpu" else "cpu"
        points = grid.points_by_network(grid.with_yours(preset, results_dir)["networks"])
        print(f"costs of the run's loss networks on this device: {measure_run_costs(points, results_dir, device)}")
    if others:
        print(f"{others} of the preset's own cells are not done: `dpl run {args.preset}` runs them for the comparison")
    print(f"in the book: dpl book --preset {args.preset}" + (f" --results {results_dir}" if args.results else ""))
    if failed:
        print(f"dpl evaluate: {failed} cell(s) of {entry['network']} failed; their records hold the cause "
              "(rerun them with --retry-failed)", file=sys.stderr)
        return 1
    return 0


def _data(args: argparse.Namespace) -> int:
    from .datasets import dataset_path, download_nights

    if args.name == "nights":
        folder = download_nights(args.root, args.subset)
    elif args.subset is not None:
        print("dpl data: --subset applies to nights only (its 100 chunk folders)", file=sys.stderr)
        return 2
    else:
        folder = dataset_path(args.name, args.root)
    print(f"{args.name}: {folder}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from .report import build_book

    index = build_book(args.preset, args.results, book_dir=args.book_dir, run=not args.no_run, workers=args.workers,
                       force=args.force)
    print(f"book: {index}")
    return 0


def lab_command(port: int | None = None, open_browser: bool = True) -> list[str]:
    """JupyterLab on dpllib's notebooks with this environment's kernel; as root (in a
    container) with --allow-root, which Jupyter otherwise refuses."""
    from .paths import resource

    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={resource('notebooks')}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    if port is not None:
        cmd.append(f"--port={port}")
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def _lab(args: argparse.Namespace) -> int:
    return subprocess.call(lab_command(args.port, not args.no_browser))


DEBUG_ENV = "DPL_DEBUG"


def parser() -> argparse.ArgumentParser:
    """The ``dpl`` command line: its subcommands and their options."""
    out = argparse.ArgumentParser(prog="dpl", description="Deep perceptual loss networks")
    out.add_argument("--debug", action="store_true", help=f"show tracebacks (also {DEBUG_ENV}=1)")
    sub = out.add_subparsers(dest="command", required=True)
    _add_grid_commands(sub)
    _add_result_commands(sub)
    return out


def _add_grid_commands(sub) -> None:
    """networks, bench, run, status, table: what a preset runs and how far it is."""
    p = sub.add_parser("networks", help="list networks, or one network's extraction points")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="every module, not just the study's points")
    p.set_defaults(func=_networks)
    p = sub.add_parser("bench", help="run a speed script (dpllib.perf); its own options follow")
    p.add_argument("what", choices=SPEED_SCRIPTS)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)
    p = sub.add_parser("run", help="run a preset's missing cells (resumable)")
    p.add_argument("preset", help="offline, paper, or a preset YAML file")
    p.add_argument("--results", help="results folder (default results/PRESET)")
    p.add_argument("--workers", type=int, default=1, help="parallel notebook processes (local)")
    p.add_argument("--dry-run", action="store_true", help="print cell counts and estimated hours")
    p.add_argument("--retry-failed", action="store_true", help="rerun cells recorded as failed")
    p.add_argument("--rerun-stale", action="store_true", help="rerun cells whose records other code wrote")
    p.add_argument("--slurm", action="store_true", help="submit one Slurm job array via submitit")
    p.add_argument("--partition")
    p.add_argument("--time-min", type=int, default=240, help="Slurm time limit per cell (minutes)")
    p.add_argument("--parallelism", type=int, default=16, help="Slurm array tasks at once")
    p.add_argument("--cells-per-job", type=int, default=1, help="cells sharing one Slurm task's GPU")
    p.set_defaults(func=_run)
    p = sub.add_parser("status", help="done / failed / pending cells per benchmark")
    p.add_argument("preset")
    p.add_argument("--results")
    p.set_defaults(func=_status)
    p = sub.add_parser("table", help="a preset's records (or a folder's) -> one tidy Parquet table")
    p.add_argument("preset", nargs="?", help="offline, paper, or a preset YAML file")
    p.add_argument("--results", help="results folder (default: the preset's)")
    p.add_argument("--all-records", action="store_true",
                   help="every record in the folder, not only the cells of the run (its run.json)")
    p.add_argument("--out", help="default: table.parquet in the results folder")
    p.set_defaults(func=_table)


def _add_result_commands(sub) -> None:
    """recommend, evaluate, data, book, lab: using a run's results, adding to them, reading them."""
    p = sub.add_parser("recommend", help="the loss network to use for a benchmark within a compute budget")
    p.add_argument("benchmark")
    p.add_argument("--preset", default="offline", help="whose results (offline, paper, or a preset YAML file)")
    p.add_argument("--results", help="results folder (default results/PRESET)")
    p.add_argument("--dataset", help="default: the benchmark's first data set in the results")
    p.add_argument("--max-ms", type=float, help="most milliseconds per image (the cost measurement's size)")
    p.add_argument("--max-memory", type=float, help="most MB per image")
    p.add_argument("--weights", default="imagenet", help="imagenet, random, ... or any")
    p.add_argument("--costs", help="a point-cost JSON (dpl bench point_cost) or a shipped one's name")
    p.set_defaults(func=_recommend)
    p = sub.add_parser("evaluate", help="run your network on a preset's benchmarks; the book shows it beside theirs")
    p.add_argument("network", help="any torchvision or timm name (timm:NAME), e.g. resnet18, timm:convnext_tiny")
    p.add_argument("--points", nargs="+", help="modules or aliases (default: its study or study-style points)")
    p.add_argument("--weights", default="imagenet", help="imagenet, random or a weights file (.pth/.safetensors)")
    p.add_argument("--preset", default="offline", help="whose benchmarks, budget and seeds (offline, paper, a YAML)")
    p.add_argument("--results", help="the preset's results folder (default results/PRESET)")
    p.add_argument("--benchmarks", nargs="+", help="only these of the preset's benchmarks")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--retry-failed", action="store_true", help="rerun its cells recorded as failed")
    p.add_argument("--no-costs", action="store_true", help="do not measure the loss networks' costs here")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("data", help="fetch a data set into the data root (verified, resumable)")
    p.add_argument("name", help="a name of dpllib.datasets.DATASETS, e.g. bapps_2afc_val, nights")
    p.add_argument("--root", help="the data root (default $DPL_DATA_ROOT)")
    p.add_argument("--subset", type=int, help="nights: only its first N of 100 folders (by chunks)")
    p.set_defaults(func=_data)
    p = sub.add_parser("book", help="run the preset (resumable), the analysis notebooks, the book")
    p.add_argument("--preset", default="offline")
    p.add_argument("--results", help="results folder (default results/PRESET)")
    p.add_argument("--workers", type=int, default=1, help="parallel notebook processes: cells, then chapters")
    p.add_argument("--book-dir", help="where to build (default: the checkout's book/, else RESULTS/book)")
    p.add_argument("--no-run", action="store_true", help="build from the records already there")
    p.add_argument("--force", action="store_true", help="re-execute every chapter")
    p.set_defaults(func=_book)
    p = sub.add_parser("lab", help="JupyterLab on notebooks/ with this environment's kernel")
    p.add_argument("--port", type=int)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=_lab)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .errors import DplError, UnavailableError

    try:
        return args.func(args)
    except (DplError, UnavailableError) as err:  # bad input: what is wrong and the fix, no traceback
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"dpl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
