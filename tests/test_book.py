"""The book: analysis notebooks on a fabricated results set, the Jupyter Book build, every page
checked in headless Chromium; chapters re-execute only when their inputs change."""

import shutil

import nbformat
import pandas as pd
import papermill as pm
import pytest

from dpllib import DplError, analysis, report, results

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


def test_statistics_on_fabricated_results(fabricated):
    summary = analysis.seed_summary(analysis.scores(results.table(fabricated)))
    assert set(summary["benchmark"]) == set(analysis.PRIMARY)
    assert (summary["n_seeds"] == 2).all() and summary["ci_low"].notna().all()
    shares = analysis.variance_shares(summary)
    assert ((shares[["network", "point", "residual"]].sum(axis=1) - 1).abs() < 1e-9).all()
    # the fabricated scores rise with the point index: depth correlates strongly
    depth = analysis.spearman(summary, "depth", n_boot=200)
    assert (depth["rho"] > 0.8).all()
    pv = analysis.pretrained_vs_random(summary, n_boot=200)
    assert (pv["pretrained_wins"] == 1.0).all() and (pv["pairs"] == 16).all()
    ranking = analysis.ranks(summary)
    assert list(ranking.columns[-1:]) == ["average_rank"] and len(ranking) == 4
    coefs, note = analysis.mixed_model(summary)
    assert {"top1", "depth"} <= set(coefs["term"]) and note
    ref = analysis.reference_table(results.table(fabricated))
    assert (ref["status"].str.contains("not comparable") | (ref["status"] == "not run here")).all()


def test_spearman_and_shares_by_hand():
    frame = pd.DataFrame({"benchmark": "b", "network": ["n1", "n1", "n2", "n2", "n3", "n3"],
                          "weights": "imagenet", "alias": ["a", "b"] * 3, "study_index": [1, 2] * 3,
                          "top1": [70, 70, 75, 75, 80, 80], "depth": [0.2, 0.8] * 3,
                          "score": [1.0, 2.0, 1.5, 2.5, 2.0, 3.0], "has_batchnorm": False})
    rho = analysis.spearman(frame, "top1", n_boot=50)["rho"].iloc[0]
    assert rho == pytest.approx(frame[["top1", "score"]].corr(method="spearman").iloc[0, 1])
    shares = analysis.variance_shares(frame).iloc[0]
    # additive: network effects 0, .5, 1; point effect 1 -> SS network 1.0, SS point 1.5, no residual
    assert shares["network"] == pytest.approx(1.0 / 2.5) and shares["point"] == pytest.approx(1.5 / 2.5)


@pytest.mark.slow
def test_book_builds_and_renders_in_chromium(fabricated, book_copy, tmp_path):
    index = report.build_book("offline", results_dir=fabricated, book_dir=book_copy, run=False, progress=False)
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
        assert charts[f"chapters/{bench}.html"] >= 2  # pretrained and random heatmaps rendered
    assert charts["chapters/conventions.html"] >= 3
    assert all((shots / f"{r.page.replace('/', '__').removesuffix('.html')}.png").is_file() for r in reports)
    text = (html / "chapters" / "methods.html").read_text()
    assert "efficientnet_lite0" in text and "fabricated" in text  # generated from the preset
    assert "mathjax/tex-mml-chtml.js" in (html / "intro.html").read_text()
    # nothing changed: no chapter is executed again
    assert report.execute_chapters(fabricated, book_copy, progress=False) == []


def test_a_failing_chapter_fails_the_build(tmp_path, book_copy):
    broken = tmp_path / "results"
    fabricate_results(broken, seeds=(0,))
    (broken / "preset.json").unlink()  # the methods chapter needs it
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
