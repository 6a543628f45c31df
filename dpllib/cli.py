"""The ``dpl`` command: ``dpl networks [NAME]``, ``dpl bench loss``."""

from __future__ import annotations

import argparse
import runpy
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
            print(f"  {p.module:40s} {p.alias:16s} depth {p.depth:.3f}  C={p.channels}  /{p.reduction}  {flag}")
        return 0
    print(f"{'network':20s} {'top1':>6s} {'params(M)':>9s} {'GMACs':>7s} {'BN':>3s}  study points")
    for name in list_networks():
        info = network_info(name)
        top1 = f"{info.top1:.1f}" if info.top1 is not None else "-"
        print(f"{name:20s} {top1:>6s} {info.params / 1e6:9.1f} {info.gmacs:7.2f} {'yes' if info.has_batchnorm else 'no':>3s}  "
              + ", ".join(info.study_points))
    return 0


def _bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{args.what}_speed.py"
    if not script.is_file():
        print(f"no benchmark script {script} (run from a source checkout)", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dpl", description="Deep perceptual loss networks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("networks", help="list networks, or one network's extraction points")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="every module, not just the study's points")
    p.set_defaults(func=_networks)
    p = sub.add_parser("bench", help="run a speed benchmark script")
    p.add_argument("what", choices=["loss"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
