"""A small fabricated results set in the real record format (for the analysis and book tests):
made-up numbers with a known structure, never shown as results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml

from dpllib.config import preset_datasets
from dpllib.costs import RUN_COSTS, costs_json, device_label
from dpllib.networks import extraction_points
from dpllib.results import SCHEMA_VERSION, cell_id, code_version, environment, write_manifest, write_record

SPLITS = {"similarity": ["luminance", "contrast", "mean"], "super_resolution": ["set5"],
          "segmentation": ["test", "test_relaxed"], "autoencoding": ["[]", "[32]", "mean"]}
METRICS = {"similarity": ["2afc"], "super_resolution": ["psnr", "ssim"], "segmentation": ["quality", "completeness", "correctness"],
           "autoencoding": ["probe_accuracy"]}
DATASET = {"similarity": "equal_mse", "super_resolution": "bsds500", "segmentation": "mass_roads",
           "autoencoding": "cifar10"}
STUDY_DATASET = {"similarity": "bapps", "super_resolution": "coco", "segmentation": "mass_roads",
                 "autoencoding": ["svhn", "stl10"]}  # as the paper preset: two data sets, two chapters
NETWORKS = ["efficientnet_lite0", "efficientnet_lite1", "squeezenet1_1", "alexnet"]
REFERENCES = {"similarity": [("SSIM", "2afc", "mean", 0.7)],
              "super_resolution": [("bicubic", "psnr", "set5", 25.0), ("nearest", "psnr", "set5", 23.0)],
              "segmentation": [("all road", "quality", "test", 0.03)],
              "autoencoding": [("PCA-64 of the pixels", "probe_accuracy", "mean", 0.6)]}


def _examples(bench: str, aliases: list[str]) -> dict:
    img = torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)
    per_alias = {"super_resolution": {"sr": img}, "segmentation": {"prediction": img[:1]},
                 "autoencoding": {"reconstruction": img[None].repeat(4, 1, 1, 1)},
                 "similarity": {"decisions": {"luminance": torch.rand(6) > 0.5, "contrast": torch.rand(6) > 0.5}}}[bench]
    reference = {"super_resolution": {"lr": img[:, :8, :8], "bicubic": img, "nearest": img, "hr": img},
                 "segmentation": {"image": img, "mask": img[:1], "imaged": img[:1]},
                 "autoencoding": {"original": img[None].repeat(4, 1, 1, 1)},
                 "similarity": {"judge": {"luminance": torch.ones(6), "contrast": torch.zeros(6)},
                                "triplets": {s: {k: img[None].repeat(6, 1, 1, 1) for k in ("ref", "p0", "p1")}
                                             for s in ("luminance", "contrast")}}}[bench]
    return {**{a: per_alias for a in aliases}, "reference": reference}


def fabricate_results(folder: Path, seeds=(0, 1), networks=tuple(NETWORKS), weights=("imagenet", "random"),
                      budget: str = "smoke", datasets: dict | None = None, name: str = "fabricated",
                      noise_only: tuple[str, ...] = ()) -> Path:
    """Records of every cell of a preset (written to ``folder/preset.yaml``, and the run's
    manifest beside the records): scores rise with the point index and with ImageNet weights,
    plus seed noise; in the benchmarks ``noise_only`` they are seed noise alone."""
    datasets = datasets or DATASET
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for bench, dataset in preset_datasets({"benchmarks": datasets}):
        scale = 25.0 if bench == "super_resolution" else 0.7
        for seed in seeds:
            entries = [(n, w) for n in networks for w in weights] + [("baseline", "none")]
            for network, w in entries:
                study = [] if network == "baseline" else extraction_points(network, study_only=True)
                config = {"benchmark": bench, "network": network, "points": [p.module for p in study], "weights": w,
                          "dataset": dataset, "data_root": None, "budget": budget, "batch_size": None,
                          "seed": seed, "device": "cpu", "output_dir": str(folder), "overrides": {}}
                aliases = [p.alias for p in study] or ["baseline"]
                rows = []
                for i, alias in enumerate(aliases):
                    order = 0.0 if bench in noise_only else 0.05 * (w == "imagenet") + 0.02 * i
                    value = scale * (1 + order + 0.01 * rng.standard_normal())
                    for metric in METRICS[bench]:
                        for split in SPLITS[bench]:
                            rows.append({"point": study[i].module if study else None, "alias": alias, "metric": metric,
                                         "split": split, "value": value})
                trained = bench != "similarity" or network != "baseline"  # pixel L2 trains nothing
                record = {"schema": SCHEMA_VERSION, "code_version": code_version(), "config": config, "settings": {},
                          "environment": {"device_name": "fabricated"}, "status": "ok", "rows": rows,
                          "loss_curve": {a: [1.0, 0.5] for a in aliases} if trained else {},
                          "val_curve": {a: [[1, 0.1], [2, 0.2]] for a in aliases} if trained else {},
                          "references": [{"method": m, "metric": k, "split": s, "value": v} for m, k, s, v in REFERENCES[bench]],
                          "wall_time_s": 1.0}
                write_record(record, examples=_examples(bench, aliases))
                ids.append(cell_id(config))
    preset = {"name": name, "description": "fabricated records for tests", "budget": budget,
              "seeds": list(seeds), "device": "cpu", "baselines": True, "benchmarks": dict(datasets),
              "networks": [{"network": n, "weights": list(weights)} for n in networks]}
    (folder / "preset.yaml").write_text(yaml.safe_dump(preset))
    write_manifest(folder, {**preset, "overrides": {}}, ids)
    return folder


def fabricate_point_costs(folder: Path, networks=tuple(NETWORKS)) -> dict:
    """The run's point costs (``point_costs.json``, as ``dpl evaluate`` writes it) on this
    machine's CPU, with made-up figures rising with depth, for the study points of ``networks``:
    ``dpl evaluate`` then measures only the points it lacks. Returns what was written."""
    name, kind = device_label(environment(), "cpu")
    rows = [{"network": n, "point": p.module, "ms_per_image": 2.0 * (i + 1), "memory_mb": 5.0 * (i + 1),
             "gmacs": 0.1 * (i + 1), "params": 1000 * (i + 1)}
            for n in networks for i, p in enumerate(extraction_points(n, study_only=True))]
    data = costs_json(rows, name, kind, size=224, batch=4, repeats=5, torch_version=torch.__version__, commit="fabricated")
    (folder / RUN_COSTS).write_text(json.dumps(data, indent=1))
    return data
