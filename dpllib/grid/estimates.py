"""What a preset costs before it runs: its networks, its cells and trainings per benchmark,
and the device-hours each shipped step-cost measurement implies."""

from __future__ import annotations

from ..config import BASELINE, CellConfig, entry_weights, training_steps
from ..paths import shipped_measurements
from ..registry import get_benchmark
from .presets import cells, entry_points


def networks_table(preset: dict) -> str:
    """The preset's loss networks as text: name, weights, ImageNet top-1, what the weights
    learned from, and the points each runs at."""
    from ..networks import imagenet_accuracy

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
        items = descriptor.study.training_items if descriptor.study else None
        steps = training_steps(settings, items or 0)  # at the study's data sizes
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
