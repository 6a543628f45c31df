"""What a loss network costs: per (network, extraction point), measured on one device at one
input size, the time of one training step's loss (the target's features without gradients,
the output's with them, the backward pass to the output), the memory it needs, its
multiply-accumulates and its parameters up to the point.

``dpl bench point_cost`` (:mod:`dpllib.perf.point_cost`) measures and writes them to
``dpllib/presets/point_costs/<name>.json``; :func:`load_point_costs` reads them for
:func:`dpllib.advice.recommend`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from .errors import DplError
from .files import atomic_write
from .loss_network import LossNetwork
from .paths import shipped_measurements

COST_COLUMNS = ["network", "point", "ms_per_image", "memory_mb", "gmacs", "params"]


def measure_point_costs(network: str | LossNetwork, points: Sequence[str] | None = None, size: int = 224,
                        batch: int = 8, device: str = "cpu", repeats: int = 5, min_seconds: float = 0.5) -> list[dict]:
    """The cost of the feature MSE at each of ``points`` of ``network`` (a name, or a
    :class:`~dpllib.LossNetwork` with its own points) on ``batch`` images of
    ``size`` px, one row per point: ``ms_per_image`` (the fastest of at least ``repeats`` steps,
    and of as many as fill ``min_seconds``, after two warm-up steps, per image; a step is the
    target pass, the output pass and the backward pass), ``memory_mb`` (CUDA: peak memory a step
    allocates beyond what was held before; CPU: the bytes autograd saves for the backward pass;
    per image), ``gmacs`` (per image) and ``params`` (of the network up to the point). One
    network serves every point (each measured on its own truncated view); a name is built with
    random weights: the cost does not depend on them."""
    from torch.utils.flop_counter import FlopCounterMode

    from .loss import feature_distance

    net = network if isinstance(network, LossNetwork) else LossNetwork(network, list(points or []), weights="random")
    net = net.to(device)
    x, y = (torch.rand(batch, 3, size, size, device=device) for _ in range(2))

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    rows = []
    for point in net.points:
        only = [point.module]

        def step() -> None:
            out = x.clone().requires_grad_(True)
            with torch.no_grad():
                target = net.features(y, only)
            feature_distance(net.features(out, only), target).backward()

        step()  # warm-up: allocations, thread pools
        step()
        times: list[float] = []
        while len(times) < repeats or sum(times) < min_seconds:
            sync()
            start = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - start)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            held = torch.cuda.memory_allocated()
            step()
            memory = torch.cuda.max_memory_allocated() - held
        else:
            memory = _saved_for_backward(lambda: net.features(x.clone().requires_grad_(True), only))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net.features(x[:1], only)
        truncated = net.extractor_of(only, x.device)  # the network up to the point (the view measured above)
        params = sum(p.numel() for p in truncated.parameters())
        rows.append({"network": net.network, "point": point.module, "ms_per_image": 1000 * min(times) / batch,
                     "memory_mb": memory / batch / 2**20, "gmacs": counter.get_total_flops() / 2e9, "params": params})
    return rows


def _saved_for_backward(forward) -> int:
    """Bytes of the distinct tensors autograd saves while ``forward()`` runs."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(storages.values())


def device_label(env: dict, device: str) -> tuple[str, str]:
    """(the name a measurement gives its device, 'cuda' or 'cpu') from
    :func:`dpllib.results.environment`'s ``env``."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return f"{env['device_name']} ({'CUDA' if kind == 'cuda' else str(env['threads']) + ' CPU threads'})", kind


RUN_COSTS = "point_costs.json"  # beside a run's records: costs measured for it (dpl evaluate)


def run_costs(results_dir: str | Path) -> Path | None:
    """The run's own cost measurement (written by ``dpl evaluate``, covering every network of
    the run on one device), or None."""
    path = Path(results_dir) / RUN_COSTS
    return path if path.is_file() else None


def measure_run_costs(networks: dict[str, list[str]], results_dir: str | Path, device: str = "cpu", size: int = 224,
                      batch: int = 4, repeats: int = 5) -> Path:
    """Measure the points of ``networks`` ({network: points}) that the run's own measurement
    lacks (all of them when it was made on another device) and write it back; returns its path.
    The shipped measurements' size and batch by default, so their figures compare."""
    from .results import environment

    env = environment()
    name, kind = device_label(env, device)
    path = Path(results_dir) / RUN_COSTS
    old = json.loads(path.read_text()) if path.is_file() else {}
    same = old.get("device") == name and old.get("size") == size and old.get("batch") == batch
    have = old.get("costs", {}) if same else {}
    rows = [{"network": k.split("/", 1)[0], "point": k.split("/", 1)[1], **v} for k, v in have.items()]
    for network, points in networks.items():
        todo = [p for p in points if f"{network}/{p}" not in have]
        if todo:
            rows += measure_point_costs(network, todo, size, batch, device, repeats)
    data = costs_json(rows, name, kind, size, batch, repeats, env["torch"], (env["git_commit"] or "?")[:7])
    data["command"] = "dpl evaluate"
    return atomic_write(path, json.dumps(data, indent=1) + "\n")


def load_point_costs(source: str | Path | dict | None = None, device_kind: str | None = None) -> tuple[pd.DataFrame, str]:
    """(costs, what they are): a table with :data:`COST_COLUMNS`, one row per (network, point),
    and a line naming the device, input size and date. ``source``: a measurement (as written by
    ``dpl bench point_cost``), its file, the stem of a shipped one, or None: the newest shipped
    one of ``device_kind`` ('cuda' or 'cpu'; default: this machine's)."""
    if isinstance(source, dict):
        data = source
    elif source is not None and Path(source).suffix == ".json":
        data = json.loads(Path(source).read_text())
    else:
        shipped = shipped_measurements("point_costs")
        if source is not None:
            if source not in shipped:
                raise DplError(f"no point-cost measurement {source!r}; shipped: {sorted(shipped)}")
            data = shipped[source]
        else:
            kind = device_kind or ("cuda" if torch.cuda.is_available() else "cpu")
            mine = [d for d in shipped.values() if d.get("kind") == kind] or list(shipped.values())
            if not mine:
                raise DplError("no point-cost measurement is shipped: run dpl bench point_cost")
            data = max(mine, key=lambda d: d["measured"])
    frame = pd.DataFrame([{"network": k.split("/", 1)[0], "point": k.split("/", 1)[1], **v}
                          for k, v in data["costs"].items()], columns=COST_COLUMNS)
    return frame, f"{data['device']}, {data['size']} x {data['size']} px images, measured {data['measured']}"


def costs_json(rows: Sequence[dict], device: str, kind: str, size: int, batch: int, repeats: int, torch_version: str,
               commit: str) -> dict:
    """A measurement as ``dpl bench point_cost`` writes it."""
    return {"device": device, "kind": kind, "torch": torch_version, "measured": time.strftime("%Y-%m-%d"),
            "commit": commit, "size": size, "batch": batch,
            "method": f"fastest of >= {repeats} steps (>= 0.5 s) of {batch} images after two warm-up steps, per "
                      "image; memory: "
                      + ("peak allocated by a step" if kind == "cuda" else "tensors saved for the backward pass"),
            "command": "dpl bench point_cost",
            "costs": {f"{r['network']}/{r['point']}": {k: round(r[k], 4) if isinstance(r[k], float) else r[k]
                                                       for k in COST_COLUMNS[2:]} for r in rows}}
