"""The user's own networks, evaluated beside a preset's run (``dpl evaluate``): kept in
``yours.json`` beside its records, with their weights files kept by content."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..config import entry_weights, preset_datasets
from ..errors import DplError
from ..files import atomic_write
from .presets import cells, entry_points


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
    from ..download import sha256_of

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
    from ..networks import point_module

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
