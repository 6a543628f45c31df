"""Building the book: run the preset's missing cells, execute the analysis notebooks into
``<book>/chapters`` (only when their inputs changed), write the table of contents (a chapter per
benchmark the run has, from the registry), then ``jupyter-book build``.

Nothing is executed at book build time; a chapter that raised, or that holds an error output,
fails the build. A book rebuild reads only the run's records (its manifest names them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Collection
from pathlib import Path

import nbformat
import yaml

from .config import preset_datasets
from .errors import DplError
from .files import atomic_write
from .paths import preset_results_dir, resource, source_checkout
from .registry import benchmarks
from .results import read_manifest, source_digest

MATHJAX_PACKAGE = "mathjax@3"
BOOK_PAGES = ("intro", "reproduce", "add_a_use_case")  # written pages of the book's sources: the first, then after the chapters


def chapters(results_dir: Path) -> dict[str, tuple[str, dict, str | None]]:
    """The book's chapters for the run in ``results_dir``: {name: (analysis notebook, its
    parameters, page title when the notebook has none)}: methods, one per benchmark and data
    set the run has (in the registry's order; named after the benchmark, and the data set
    where a benchmark ran on several), the conventions, which loss network to use."""
    preset, _ = read_manifest(results_dir)
    ran = preset_datasets(preset)
    out = {"methods": ("methods.ipynb", {}, None)}
    for name, b in benchmarks().items():
        datasets = [d for bench, d in ran if bench == name]
        for d in datasets:
            if len(datasets) == 1:
                out[name] = ("benchmark.ipynb", {"benchmark": name, "dataset": d}, b.title)
            else:
                out[f"{name}_{d}"] = ("benchmark.ipynb", {"benchmark": name, "dataset": d},
                                      f"{b.title}: {b.dataset(d).title}")
    out["conventions"] = ("conventions.ipynb", {}, None)
    out["choose"] = ("choose.ipynb", {}, None)
    return out


def write_toc(book_dir: Path, names: list[str]) -> Path:
    """The book's ``_toc.yml``: the intro, the chapters, the reproduce and add-a-use-case pages."""
    toc = {"format": "jb-book", "root": BOOK_PAGES[0],
           "chapters": [{"file": f"chapters/{n}"} for n in names] + [{"file": p} for p in BOOK_PAGES[1:]]}
    return atomic_write(book_dir / "_toc.yml", "# written by dpllib.report from the run's benchmarks\n"
                        + yaml.safe_dump(toc, sort_keys=False))


def book_folder(book_dir: str | os.PathLike | None, results_dir: Path) -> Path:
    """Where the book is built: ``book_dir``; else the checkout's ``book/``; else (an installed
    dpllib) ``<results_dir>/book``, with the shipped book sources copied in."""
    if book_dir is not None:
        return Path(book_dir).resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "book"
    target = results_dir / "book"
    shutil.copytree(resource("book"), target, dirs_exist_ok=True)
    return target


def ensure_mathjax(book_dir: Path) -> Path:
    """MathJax 3 (es5/tex-mml-chtml.js + its CHTML fonts) under ``book/_extra/mathjax``, from the
    npm registry once (``npm pack``), so the book loads no script from a CDN."""
    target = book_dir / "_extra" / "mathjax"
    if (target / "tex-mml-chtml.js").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise DplError("MathJax is served locally and comes from the npm registry: install npm "
                       f"(Debian: apt-get install npm) or place MathJax 3's es5/ files in {target}")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([npm, "pack", MATHJAX_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        if out.returncode != 0:
            raise DplError(f"npm pack {MATHJAX_PACKAGE} failed: {out.stderr.strip()}")
        archive = next(Path(tmp).glob("mathjax-*.tgz"))
        staging = Path(tmp) / "mathjax"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name == "package/es5/tex-mml-chtml.js"
                       or m.name.startswith("package/es5/output/chtml/fonts/")]
            tar.extractall(Path(tmp) / "x", members=members, filter="data")
        shutil.copytree(Path(tmp) / "x" / "package" / "es5", staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(staging), target)
    return target


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """The error outputs of an executed notebook (ename: evalue)."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def execute_chapters(results_dir: Path, book_dir: Path, force: bool = False, progress: bool = True,
                     workers: int = 1, only: Collection[str] | None = None) -> list[str]:
    """Execute each analysis notebook into ``book_dir/chapters`` with papermill, unless the
    chapter there was made from the same results table, manifest, library and notebook source;
    write the table of contents. The table holds the records the run's manifest names. Chapters
    are independent: ``workers`` of them execute at once (each in its own kernel); ``only``: just
    these chapters (names as in :func:`chapters`; the table of contents still lists all). Returns
    the names executed, in the book's order. Raises when a chapter fails or ``only`` names one the
    run does not have."""
    from .results import table, write_table

    results_dir = Path(results_dir).resolve()
    _, ids = read_manifest(results_dir)
    frame = table(results_dir, ids)
    table_path = results_dir / "table.parquet"
    table_bytes = frame.to_csv(index=False).encode()
    write_table(frame, table_path)
    manifest_bytes = (results_dir / "run.json").read_bytes()
    # the library's own source: a change to the statistics or figures re-executes the chapters
    library_bytes = source_digest().encode()
    analysis = resource("notebooks") / "analysis"
    (book_dir / "chapters").mkdir(parents=True, exist_ok=True)
    planned = chapters(results_dir)
    unknown = sorted(set(only or ()) - set(planned))
    if unknown:
        raise DplError(f"no chapter {', '.join(unknown)} in this run's book; its chapters: {', '.join(planned)}")
    todo = {}
    for name, (source, extra, title) in planned.items():
        if only is not None and name not in only:
            continue
        key = _digest(table_bytes, manifest_bytes, library_bytes, (analysis / source).read_bytes(),
                      json.dumps([extra, title], sort_keys=True).encode())
        out = book_dir / "chapters" / f"{name}.ipynb"
        if out.is_file() and not force:
            old = nbformat.read(out, as_version=4)
            if old.metadata.get("dpl", {}).get("inputs") == key and not error_outputs(old):
                continue
        todo[name] = (analysis / source, {"results_dir": str(results_dir), "table_path": str(table_path), **extra},
                      title, key)
    _execute_all(todo, results_dir, book_dir, progress, workers)
    write_toc(book_dir, list(planned))
    return list(todo)


def _execute_all(todo: dict[str, tuple], results_dir: Path, book_dir: Path, progress: bool, workers: int) -> None:
    """Execute the chapters of ``todo`` ({name: (source, parameters, title, key)}), ``workers``
    at once; after a failure no further chapter starts, and the first failure in the book's
    order is raised."""
    import concurrent.futures
    import threading

    failed = threading.Event()

    def execute(name: str, job: tuple) -> None:
        if failed.is_set():  # after a failure no chapter starts (a free worker would take the next at once)
            return
        try:
            _execute_chapter(name, *job, results_dir, book_dir, progress and workers <= 1)
        except BaseException:
            failed.set()
            raise

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(execute, name, job) for name, job in todo.items()]
        try:
            for future in futures:
                future.result()  # the first failure, in the book's order
        except BaseException:
            failed.set()  # interrupted here (Ctrl-C): no chapter starts either
            raise


def _execute_chapter(name: str, source: Path, parameters: dict, title: str | None, key: str, results_dir: Path,
                     book_dir: Path, progress: bool) -> None:
    """Execute one analysis notebook into ``book_dir/chapters/<name>.ipynb`` (atomically),
    marked with its inputs' digest ``key``; a chapter that raised or holds an error output is a
    DplError."""
    import papermill as pm

    scratch = book_dir / "_build" / "executing" / f"{name}.ipynb"  # outside the book's sources
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(source), str(scratch), kernel_name="python3", progress_bar=progress,
                            parameters=parameters, cwd=str(results_dir),
                            kernel_manager_class="dpllib.grid.notebook.IsolatedKernelManager")
    except Exception as err:
        raise DplError(f"chapter {name} ({source.name}) failed; the executed notebook is {scratch}: {err}") from err
    nb = nbformat.read(scratch, as_version=4)
    errors = error_outputs(nb)
    if errors:
        raise DplError(f"chapter {name} has error outputs: {errors[:3]}")
    for cell in nb.cells:  # the book shows results, not parameter plumbing
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    if title:  # Sphinx takes the page title from the first markdown heading
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {title}"))
    nb.metadata["dpl"] = {"inputs": key, "results_dir": str(results_dir)}
    atomic_write(book_dir / "chapters" / f"{name}.ipynb", lambda path: nbformat.write(nb, path))
    scratch.unlink()


def build_html(book_dir: Path) -> Path:
    """``jupyter-book build`` (Sphinx; nothing executed); returns the index page."""
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_dir), "--builder", "html"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise DplError(f"jupyter-book build failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    index = book_dir / "_build" / "html" / "index.html"
    if not index.is_file():
        raise DplError(f"jupyter-book build wrote no {index}")
    return index


def build_book(preset: str = "offline", results_dir: str | os.PathLike | None = None,
               book_dir: str | os.PathLike | None = None, run: bool = True, workers: int = 1,
               force: bool = False, progress: bool = True) -> Path:
    """The whole chain: grid run (resumable), chapters, HTML. Returns the index page."""
    from . import grid

    spec = grid.load_preset(preset)
    results_dir = preset_results_dir(spec["name"], results_dir)
    if run:
        outcome = grid.run(spec, results_dir, workers=workers, progress=progress)
        if progress:
            print("cells:", ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
    book_dir = book_folder(book_dir, results_dir)
    ensure_mathjax(book_dir)
    done = execute_chapters(results_dir, book_dir, force=force, progress=progress, workers=workers)
    if progress:
        print("chapters executed:", ", ".join(done) or "none (inputs unchanged)")
    return build_html(book_dir)
