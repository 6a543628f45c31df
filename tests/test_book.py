"""The book: analysis notebooks on a fabricated results set, the Jupyter Book build, every page
checked in headless Chromium; chapters re-execute only when their inputs change."""

import shutil

import nbformat
import papermill as pm
import pytest

from dpllib import DplError, report

from .browser import check_book
from .conftest import REPO
from .fabricate import fabricate_results


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    return fabricate_results(tmp_path_factory.mktemp("fabricated") / "results")


@pytest.fixture(scope="module")
def book_copy(tmp_path_factory):
    """The book's sources in a temporary folder (the repository's book/ stays untouched)."""
    target = tmp_path_factory.mktemp("book") / "book"
    shutil.copytree(REPO / "book", target, ignore=shutil.ignore_patterns("_build", "chapters", "_screenshots"))
    return target


@pytest.mark.slow
def test_book_builds_and_renders_in_chromium(fabricated, book_copy, tmp_path):
    index = report.build_book(str(fabricated / "preset.yaml"), results_dir=fabricated, book_dir=book_copy, run=False,
                              progress=False)
    html = index.parent
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    assert {"intro.html", "chapters/methods.html", "chapters/conventions.html", "reproduce.html"} <= pages
    shots = REPO / "book" / "_screenshots" / "fabricated"
    reports = check_book(html, shots)
    for r in reports:
        assert not r.console_errors, (r.page, r.console_errors)
        assert not r.external_requests, (r.page, r.external_requests)
        assert not [u for u in r.failed_requests if not u.endswith("/favicon.ico")], (r.page, r.failed_requests)
    charts = {r.page: r.charts for r in reports}
    for bench in ("similarity", "super_resolution", "segmentation", "autoencoding"):
        assert charts[f"chapters/{bench}.html"] >= 3  # heatmaps (ImageNet, random) and learning curves
    assert charts["chapters/conventions.html"] >= 2
    assert all(not r.broken_images for r in reports)
    for bench in ("super_resolution", "segmentation", "autoencoding"):  # the outputs are shown
        assert "data:image/png;base64" in (html / "chapters" / f"{bench}.html").read_text()
    assert all((shots / f"{r.page.replace('/', '__').removesuffix('.html')}.png").is_file() for r in reports)
    text = (html / "chapters" / "methods.html").read_text()
    assert "squeezenet1_1" in text and "fabricated" in text  # generated from the (fabricated) preset
    assert "authors&#39; code" in text or "authors' code" in text  # the deviations table
    assert "mathjax/tex-mml-chtml.js" in (html / "intro.html").read_text()
    # nothing changed: no chapter is executed again
    assert report.execute_chapters(fabricated, book_copy, progress=False) == []


def test_a_failing_chapter_fails_the_build(tmp_path, book_copy):
    broken = tmp_path / "results"
    fabricate_results(broken, seeds=(0,))
    (broken / "preset.json").write_text("{}")  # a preset the methods chapter cannot read
    with pytest.raises(DplError, match="chapter methods"):
        report.execute_chapters(broken, book_copy, force=True, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["methods", "benchmark", "conventions"])
def test_analysis_notebooks_run_with_default_parameters(name, fabricated, monkeypatch, tmp_path):
    """As in JupyterLab: no parameters; results come from $DPL_RESULTS/offline."""
    monkeypatch.setenv("DPL_RESULTS", str(fabricated.parent))
    (fabricated.parent / "offline").exists() or (fabricated.parent / "offline").symlink_to(fabricated)
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "analysis" / f"{name}.ipynb"), str(out), kernel_name="python3",
                        progress_bar=False, cwd=str(tmp_path))
    assert not report.error_outputs(nbformat.read(out, as_version=4))
