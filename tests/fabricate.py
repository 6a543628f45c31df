"""A small fabricated results set in the real record format (for the analysis and book tests):
made-up numbers with some structure, never shown as results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dpllib.networks import extraction_points
from dpllib.results import SCHEMA_VERSION, write_record

SPLITS = {"similarity": ["blur", "noise", "mean"], "super_resolution": ["set5", "set14", "bsd100"],
          "segmentation": ["test"], "autoencoding": ["[]", "[32]", "mean"]}
METRIC = {"similarity": "2afc", "super_resolution": "psnr", "segmentation": "quality",
          "autoencoding": "probe_accuracy"}
DATASET = {"similarity": "severity", "super_resolution": "bsds500", "segmentation": "mass_roads",
           "autoencoding": "cifar10"}
NETWORKS = ["efficientnet_lite0", "efficientnet_lite1", "squeezenet1_1", "alexnet"]


def fabricate_results(folder: Path, seeds=(0, 1)) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for bench, metric in METRIC.items():
        scale = 25.0 if bench == "super_resolution" else 0.7
        for seed in seeds:
            entries = [(n, w) for n in NETWORKS for w in ("imagenet", "random")] + [("baseline", "none")]
            for network, weights in entries:
                points = [] if network == "baseline" else [p.module for p in extraction_points(network, study_only=True)]
                config = {"benchmark": bench, "network": network, "points": points, "weights": weights,
                          "dataset": DATASET[bench], "data_root": None, "budget": "smoke", "batch_size": None,
                          "seed": seed, "device": "cpu", "output_dir": str(folder), "overrides": {}}
                rows = []
                for i, point in enumerate(points or [None]):
                    alias = "baseline" if point is None else extraction_points(network, study_only=True)[i].alias
                    value = scale * (1 + 0.05 * (weights == "imagenet") + 0.02 * i + 0.01 * rng.standard_normal())
                    for split in SPLITS[bench]:
                        rows.append({"point": point, "alias": alias, "metric": metric, "split": split, "value": value})
                record = {"schema": SCHEMA_VERSION, "config": config, "settings": {}, "environment": {"device_name": "fabricated"},
                          "status": "ok", "rows": rows, "loss_curve": {}, "wall_time_s": 1.0}
                write_record(record)
    (folder / "preset.json").write_text(json.dumps({
        "name": "fabricated", "description": "fabricated records for tests", "budget": "smoke",
        "seeds": list(seeds), "device": "cpu", "baselines": True, "overrides": {},
        "benchmarks": DATASET, "networks": [{"network": n, "weights": ["imagenet", "random"]} for n in NETWORKS]}))
    return folder
