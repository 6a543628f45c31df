"""A benchmark is one registered thing: a toy fifth benchmark, defined in the tests only, goes
through preset -> grid -> record -> results table -> a rendered chapter."""

import os
import shutil

import pytest
import yaml

import dpllib.benchmark as benchmark_module
from dpllib import DplError, analysis, grid, report, results
from dpllib.benchmark import benchmarks, get_benchmark

from .conftest import REPO

TOY = "tests.toy_denoising"


@pytest.fixture()
def toy_registered(monkeypatch):
    """The toy benchmark registered through $DPL_BENCHMARKS (kernels inherit it), for this test only."""
    monkeypatch.setenv("DPL_BENCHMARKS", TOY)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr("dpllib.benchmark._REGISTRY", benchmarks())
    monkeypatch.setattr("dpllib.benchmark._LOADED", set(benchmark_module._LOADED))
    yield get_benchmark("denoising")


def test_unknown_benchmarks_and_modules_are_named(monkeypatch):
    with pytest.raises(DplError, match="unknown benchmark 'denoize'.*registered: similarity"):
        get_benchmark("denoize")
    monkeypatch.setattr("dpllib.benchmark._REGISTRY", benchmarks())
    monkeypatch.setenv("DPL_BENCHMARKS", "no_such_module_here")
    with pytest.raises(DplError, match="cannot import the benchmark module 'no_such_module_here'"):
        benchmarks()


@pytest.mark.slow
def test_a_fifth_benchmark_goes_from_preset_to_chapter(toy_registered, data_env, tmp_path):
    assert list(benchmarks())[-1] == "denoising"
    preset_file = tmp_path / "toy.yaml"
    preset_file.write_text(yaml.safe_dump({
        "name": "toy", "budget": "smoke", "seeds": [0], "device": "cpu", "baselines": True,
        "benchmarks": {"denoising": "bsds500"},
        "networks": [{"network": "efficientnet_lite0", "weights": ["imagenet"], "points": ["stem", "stage1"]}]}))
    preset = grid.load_preset(str(preset_file))
    out = tmp_path / "results"
    assert grid.run(preset, out, progress=False) == {"ok": 2}  # papermill kernels found the toy too
    table = results.table(out, results.read_manifest(out)[1])
    assert set(table["benchmark"]) == {"denoising"} and set(table["alias"]) == {"stem", "stage1", "baseline"}
    checks = analysis.learning_checks(table, results.references(results.records(out)))
    assert checks["met"].all(), checks  # the pixel-MSE control beats the noisy input
    book = tmp_path / "book"
    shutil.copytree(REPO / "book", book, ignore=shutil.ignore_patterns("_build", "chapters", "_screenshots"))
    index = report.build_book(str(preset_file), results_dir=out, book_dir=book, run=False, progress=False)
    page = (index.parent / "chapters" / "denoising.html").read_text()
    assert "Denoising (toy)" in page and ".svg" in page and "data:image/png;base64" in page  # charts, outputs
    assert "chapters/denoising" in (book / "_toc.yml").read_text()
