"""Loader speed, cold (empty decode cache) vs warm (cache filled), images/s.

    DPL_DATA_ROOT=../shared/data dpl bench data_speed
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    os.environ["DPL_CACHE"] = tempfile.mkdtemp(prefix="dpl-bench-cache-")
    from dpllib.datasets import MassRoads, SRTestSet, SRTrainSet, autoencoder_dataset, severity_2afc

    loaders = {
        "SR test bsd100 (100 JPEG)": lambda: SRTestSet("bsd100"),
        "SR test set14 (14 PNG)": lambda: SRTestSet("set14"),
        "SR train bsds500 (400 JPEG -> 288px)": lambda: SRTrainSet("bsds500"),
        "Mass. Roads train (16 x 1500px PNG)": lambda: MassRoads("train"),
        "CIFAR-10 test (10k JPEG)": lambda: autoencoder_dataset("cifar10", "test"),
        "severity 2AFC (6 x 500 triplets, 64px)": lambda: severity_2afc(n_per_distortion=500),
    }
    print(f"{'loader':42s} {'items':>6s} {'cold s':>8s} {'cold img/s':>10s} {'warm s':>8s} {'warm img/s':>10s}")
    for name, make in loaders.items():
        t = time.perf_counter()
        ds = make()
        cold = time.perf_counter() - t
        t = time.perf_counter()
        ds = make()
        warm = time.perf_counter() - t
        n = sum(len(v) for v in ds.values()) if isinstance(ds, dict) else len(ds)
        print(f"{name:42s} {n:6d} {cold:8.2f} {n / cold:10.0f} {warm:8.3f} {n / warm:10.0f}")


if __name__ == "__main__":
    main()
