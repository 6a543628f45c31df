"""The registry of use cases (benchmarks): the descriptor types and the lookup.

Each built-in use case is one module, ``dpllib/benchmarks/<name>.py``, that ends with
``BENCHMARK = Benchmark(...)`` and imports dpllib only through :mod:`dpllib.benchmark` (the
author's module, which re-exports these types); config, grid, results, analysis, figures, the
protocol table, the step-cost script and the book's table of contents read this registry and
nothing else. This module imports no torch.

Adding a use case: one module that defines ``BENCHMARK`` and one line in :data:`BUILTIN` (or,
outside dpllib, the module's name in ``$DPL_BENCHMARKS``, comma-separated, so that notebook
kernels and Slurm jobs find it too). Modules are loaded by name on first lookup: the registry
imports no use case until asked: :func:`get_benchmark` imports the named built-in's module (and
the plugin modules), :func:`benchmarks` all of them; a plugin's benchmark replaces a built-in of
the same name whichever loads first, so nothing depends on the order in which modules load.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DplError, close_matches

# The built-in benchmarks, in the book's order: {name: module defining BENCHMARK of that name}.
BUILTIN = {"similarity": "dpllib.benchmarks.similarity", "super_resolution": "dpllib.benchmarks.super_resolution",
           "segmentation": "dpllib.benchmarks.segmentation", "autoencoding": "dpllib.benchmarks.autoencoding",
           "denoising": "dpllib.benchmarks.denoising"}
PLUGINS_ENV = "DPL_BENCHMARKS"  # more benchmark modules, comma-separated
PAPER = "paper"  # the budget of the study's protocol (a Study's)


@dataclass(frozen=True)
class DataSet:
    """A data set a benchmark runs on. ``role``: 'study' (the paper's own data), 'stand-in'
    (real data standing in for the study's where it cannot be had), 'beyond' (data the study
    did not use, e.g. NIGHTS) or 'sanity' (a check, not a measurement)."""

    name: str
    title: str  # e.g. "BSDS500"
    role: str
    description: str  # what it is, e.g. "real photos; stand-in for MS-COCO"

    @property
    def label(self) -> str:
        return f"{self.title} ({self.description})"


@dataclass(frozen=True)
class Metric:
    """The score a benchmark ranks loss networks by: the mean of ``metric`` over the ``splits``
    a record has (a record need not have them all), with its direction."""

    metric: str
    splits: tuple[str, ...]
    label: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class ReferenceFigure:
    """A published figure, comparable with this project's only for the same configuration."""

    metric: str
    split: str
    network: str
    point: str | None  # module name; None: any (a baseline)
    weights: str
    dataset: str
    budget: str
    value: float
    source: str
    scale: float = 1.0  # the figure's unit per unit of the record's value (100: percent)
    differs: str = ""  # what no cell here can reproduce of its configuration (then never "same")


@dataclass(frozen=True)
class Deviation:
    """One row of the protocol table: a setting of the study's use case beside the paper and the
    authors' code, with why this project's budgets differ."""

    benchmark: str
    setting: str  # a budget key, or a description for what no key holds
    paper: str  # what the paper says ("-" where it says nothing we could read)
    authors: str  # what the authors' code does (naming its file under src/ where not the use case's script)
    documented: Any  # the paper budget's value this row describes (None: no budget key)
    why: str  # why this project's paper protocol and/or offline protocol differ ("same" if not)


@dataclass(frozen=True)
class Study:
    """A use case's part in the study ("A Systematic Performance Analysis of Deep Perceptual
    Loss Networks"): what reproducing it takes. A use case without one is outside the study: it
    runs at its own budgets, and its chapter and the methods page say so.

    ``budget`` is the ``paper`` budget (every setting its trainer reads, as the authors' code
    does); ``protocol`` documents each of them beside the paper and the authors' code
    (``authors_script``: their file under src/ that sets them, for rows naming no other file).
    """

    budget: Mapping[str, Any]
    authors_script: str
    protocol: tuple[Deviation, ...]
    reference_figures: tuple[ReferenceFigure, ...] = ()  # published figures (../shared/paper/NOTES.md)
    training_items: int | None = None  # items per epoch at the study's data sizes (estimates)
    step_cost_overrides: Mapping[str, Any] = field(default_factory=dict)  # paper settings that measure a step cheaply


@dataclass(frozen=True)
class Benchmark:
    """Everything the project knows about one use case.

    ``run(config, progress, checkpoint_dir) -> (record, examples)`` trains and tests one cell;
    ``learning_checks(table, references) -> [Check]`` says whether its models learned;
    ``example_figures(reference, outputs) -> [displayable]`` shows outputs (``outputs``: list of
    (title, the ``output_key`` example of one trained point)); ``study`` is its part in the
    study (None: outside it).
    """

    name: str
    title: str
    description: str  # one paragraph: what is trained, how it is scored
    datasets: tuple[DataSet, ...]  # the study's first
    default_dataset: str  # the one the offline preset and the notebook default use
    # Named budgets, each every setting the trainer reads: smoke (seconds on a CPU: tests, a first
    # look), offline (the book on 2 CPU cores: models that learn within the time cap; the
    # protocol rows list its differences from the study); the study's ``paper`` budget comes
    # from ``study`` and is added here. Steps count optimiser steps; epochs count passes over the
    # training items (used when steps is None); eval_every counts steps in a step budget and
    # epochs in an epoch budget.
    budgets: Mapping[str, Mapping[str, Any]]
    run: Callable[..., tuple[dict, dict]]
    primary: Metric
    output_key: str  # the example each trained point records
    example_figures: Callable[[dict, list[tuple[str, Any]]], list]
    learning_checks: Callable[[Any, Any], list] = lambda table, references: []
    no_learning: str = ""  # the answers that need no learning its checks compare with, e.g. "the noisy input"
    study: Study | None = None
    trains_per_point: bool = True  # False: one training per cell (similarity's lin calibration)
    baseline_label: str = "baseline"  # what the control without a loss network is
    # The trained model a budget's settings build for a data set (its parameter count goes into
    # the protocol table beside the authors'); None: nothing trained has a fixed architecture.
    model: Callable[[Mapping[str, Any], str], Any] | None = None

    def __post_init__(self):
        if PAPER in self.budgets and (self.study is None or self.budgets[PAPER] != self.study.budget):
            raise DplError(f"benchmark {self.name!r}: the {PAPER!r} budget is the study's; give it as "
                           f"study=Study(budget=...), or name the budget otherwise")
        if self.study is not None:
            object.__setattr__(self, "budgets", {**self.budgets, PAPER: self.study.budget})

    @property
    def protocol(self) -> tuple[Deviation, ...]:
        """Its rows of the protocol table (none outside the study)."""
        return self.study.protocol if self.study else ()

    @property
    def reference_figures(self) -> tuple[ReferenceFigure, ...]:
        return self.study.reference_figures if self.study else ()

    def budget_error(self, budget: str) -> str:
        """Why ``budget`` is not one of this use case's (for error messages)."""
        outside = f"; {self.name} is outside the study, so it has no {PAPER!r} budget" if budget == PAPER else ""
        return f"budget must be one of {sorted(self.budgets)}, got {budget!r}{outside}"

    def dataset(self, name: str) -> DataSet:
        for d in self.datasets:
            if d.name == name:
                return d
        raise DplError(f"{self.name} data set must be one of {self.dataset_names}, got {name!r}")

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.datasets)


_REGISTRY: dict[str, Benchmark] = {}
_LOADED: set[str] = set()  # module names imported
_FROM_PLUGINS: set[str] = set()  # benchmark names a plugin module registered (a built-in never replaces them)


def register(benchmark: Benchmark) -> Benchmark:
    """Add ``benchmark`` to the registry (replacing one of the same name); returns it."""
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def _plugin_modules() -> list[str]:
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


def _load(module_names: list[str]) -> None:
    """Import those of ``module_names`` not yet loaded and register their BENCHMARK."""
    for module_name in module_names:
        if module_name in _LOADED:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise DplError(f"cannot import the benchmark module {module_name!r} ({err}); check {PLUGINS_ENV}") from err
        if not isinstance(getattr(module, "BENCHMARK", None), Benchmark):
            raise DplError(f"benchmark module {module_name!r} defines no BENCHMARK = Benchmark(...)")
        _LOADED.add(module_name)
        name = module.BENCHMARK.name
        plugin = module_name not in BUILTIN.values()
        if plugin or name not in _FROM_PLUGINS:
            register(module.BENCHMARK)
        if plugin:
            _FROM_PLUGINS.add(name)


def benchmarks() -> dict[str, Benchmark]:
    """Every registered benchmark by name, built-ins first in the book's order."""
    _load([*BUILTIN.values(), *_plugin_modules()])
    builtin = [n for n in BUILTIN if n in _REGISTRY]
    return {n: _REGISTRY[n] for n in [*builtin, *(n for n in _REGISTRY if n not in BUILTIN)]}


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name`` (importing only its module and the plugins); an unknown
    name is a DplError with close matches."""
    _load([*([BUILTIN[name]] if name in BUILTIN else []), *_plugin_modules()])
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = benchmarks()
    if name not in known:
        raise DplError(f"unknown benchmark {name!r}; close matches: {close_matches(str(name), known)}; "
                       f"registered: {', '.join(known)}")
    return known[name]


@dataclass
class Check:
    """One learning check: ``measured`` is the mean over seeds, ``worst`` the worst seed."""

    benchmark: str
    check: str
    required: float
    measured: float
    worst: float
    met: bool
    failing: str = ""  # which models do not meet it
    why: str = ""  # why it can miss (shown when not met)

    def row(self) -> dict:
        return {"benchmark": self.benchmark, "check": self.check, "required": self.required,
                "measured (mean over seeds)": self.measured, "worst": self.worst, "met": self.met,
                "not met by": self.failing, "why it can miss": self.why}


__all__ = ["BUILTIN", "PAPER", "Benchmark", "Check", "DataSet", "Deviation", "Metric", "ReferenceFigure", "Study",
           "benchmarks", "get_benchmark", "register"]
