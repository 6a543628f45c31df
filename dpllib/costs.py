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
from .paths import shipped_measurements

COST_COLUMNS = ["network", "point", "ms_per_image", "memory_mb", "gmacs", "params"]


def measure_point_costs(network: str, points: Sequence[str], size: int = 224, batch: int = 8, device: str = "cpu",
                        repeats: int = 5, min_seconds: float = 0.5) -> list[dict]:
    """The cost of the feature MSE at each of ``points`` of ``network`` on ``batch`` images of
    ``size`` px, one row per point: ``ms_per_image`` (the fastest of at least ``repeats`` steps,
    and of as many as fill ``min_seconds``, after two warm-up steps, per image; a step is the
    target pass, the output pass and the backward pass), ``memory_mb`` (CUDA: peak memory a step
    allocates beyond what was held before; CPU: the bytes autograd saves for the backward pass;
    per image), ``gmacs`` (per image) and ``params`` (of the network up to the point). One
    network serves every point (each measured on its own truncated view); random weights: the
    cost does not depend on them."""
    from torch.utils.flop_counter import FlopCounterMode

    from .loss import PerceptualLoss, feature_distance

    loss = PerceptualLoss(network, list(points), weights="random", check_inputs=False).to(device)
    x, y = (torch.rand(batch, 3, size, size, device=device) for _ in range(2))

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    rows = []
    for point in loss.points:
        only = [point.module]

        def step() -> None:
            out = x.clone().requires_grad_(True)
            with torch.no_grad():
                target = loss.features(y, only)
            feature_distance(loss.features(out, only), target).backward()

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
            memory = _saved_for_backward(lambda: loss.features(x.clone().requires_grad_(True), only))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            loss.features(x[:1], only)
        truncated = loss.extractor.truncated(only)  # the network up to the point
        params = sum(p.numel() for p in truncated.parameters())
        rows.append({"network": network, "point": point.module, "ms_per_image": 1000 * min(times) / batch,
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
