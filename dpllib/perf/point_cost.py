"""What each loss network costs per training step, per (network, extraction point): ms per
image (target pass, output pass, backward), memory, GMACs and parameters up to the point.
Writes dpllib/presets/point_costs/<name>.json, which `dpl recommend` reads.

    dpl bench point_cost                      # the offline and paper presets' networks, this device
    dpl bench point_cost --preset paper --device cuda --name h200
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> None:
    from dpllib.costs import costs_json, device_label, measure_point_costs
    from dpllib.grid import load_preset, points_by_network
    from dpllib.results import environment

    parser = argparse.ArgumentParser(prog="dpl bench point_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["offline", "paper"], help="measure these presets' networks")
    parser.add_argument("--networks", nargs="*", help="instead: these networks at their study points")
    parser.add_argument("--size", type=int, default=224, help="input size in px")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--name", help="file name under dpllib/presets/point_costs (default: the device kind)")
    parser.add_argument("--out", help="write the JSON here instead (not shipped with the package)")
    args = parser.parse_args(argv)
    entries = [{"network": n} for n in args.networks] if args.networks else \
        [e for name in args.preset for e in load_preset(name)["networks"]]
    todo = points_by_network(entries)
    rows = []
    print(f"{'network/point':40s} {'ms/image':>9s} {'MB/image':>9s} {'GMACs':>7s} {'params(M)':>9s}")
    for network, points in todo.items():
        for r in measure_point_costs(network, points, args.size, args.batch, args.device, args.repeats):
            rows.append(r)
            print(f"{r['network'] + '/' + r['point']:40s} {r['ms_per_image']:9.2f} {r['memory_mb']:9.2f} "
                  f"{r['gmacs']:7.3f} {r['params'] / 1e6:9.3f}", flush=True)
    env = environment()
    name, kind = device_label(env, args.device)
    data = costs_json(rows, name, kind, args.size, args.batch, args.repeats, env["torch"],
                      (env["git_commit"] or "?")[:7])
    out = Path(args.out) if args.out else \
        Path(__file__).resolve().parents[1] / "presets" / "point_costs" / f"{args.name or kind}.json"
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
