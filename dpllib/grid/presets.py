"""Presets: a YAML file -> a checked preset -> its cells (validated cell configs)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import yaml

from ..config import BASELINE, CellConfig, entry_weights, preset_datasets
from ..errors import DplError
from ..registry import get_benchmark
from ..results import cell_id


# What a preset may hold (JSON Schema); dpllib checks names (benchmarks, networks, points, data
# sets, budget settings) against its registries after the shapes are right.
NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
PRESET_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1}, "description": {"type": "string"},
        "budget": {"type": "string"}, "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                                "minItems": 1},
        "device": {"type": "string", "pattern": "^(auto|cpu|cuda(:[0-9]+)?)$"}, "data_root": {"type": ["string", "null"]},
        "benchmarks": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string", "minLength": 1}, NAMES]}},
        "networks": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["network"],
            "properties": {"network": {"type": "string", "minLength": 1},
                           "weights": {"anyOf": [{"type": "string"}, NAMES]}, "points": NAMES,
                           "benchmarks": NAMES, "yours": {"type": "boolean"}}}},
        "baselines": {"type": "boolean"}, "overrides": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}
# How to write each part, added to an error about it.
PRESET_HINTS = {"seeds": "a list of integers, e.g. seeds: [0, 1]",
                "benchmarks": "a mapping of benchmark to data set, or to a list of them, e.g. benchmarks: "
                              "{super_resolution: bsds500, autoencoding: [svhn, stl10]}",
                "networks": "a list of entries like {network: vgg16, weights: [imagenet], points: [relu2_2]}; "
                            "benchmarks: [similarity] limits an entry to those benchmarks, yours: true marks it as "
                            "the user's (dpl evaluate)",
                "overrides": "a mapping of benchmark to budget settings, e.g. overrides: {super_resolution: {steps: 100}}",
                "device": "auto, cpu, cuda or cuda:N"}


def preset_problems(preset: object) -> list[str]:
    """Every problem of a preset's shape, one line each: where it is, what is wrong, how to write it."""
    import jsonschema

    out = []
    for err in sorted(jsonschema.Draft202012Validator(PRESET_SCHEMA).iter_errors(preset), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.absolute_path) or "the preset"
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            what = f"{err.message}; allowed: {', '.join(allowed)}"
        else:
            what = err.message
        hint = PRESET_HINTS.get(str(err.absolute_path[0])) if err.absolute_path else None
        out.append(f"{where}: {what}" + (f" (write {hint})" if hint else ""))
    return out


def preset_path(name_or_path: str) -> Path:
    """A preset file: a path, or the name of a shipped preset (``offline``, ``paper``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = resources.files("dpllib") / "presets" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    names = [p.name.removesuffix(".yaml") for p in (resources.files("dpllib") / "presets").iterdir()
             if p.name.endswith(".yaml")]
    raise DplError(f"no preset {name_or_path!r}: not a YAML file and not one of {sorted(names)}")


def load_preset(name_or_path: str) -> dict:
    """Safe-load and validate a preset; unknown keys, networks, points, benchmarks or data sets
    are errors that name them."""
    path = preset_path(name_or_path)
    try:
        preset = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DplError(f"preset {path} is not valid YAML: {err}") from err
    problems = preset_problems(preset)
    if problems:
        raise DplError(f"preset {path} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  "
                       + "\n  ".join(problems))
    preset.setdefault("name", path.stem)
    preset.setdefault("seeds", [0])
    preset.setdefault("device", "auto")
    preset.setdefault("baselines", True)
    preset.setdefault("overrides", {})
    if preset.get("data_root"):  # relative to the preset file, absolute from here on
        preset["data_root"] = str((path.parent / Path(preset["data_root"]).expanduser()).resolve())
    budget = preset.get("budget", "smoke")
    preset["budget"] = budget
    chosen = preset.get("benchmarks") or {}
    for bench, dataset in preset_datasets(preset):
        try:
            descriptor = get_benchmark(bench)
            descriptor.dataset(dataset)
        except DplError as err:
            raise DplError(f"preset {path}: {err}") from None
        if budget not in descriptor.budgets:
            raise DplError(f"preset {path}: {descriptor.name} {descriptor.budget_error(budget)}")
    for bench in preset["overrides"]:
        if bench not in chosen:
            raise DplError(f"preset {path}: overrides for {bench!r}, which the preset does not run")
    for entry in preset.get("networks") or []:
        for bench in set(entry.get("benchmarks", ())) - set(chosen):
            raise DplError(f"preset {path}: {entry['network']} is limited to {bench!r}, which the preset does not run; "
                           f"it runs {', '.join(chosen)}")
    cells(preset)  # validates every network, point and override through CellConfig
    return preset


def entry_points(entry: dict) -> list[str]:
    """The points of a preset's network entry: those it lists, else its network's study (or
    study-style) points."""
    from ..networks import catalogue_points, network_info

    network = entry["network"]
    return list(entry.get("points") or catalogue_points(network) or network_info(network).study_points)


def points_by_network(entries: list[dict]) -> dict[str, list[str]]:
    """{network: the module of every point its entries run at}, in the entries' order (an alias
    and its module are one point; weights aside: the cost of a point does not depend on them)."""
    from ..networks import point_module

    out: dict[str, list[str]] = {}
    for e in entries:
        modules = [point_module(e["network"], p) for p in entry_points(e)]
        out[e["network"]] = list(dict.fromkeys(out.get(e["network"], []) + modules))
    return out


def cells(preset: dict, results_dir: str | os.PathLike = "results") -> list[dict]:
    """Expand a preset into cell configs (validated; ``output_dir`` absolute)."""
    results_dir = Path(results_dir).expanduser().resolve()
    out = []
    for bench, dataset in preset_datasets(preset):
        for seed in preset["seeds"]:
            common = {"benchmark": bench, "dataset": dataset, "budget": preset["budget"], "seed": seed,
                      "device": preset["device"], "data_root": preset.get("data_root"),
                      "output_dir": str(results_dir), "batch_size": None,
                      "overrides": dict(preset["overrides"].get(bench, {}))}
            entries = [e for e in preset.get("networks") or [] if bench in e.get("benchmarks", [bench])]
            for entry in entries:
                weights = entry_weights(entry)
                points = entry_points(entry)
                if not points:
                    raise DplError(f"{entry['network']} has no study-style points (fewer than 4 spatial maps): "
                                   "list its points in the preset")
                for w in weights:
                    out.append({**common, "network": entry["network"], "points": list(points), "weights": w})
            if preset.get("baselines"):
                out.append({**common, "network": BASELINE, "points": [], "weights": "none"})
    for cell in out:
        cell.update(CellConfig.from_dict(cell).to_dict())  # validate; points become module names
    return out


def cell_ids(preset: dict) -> set[str]:
    """The ids of a preset's cells (the records a table of that preset reads)."""
    return {cell_id(c) for c in cells(preset)}
