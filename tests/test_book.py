"""The book: analysis notebooks on a fabricated results set, the Jupyter Book build, every page
checked in headless Chromium; chapters re-execute only when their inputs change."""

import json
import shutil

import nbformat
import papermill as pm
import pytest

from dpllib import DplError, analysis, report, results
from dpllib.registry import benchmarks
from dpllib.catalog import STUDY_POINTS
from dpllib.narrative import short_name
from dpllib.results import read_manifest, write_manifest

from .browser import check_book
from .conftest import MINE, REPO, add_your_own_use_case
from .fabricate import STUDY_DATASET, fabricate_results


@pytest.fixture()
def book_copy(tmp_path):
    """The book's sources in a temporary folder (the repository's book/ stays untouched)."""
    target = tmp_path / "book"
    shutil.copytree(REPO / "book", target, ignore=shutil.ignore_patterns("_build", "chapters", "_screenshots"))
    return target


@pytest.mark.slow
def test_book_builds_and_renders_in_chromium(built_book, monkeypatch, tmp_path):
    """The session's book (conftest.built_book: a fabricated run, a plugin use case run for real,
    `dpl evaluate` of a user's network, `dpl book`), every page in headless Chromium: no console
    error, no request leaves the machine, every chart has data, the outputs are shown, and the
    user's network is one more row, marked, in the chapters that show it. The checks of the
    plugin use case's chapter and of the notebooks' default parameters read the same build (one
    test: pytest-xdist 3.8's groups do not hold under pytest 9, and the build is per process)."""
    evaluated, built, html, reports = built_book.evaluated, built_book.built, built_book.html, built_book.reports
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    assert "ok: 2" in evaluated.stdout
    costs = json.loads((built_book.run / "point_costs.json").read_text())["costs"]
    assert {k: v for k, v in costs.items() if not k.startswith("mobilenet")} == built_book.fabricated_costs["costs"]
    assert {k for k in costs if k.startswith("mobilenet")} == {"mobilenet_v3_small/features.3", "mobilenet_v3_small/features.9"}
    assert all(costs[f"mobilenet_v3_small/features.{i}"]["ms_per_image"] > 0 for i in (3, 9))  # measured, the rest kept
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert f"book: {html / 'index.html'}" in built.stdout
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    assert {"intro.html", "chapters/methods.html", "chapters/conventions.html", "chapters/choose.html",
            "reproduce.html"} <= pages
    for r in reports:
        assert not r.console_errors, (r.page, r.console_errors)
        assert not r.external_requests, (r.page, r.external_requests)
        assert not [u for u in r.failed_requests if not u.endswith("/favicon.ico")], (r.page, r.failed_requests)
    charts = {r.page: r.charts for r in reports}
    for bench in ("similarity", "super_resolution", "segmentation", "autoencoding"):
        assert charts[f"chapters/{bench}.html"] >= 3  # heatmaps (ImageNet, random) and learning curves
    assert charts["chapters/conventions.html"] >= 2
    assert charts["chapters/choose.html"] >= 4  # score against cost, one per benchmark
    assert all(not r.broken_images for r in reports)
    assert not [(r.page, r.empty_charts) for r in reports if r.empty_charts]  # no chart without data
    for bench in ("super_resolution", "segmentation", "autoencoding"):  # the outputs are shown
        assert "data:image/png;base64" in (html / "chapters" / f"{bench}.html").read_text()
    shots = built_book.shots
    assert all((shots / f"{r.page.replace('/', '__').removesuffix('.html')}.png").is_file() for r in reports)
    text = (html / "chapters" / "methods.html").read_text()
    assert "squeezenet1_1" in text and "fabricated" in text  # generated from the (fabricated) preset
    assert "authors&#39; code" in text or "authors' code" in text  # the deviations table
    assert "mathjax/tex-mml-chtml.js" in (html / "intro.html").read_text()
    mine = "mobilenet_v3_small (yours)"  # in the chapters that show the benchmark it ran on
    for page in (MINE, "methods", "choose"):
        assert mine in (html / "chapters" / f"{page}.html").read_text(), page
    assert mine not in (html / "chapters" / "segmentation.html").read_text()
    assert "Your network, evaluated beside this preset" in (html / "chapters" / f"{MINE}.html").read_text()
    # nothing changed: no chapter is executed again
    add_your_own_use_case(monkeypatch, built_book.mine)
    assert report.execute_chapters(built_book.run, built_book.book, progress=False) == []
    a_fifth_benchmark_went_from_preset_to_chapter(built_book)
    analysis_notebooks_run_with_default_parameters(built_book, monkeypatch, tmp_path)


def a_fifth_benchmark_went_from_preset_to_chapter(built_book):
    """Your own use case (the book page "Add your own use case" followed: a copy of the denoising
    module under another name, a plugin) ran beside the fabricated ones: its cells ran through the
    grid (papermill kernels found the plugin), its table rows and learning checks are there, and
    its chapter is in the book with charts and example outputs, saying that it is outside the
    study."""
    assert list(benchmarks())[-1] == MINE
    assert built_book.mine_outcome["ok"] == 4 and set(built_book.mine_outcome) == {"ok", "skipped"}  # the rest ran
    table = results.load_run(built_book.run).table
    mine = table[table["benchmark"] == MINE]
    ran = mine[mine["network"] != "mobilenet_v3_small"]  # the preset's cells (dpl evaluate added MobileNet's)
    assert set(ran["alias"]) == {"stem", "stage1", "baseline"} and set(ran["seed"]) == {0, 1}
    checks = analysis.learning_checks(mine, results.references(results.records(built_book.run)))
    baseline_check = checks[checks["check"].str.startswith("pixel-MSE baseline")]
    assert len(baseline_check) == 1 and baseline_check["met"].all(), checks  # the control beats the noisy input
    page = (built_book.html / "chapters" / f"{MINE}.html").read_text()
    assert "Denoising (mine)" in page and ".svg" in page and "data:image/png;base64" in page  # charts, outputs
    assert f"chapters/{MINE}" in (built_book.book / "_toc.yml").read_text()
    # what the chapters say about a use case comes from its descriptor: this one is outside the
    # study (its chapter and the methods page say so; the study's chapters do not)
    assert "Outside the study" in page and "answers that need no learning (the noisy input)" in page
    assert "stand-ins for the study" not in page
    methods = (built_book.html / "chapters" / "methods.html").read_text()
    assert "Outside the study, so without rows here: Denoising (mine)" in methods
    sr = (built_book.html / "chapters" / "super_resolution.html").read_text()
    assert "Outside the study" not in sr and "need no learning (bicubic and nearest-neighbour upscaling)" in sr
    assert "Add your own use case" in (built_book.html / "add_a_use_case.html").read_text()


def analysis_notebooks_run_with_default_parameters(built_book, monkeypatch, tmp_path):
    """As in JupyterLab: no parameters; results come from $DPL_RESULTS/offline (here the
    session's run). The four notebooks run two at a time."""
    import concurrent.futures

    monkeypatch.setenv("DPL_RESULTS", str(tmp_path))
    (tmp_path / "offline").symlink_to(built_book.run)

    def execute(name: str) -> list[str]:
        out = tmp_path / f"{name}.ipynb"
        pm.execute_notebook(str(REPO / "notebooks" / "analysis" / f"{name}.ipynb"), str(out), kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path))
        return report.error_outputs(nbformat.read(out, as_version=4))

    names = ["methods", "benchmark", "conventions", "choose"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        errors = dict(zip(names, pool.map(execute, names)))
    assert errors == dict.fromkeys(names, []), errors


@pytest.mark.slow
def test_the_browser_check_finds_an_empty_chart(tmp_path):
    import altair as alt
    import pandas as pd
    import vl_convert

    site = tmp_path / "html"
    site.mkdir()
    for name, rows in (("full", {"x": [1, 2], "y": [3, 4]}), ("empty", {"x": [], "y": []})):
        chart = alt.Chart(pd.DataFrame(rows)).mark_line().encode(x="x:Q", y="y:Q")
        (site / f"{name}.svg").write_text(vl_convert.vegalite_to_svg(chart.to_json()))
    (site / "index.html").write_text('<html><body><main><img src="full.svg"><img src="empty.svg"></main></body></html>')
    [report] = check_book(site, tmp_path / "shots")
    assert report.charts == 2 and len(report.empty_charts) == 1 and report.empty_charts[0].endswith("empty.svg")


@pytest.mark.slow
def test_a_failing_chapter_fails_the_build(tmp_path, book_copy):
    broken = tmp_path / "results"
    fabricate_results(broken, seeds=(0,))
    write_manifest(broken, {}, list(read_manifest(broken)[1]))  # a preset the methods chapter cannot read
    with pytest.raises(DplError, match="chapter methods"):
        report.execute_chapters(broken, book_copy, force=True, progress=False)
    started = sorted(p.name for p in (book_copy / "_build" / "executing").iterdir())
    assert started == ["methods.ipynb"]  # the free worker took no further chapter after the failure


@pytest.mark.slow
def test_a_benchmark_whose_seeds_disagree_ranks_nothing(tmp_path):
    """Super-resolution scores that are seed noise alone: its chapter says it cannot tell the loss
    networks apart, with the agreement measured, and marks no loss network as near the best."""
    run = fabricate_results(tmp_path / "noise", noise_only=("super_resolution",))
    out = tmp_path / "super_resolution.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "analysis" / "benchmark.ipynb"), str(out), kernel_name="python3",
                        parameters={"benchmark": "super_resolution", "results_dir": str(run)}, progress_bar=False)
    text = _chapter_text(out)
    assert "No ranking: at this budget this benchmark cannot tell the loss networks apart." in text
    assert "mean Spearman correlation of" in text and "≈ best" not in text


def _chapter_text(path, kinds=("text/markdown", "text/html", "image/svg+xml", "text/plain")) -> str:
    """What a reader sees of an executed chapter: its markdown and its outputs of ``kinds``."""
    nb = nbformat.read(path, as_version=4)
    parts = [c.source for c in nb.cells if c.cell_type == "markdown" and "text/markdown" in kinds]
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts += [str(v) for k, v in out.get("data", {}).items() if k in kinds]
    return "\n".join(parts)


PAPER_STYLE_CHAPTERS = ["similarity", "super_resolution", "segmentation", "autoencoding_svhn", "autoencoding_stl10",
                        "conventions"]


@pytest.mark.slow
@pytest.mark.parametrize("half", [PAPER_STYLE_CHAPTERS[:3], PAPER_STYLE_CHAPTERS[3:]], ids=["first", "second"])
def test_chapters_of_a_paper_style_run_show_every_network_and_no_stand_in(tmp_path, book_copy, half):
    """14 study networks x 4 points x 3 seeds on the study's data at the paper budget (fabricated
    numbers): every network is in each benchmark chapter's figures, and nothing speaks of
    offline stand-ins (the methods page's protocol table documents both budgets by design). The
    chapters are read in two halves (one test each), so that the two run side by side."""
    run = fabricate_results(tmp_path / "paper", seeds=(0, 1, 2), networks=tuple(STUDY_POINTS), weights=("imagenet",),
                            budget="paper", datasets=STUDY_DATASET, name="paper-style")
    # a benchmark on two data sets has a chapter for each
    assert [n for n in report.chapters(run) if n not in ("methods", "choose")] == PAPER_STYLE_CHAPTERS
    assert json.loads((run / "run.json").read_text())["preset"]["name"] == "paper-style"
    with pytest.raises(DplError, match="no chapter denoising in this run's book; its chapters: methods, similarity"):
        report.execute_chapters(run, book_copy, only=["denoising"])
    executed = report.execute_chapters(run, book_copy, force=True, progress=False, workers=2, only=half)
    assert executed == half
    toc = (book_copy / "_toc.yml").read_text()
    chapters = book_copy / "chapters"
    for name in half:
        assert f"chapters/{name}" in toc
        text = _chapter_text(chapters / f"{name}.ipynb").lower()
        assert "stand-in" not in text and "stands in" not in text and "efficientnet-lite" not in text, name
        if name != "conventions":
            figures = _chapter_text(chapters / f"{name}.ipynb", kinds=("image/svg+xml",))
            missing = [n for n in STUDY_POINTS if f">{short_name(n)}</text>" not in figures]  # a label in a chart
            assert not missing, (name, missing)
    if "autoencoding_stl10" in half:
        assert "STL-10" in _chapter_text(chapters / "autoencoding_stl10.ipynb")
    if "conventions" in half:
        conventions = _chapter_text(chapters / "conventions.ipynb")
        assert "each benchmark counts once, on its first data set (Autoencoder embeddings: SVHN" in conventions
        assert ("the study's networks; MS-COCO 2014; paper budget; 3 seeds" in conventions
                or "Nothing in this run" in conventions)
