"""Seconds per training step of each benchmark at the paper budget, per network, on this
machine's device: the 4 study points of a network train in lockstep (the default), or one at a
time with --sequential; the cost is per training (a lockstep step's time / 4). Writes
dpllib/presets/step_costs/<name>.json, which `dpl run paper --dry-run` turns into hours.

    DPL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/step_cost.py --networks alexnet resnet18
    .venv/bin/python benchmarks/step_cost.py --device cuda --name h200       # on a GPU machine

Data: the offline stand-ins at the paper's sizes (BSDS500 at 288 px for SR, Massachusetts Roads
at 224 px, CIFAR-10 fed at 64 px to the loss as SVHN's padded 64 px, the equal-MSE set at 64 px).
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
TINY = {  # enough data to draw batches; the steps and sizes are the paper budget's
    "similarity": {"synthetic_n": 100, "eval_limit": 20},
    "super_resolution": {"train_limit": 8, "val_images": 1, "test_limit": 1, "test_sets": ["set5"],
                         "test_sizes": [None], "eval_every": 10_000},
    "segmentation": {"eval_every": 10_000},
    "autoencoding": {"train_limit": 1024, "test_limit": 64, "probe_epochs": 1, "train_split": "train",
                     "loss_size": 64, "val_fraction": 0.0, "patience": None},
}
DATASET = {"similarity": "equal_mse", "super_resolution": "bsds500", "segmentation": "mass_roads",
           "autoencoding": "cifar10"}


def main() -> None:
    from dpllib.grid import load_preset
    from dpllib.networks import network_info
    from dpllib.results import environment
    from dpllib.trainers import RUNNERS

    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="*", help="default: the paper preset's 14 and the baseline")
    parser.add_argument("--benchmarks", nargs="*", default=list(TINY))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sequential", action="store_true", help="one point at a time (not in lockstep)")
    parser.add_argument("--name", help="file name under dpllib/presets/step_costs (default: the device kind)")
    parser.add_argument("--out", help="write the JSON here instead (not shipped with the package)")
    args = parser.parse_args()
    networks = args.networks or [e["network"] for e in load_preset("paper")["networks"]] + ["baseline"]
    mode = "sequential" if args.sequential else "lockstep"
    costs = {}
    print(f"{'benchmark/network':36s} {'s/step':>9s} {'trainings/s':>11s}  ({mode})")
    for bench in args.benchmarks:
        for net in networks:
            points = [] if net == "baseline" else list(network_info(net).study_points)
            overrides = {**TINY[bench], "lockstep": not args.sequential}
            if bench == "similarity":
                overrides["steps"] = STEPS
            else:
                overrides.update(steps=STEPS, epochs=None, warm_steps=0)
            cfg = {"benchmark": bench, "network": net, "points": points, "weights": "random", "dataset": DATASET[bench],
                   "budget": "paper", "seed": 0, "device": args.device, "overrides": overrides}
            start = time.perf_counter()
            record, _ = RUNNERS[bench](cfg, progress=False)
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
        Path(__file__).resolve().parents[1] / "dpllib" / "presets" / "step_costs" / f"{args.name or kind}.json"
    where = "CUDA" if kind == "cuda" else f"CPU, {env['threads']} threads"
    out.write_text(json.dumps({
        "device": f"{env['device_name']} ({where})",
        "torch": env["torch"], "measured": time.strftime("%Y-%m-%d"), "commit": (env["git_commit"] or "?")[:7],
        "mode": f"{mode}, median of {STEPS} steps, per training" + (" (a lockstep step / 4)" if mode == "lockstep" else ""),
        "command": "benchmarks/step_cost.py", "seconds_per_step": costs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
