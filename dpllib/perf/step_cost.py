"""Seconds per training step of each benchmark at the paper budget, per network, on this
machine's device: the 4 study points of a network train in lockstep (the default), or one at a
time with --sequential; the cost is per training (a lockstep step's time / 4). Writes
dpllib/presets/step_costs/<name>.json, which `dpl run paper --dry-run` turns into hours.

    DPL_DATA_ROOT=../shared/data dpl bench step_cost --networks alexnet resnet18
    dpl bench step_cost --device cuda --name h200       # on a GPU machine

Data: each benchmark's default (offline) data set at the paper's sizes, with the settings its
descriptor gives for measuring (``Study.step_cost_overrides``: enough data to draw batches).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")

STEPS = 8


def main(argv: list[str] | None = None) -> None:
    from dpllib.registry import benchmarks, get_benchmark
    from dpllib.config import BASELINE
    from dpllib.grid import load_preset
    from dpllib.networks import network_info
    from dpllib.results import environment

    parser = argparse.ArgumentParser(prog="dpl bench step_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="*", help="default: the paper preset's 14 and the baseline")
    parser.add_argument("--benchmarks", nargs="*", default=[n for n, b in benchmarks().items() if b.study],
                        help="default: the use cases of the study (a step is measured at the paper budget)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sequential", action="store_true", help="one point at a time (not in lockstep)")
    parser.add_argument("--name", help="file name under dpllib/presets/step_costs (default: the device kind)")
    parser.add_argument("--out", help="write the JSON here instead (not shipped with the package)")
    args = parser.parse_args(argv)
    networks = args.networks or [e["network"] for e in load_preset("paper")["networks"]] + [BASELINE]
    mode = "sequential" if args.sequential else "lockstep"
    costs = {}
    print(f"{'benchmark/network':36s} {'s/step':>9s} {'trainings/s':>11s}  ({mode})")
    for bench in args.benchmarks:
        for net in networks:
            descriptor = get_benchmark(bench)
            if descriptor.study is None:
                parser.error(f"{bench} is outside the study: it has no paper budget to measure a step of")
            points = [] if net == BASELINE else list(network_info(net).study_points)
            budget = descriptor.study.budget
            overrides = {**descriptor.study.step_cost_overrides,
                         **{k: v for k, v in {"steps": STEPS, "epochs": None, "warm_steps": 0,
                                              "lockstep": not args.sequential}.items() if k in budget}}
            cfg = {"benchmark": bench, "network": net, "points": points, "weights": "random",
                   "dataset": descriptor.default_dataset, "budget": "paper", "seed": 0, "device": args.device,
                   "overrides": overrides}
            start = time.perf_counter()
            record, _ = descriptor.run(cfg, progress=False)
            if record["status"] != "ok":
                print(f"{bench}/{net}: failed: {record['error']}")
                continue
            per_step = record["seconds_per_step"]
            per_step = max(per_step.values()) if isinstance(per_step, dict) else per_step
            costs[f"{bench}/{net}"] = round(per_step, 5)
            print(f"{bench + '/' + net:36s} {per_step:9.4f} {1 / max(per_step, 1e-9):11.1f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    env = environment()
    kind = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    out = Path(args.out) if args.out else \
        Path(__file__).resolve().parents[1] / "presets" / "step_costs" / f"{args.name or kind}.json"
    where = "CUDA" if kind == "cuda" else f"CPU, {env['threads']} threads"
    out.write_text(json.dumps({
        "device": f"{env['device_name']} ({where})",
        "torch": env["torch"], "measured": time.strftime("%Y-%m-%d"), "commit": (env["git_commit"] or "?")[:7],
        "mode": f"{mode}, median of {STEPS} steps, per training" + (" (a lockstep step / 4)" if mode == "lockstep" else ""),
        "command": "dpl bench step_cost", "seconds_per_step": costs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
