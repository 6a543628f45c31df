"""A benchmark (a use case of deep perceptual loss) is one registered :class:`Benchmark`.

Each built-in benchmark is defined next to its trainer (``dpllib/trainers/<name>.py`` ends with
``BENCHMARK = Benchmark(...)``); config, grid, results, analysis, figures, the protocol table,
the step-cost script and the book's table of contents read this registry and nothing else.

Adding a use case: one module that defines ``BENCHMARK`` and one line in :data:`BUILTIN` (or,
outside dpllib, the module's name in ``$DPL_BENCHMARKS``, comma-separated, so that notebook
kernels and Slurm jobs find it too). Modules are loaded by name on first lookup: the registry
imports no trainer until asked: :func:`get_benchmark` imports the named built-in's module (and
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
BUILTIN = {"similarity": "dpllib.trainers.similarity", "super_resolution": "dpllib.trainers.super_resolution",
           "segmentation": "dpllib.trainers.segmentation", "autoencoding": "dpllib.trainers.autoencoding"}
PLUGINS_ENV = "DPL_BENCHMARKS"  # more benchmark modules, comma-separated


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
class Benchmark:
    """Everything the project knows about one use case.

    ``run(config, progress, checkpoint_dir) -> (record, examples)`` trains and tests one cell;
    ``learning_checks(table, references) -> [Check]`` says whether its models learned;
    ``example_figures(reference, outputs) -> [displayable]`` shows outputs (``outputs``: list of
    (title, the ``output_key`` example of one trained point)); ``protocol`` lists its settings
    against the study's (``dpllib.protocol.Deviation`` rows).
    """

    name: str
    title: str
    description: str  # one paragraph: what is trained, how it is scored
    datasets: tuple[DataSet, ...]  # the study's first
    default_dataset: str  # the one the offline preset and the notebook default use
    # Named budgets, each every setting the trainer reads: smoke (seconds on a CPU: tests, a first
    # look), offline (the book on 2 CPU cores: models that learn within the time cap; the
    # protocol rows list its differences from the study), paper (the study's protocol). Steps
    # count optimiser steps; epochs count passes over the training items (used when steps is
    # None); eval_every counts steps in a step budget and epochs in an epoch budget.
    budgets: Mapping[str, Mapping[str, Any]]
    run: Callable[..., tuple[dict, dict]]
    primary: Metric
    output_key: str  # the example each trained point records
    example_figures: Callable[[dict, list[tuple[str, Any]]], list]
    learning_checks: Callable[[Any, Any], list] = lambda table, references: []
    protocol: tuple = ()
    trains_per_point: bool = True  # False: one training per cell (similarity's lin calibration)
    paper_training_items: int | None = None  # items per epoch at the study's data sizes (estimates)
    step_cost_overrides: Mapping[str, Any] = field(default_factory=dict)  # paper settings that measure a step cheaply
    reference_figures: tuple[ReferenceFigure, ...] = ()  # published figures (../shared/paper/NOTES.md)
    baseline_label: str = "baseline"  # what the control without a loss network is
    # The trained model a budget's settings build for a data set (its parameter count goes into
    # the protocol table beside the authors'); None: nothing trained has a fixed architecture.
    model: Callable[[Mapping[str, Any], str], Any] | None = None

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


__all__ = ["BUILTIN", "Benchmark", "Check", "DataSet", "Metric", "ReferenceFigure", "benchmarks", "get_benchmark",
           "register"]
