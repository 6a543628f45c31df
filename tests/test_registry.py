"""A benchmark is one registered thing, loaded when it is looked up. Your own use case (a copy of
the denoising module under another name, as the book page "Add your own use case" says) goes
through preset -> grid -> record -> results table -> a rendered chapter in the session's book
(test_book::test_book_builds_and_renders_in_chromium)."""

import os
import subprocess
import sys

import pytest

from dpllib import DplError
from dpllib.registry import benchmarks, get_benchmark

from .conftest import MINE, REPO, add_your_own_use_case, use_benchmark_modules


def test_unknown_benchmarks_and_modules_are_named(monkeypatch):
    with pytest.raises(DplError, match="unknown benchmark 'denoize'.*registered: similarity"):
        get_benchmark("denoize")
    use_benchmark_modules(monkeypatch, "no_such_module_here")
    with pytest.raises(DplError, match="cannot import the benchmark module 'no_such_module_here'"):
        benchmarks()


def test_a_lookup_imports_only_the_benchmark_asked_for():
    """`get_benchmark` imports the named use case's module (and the plugins), not every trainer:
    a kernel running one use case, or a plugin's cell, loads nothing it does not use."""
    code = ("import sys; from dpllib.registry import BUILTIN, get_benchmark; get_benchmark('instant'); "
            "print(sorted(set(BUILTIN.values()) & set(sys.modules)), 'torch' in sys.modules); "
            "get_benchmark('segmentation'); print(sorted(set(BUILTIN.values()) & set(sys.modules)))")
    env = {**os.environ, "DPL_BENCHMARKS": "tests.instant", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.splitlines() == ["[] False", "['dpllib.benchmarks.segmentation']"], out.stdout + out.stderr


def test_a_plugin_replaces_a_builtin_whichever_loads_first(monkeypatch, tmp_path):
    """A plugin's benchmark of a built-in's name wins, also when the built-in loads after it."""
    import dpllib.registry as registry

    add_your_own_use_case(monkeypatch, tmp_path)
    (tmp_path / "my_segmentation.py").write_text(
        f"import dataclasses\nfrom {MINE} import BENCHMARK as MINE\n"
        "BENCHMARK = dataclasses.replace(MINE, name='segmentation', title='Segmentation (mine)')\n")
    use_benchmark_modules(monkeypatch, MINE, "my_segmentation")
    registry._LOADED.discard(registry.BUILTIN["segmentation"])  # as in a fresh process
    registry._REGISTRY.pop("segmentation", None)
    get_benchmark(MINE)  # loads the plugins only
    assert registry.BUILTIN["segmentation"] not in registry._LOADED
    assert get_benchmark("segmentation").title == "Segmentation (mine)"  # the built-in loaded now, and lost
    assert registry.BUILTIN["segmentation"] in registry._LOADED
    assert benchmarks()["segmentation"].title == "Segmentation (mine)"


def test_a_use_case_outside_the_study_has_no_paper_budget():
    """The study is an optional layer: denoising has no Study, so it has no paper budget (a cell
    or a preset asking for one is told why), no protocol rows, and its chapter opening says it is
    outside the study; a paper budget given outside a Study is refused."""
    import dataclasses

    import pandas as pd

    from dpllib import narrative
    from dpllib.config import CellConfig
    from dpllib.protocol import deviations_table

    denoising = get_benchmark("denoising")
    assert denoising.study is None and "paper" not in denoising.budgets and denoising.protocol == ()
    with pytest.raises(DplError, match="got 'paper'; denoising is outside the study, so it has no 'paper' budget"):
        CellConfig.from_dict({"benchmark": "denoising", "network": "baseline", "dataset": "sigma25", "budget": "paper"})
    assert "denoising" not in set(deviations_table()["benchmark"])
    assert narrative.protocol_sections({"benchmarks": {"denoising": "sigma25"}}) == []  # the methods page
    sections = narrative.protocol_sections({"benchmarks": {"denoising": "sigma25", "segmentation": "mass_roads"}})
    assert [name for name, _ in sections] == ["segmentation", "all"]
    assert "**Outside the study**" in narrative.about("denoising", pd.DataFrame(columns=["benchmark"]))
    assert "Outside the study" not in narrative.about("segmentation", pd.DataFrame(columns=["benchmark"]))
    with pytest.raises(DplError, match="the 'paper' budget is the study's"):
        dataclasses.replace(denoising, budgets={**denoising.budgets, "paper": {}})
    study = get_benchmark("segmentation")
    assert study.budgets["paper"] is study.study.budget
