"""Seconds per training step of each benchmark at the paper budget, per network (deepest study
point: an upper bound), on this machine's device. Writes dpllib/presets/step_costs.json, which
`dpl run paper --dry-run` turns into device-hours.

    DPL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/step_cost.py [--networks alexnet vgg16]

Data: the offline stand-ins at the paper's sizes (BSDS500 at 288 px for SR, Massachusetts Roads at
224 px, CIFAR-10 upsampled to 64 px for the loss as SVHN's 64 px, the severity set at 64 px).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")

TINY = {
    "similarity": {"steps": 3, "severity_n": 20, "eval_limit": 50},
    "super_resolution": {"steps": 3, "train_limit": 8, "val_images": 1, "test_limit": 1, "eval_every": 1000},
    "segmentation": {"steps": 3, "eval_every": 1000},
    "autoencoding": {"steps": 3, "train_limit": 512, "test_limit": 64, "probe_epochs": 1},
}
DATASET = {"similarity": "severity", "super_resolution": "bsds500", "segmentation": "mass_roads",
           "autoencoding": "cifar10"}


def main() -> None:
    from dpllib.grid import load_preset
    from dpllib.networks import network_info
    from dpllib.trainers import RUNNERS
    from dpllib.results import environment

    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="*")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "dpllib" / "presets" / "step_costs.json"))
    args = parser.parse_args()
    networks = args.networks or [e["network"] for e in load_preset("paper")["networks"]] + ["baseline"]
    out = Path(args.out)
    costs = json.loads(out.read_text())["seconds_per_step"] if out.is_file() else {}
    print(f"{'benchmark/network':40s} {'s/step':>8s}")
    for bench in TINY:
        for net in networks:
            points = [] if net == "baseline" else [network_info(net).study_points[-1]]
            cfg = {"benchmark": bench, "network": net, "points": points, "weights": "random",
                   "dataset": DATASET[bench], "budget": "paper", "seed": 0, "overrides": TINY[bench]}
            t = time.perf_counter()
            rec, _ = RUNNERS[bench](cfg, progress=False)
            if rec["status"] != "ok":
                print(f"{bench}/{net}: failed: {rec['error']}")
                continue
            sps = rec["seconds_per_step"]
            sps = max(sps.values()) if isinstance(sps, dict) else sps
            costs[f"{bench}/{net}"] = round(sps, 4)
            print(f"{bench + '/' + net:40s} {sps:8.3f}   ({time.perf_counter() - t:.0f} s)", flush=True)
    env = environment()
    kind = "CUDA" if torch.cuda.is_available() else f"CPU, {env['threads']} threads"
    out.write_text(json.dumps({"device": f"{env['device_name']} ({kind})",
                               "torch": env["torch"], "measured": time.strftime("%Y-%m-%d"),
                               "command": "benchmarks/step_cost.py", "seconds_per_step": costs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
