"""A benchmark is one registered thing: a toy fifth benchmark, defined in the tests only, goes
through preset -> grid -> record -> results table -> a rendered chapter."""

import os
import subprocess
import sys

import pytest

from dpllib import DplError, analysis, results
from dpllib.benchmark import benchmarks, get_benchmark

from .conftest import REPO, TOY, use_benchmark_modules


@pytest.fixture()
def toy_registered(monkeypatch):
    """The toy benchmark registered through $DPL_BENCHMARKS (kernels inherit it), for this test only."""
    use_benchmark_modules(monkeypatch, TOY)
    yield get_benchmark("denoising")


def test_unknown_benchmarks_and_modules_are_named(monkeypatch):
    with pytest.raises(DplError, match="unknown benchmark 'denoize'.*registered: similarity"):
        get_benchmark("denoize")
    use_benchmark_modules(monkeypatch, "no_such_module_here")
    with pytest.raises(DplError, match="cannot import the benchmark module 'no_such_module_here'"):
        benchmarks()


def test_a_lookup_imports_only_the_benchmark_asked_for():
    """`get_benchmark` imports the named use case's module (and the plugins), not every trainer:
    a kernel running one use case, or a plugin's cell, loads nothing it does not use."""
    code = ("import sys; from dpllib.benchmark import BUILTIN, get_benchmark; get_benchmark('instant'); "
            "print(sorted(set(BUILTIN.values()) & set(sys.modules)), 'torch' in sys.modules); "
            "get_benchmark('segmentation'); print(sorted(set(BUILTIN.values()) & set(sys.modules)))")
    env = {**os.environ, "DPL_BENCHMARKS": "tests.instant", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.splitlines() == ["[] False", "['dpllib.trainers.segmentation']"], out.stdout + out.stderr


def test_a_plugin_replaces_a_builtin_whichever_loads_first(monkeypatch, tmp_path):
    """A plugin's benchmark of a built-in's name wins, also when the built-in loads after it."""
    import dpllib.benchmark as registry

    (tmp_path / "my_segmentation.py").write_text(
        "import dataclasses\nfrom tests.toy_denoising import BENCHMARK as TOY\n"
        "BENCHMARK = dataclasses.replace(TOY, name='segmentation', title='Segmentation (mine)')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    use_benchmark_modules(monkeypatch, TOY, "my_segmentation")
    registry._LOADED.discard(registry.BUILTIN["segmentation"])  # as in a fresh process
    registry._REGISTRY.pop("segmentation", None)
    get_benchmark("denoising")  # loads the plugins only
    assert registry.BUILTIN["segmentation"] not in registry._LOADED
    assert get_benchmark("segmentation").title == "Segmentation (mine)"  # the built-in loaded now, and lost
    assert registry.BUILTIN["segmentation"] in registry._LOADED
    assert benchmarks()["segmentation"].title == "Segmentation (mine)"


@pytest.mark.slow
@pytest.mark.xdist_group("built_book")
def test_a_fifth_benchmark_goes_from_preset_to_chapter(toy_registered, built_book):
    """The session's book runs the toy (a plugin) beside the fabricated use cases: its cells ran
    through the grid (papermill kernels found the plugin), its table rows and learning check are
    there, and its chapter is in the book with charts and example outputs."""
    assert list(benchmarks())[-1] == "denoising"
    assert built_book.toy_outcome["ok"] == 4 and set(built_book.toy_outcome) == {"ok", "skipped"}  # the rest ran
    table = results.load_run(built_book.run).table
    toy = table[table["benchmark"] == "denoising"]
    assert set(toy["alias"]) == {"stem", "stage1", "baseline"} and set(toy["seed"]) == {0, 1}
    checks = analysis.learning_checks(toy, results.references(results.records(built_book.run)))
    assert len(checks) and checks["met"].all(), checks  # the pixel-MSE control beats the noisy input
    page = (built_book.html / "chapters" / "denoising.html").read_text()
    assert "Denoising (toy)" in page and ".svg" in page and "data:image/png;base64" in page  # charts, outputs
    assert "chapters/denoising" in (built_book.book / "_toc.yml").read_text()
