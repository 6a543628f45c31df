"""Shared fixtures: real photos shipped inside packages, the shared data root, a local HTTP
server for download tests, test-only benchmarks, and the book built once per test session."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MINE = "my_denoising"  # a use case of your own: a copy of the denoising module (book page "Add your own use case")

warnings.filterwarnings("ignore", message=".*pretrained.*", category=UserWarning)


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs two workers), each worker, and the kernels and
    subprocesses it starts, computes with its share of the cores: two workers each running two
    threads on two cores would oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or workers) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def _to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 255
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True)


@pytest.fixture(scope="session")
def photos():
    """Real photos in [0, 1], 1 x 3 x 224 x 224 each: skimage chelsea and coffee, sklearn china."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    return {
        "chelsea": _to_tensor(skimage.data.chelsea(), 224),
        "coffee": _to_tensor(skimage.data.coffee(), 224),
        "china": _to_tensor(load_sample_image("china.jpg"), 224),
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = Path(os.environ.get("DPL_DATA_ROOT", SHARED / "data"))
    if not (root / "README.md").is_file():
        pytest.fail(f"the shared data root {root} is missing; set DPL_DATA_ROOT")
    return root


def session_cache(tmp_path_factory) -> Path:
    """The test session's DPL_CACHE, shared by the xdist workers (network descriptions, generated
    data sets and decoded images are written atomically, under locks): the user's own cache is
    never touched, and no worker measures what the other already has."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "dpl-cache"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    os.environ["DPL_CACHE"] = str(session_cache(tmp_path_factory))


@pytest.fixture()
def data_env(monkeypatch, shared_data):
    """DPL_DATA_ROOT at the shared (read-only) data (DPL_CACHE is the session's already)."""
    monkeypatch.setenv("DPL_DATA_ROOT", str(shared_data))


def use_benchmark_modules(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Register the benchmark modules ``modules`` (of this repository, e.g. ``tests.instant``)
    through $DPL_BENCHMARKS, which notebook kernels, subprocesses and Slurm jobs inherit; the
    registry is restored when ``monkeypatch`` undoes its changes."""
    import dpllib.registry as registry

    monkeypatch.setenv("DPL_BENCHMARKS", ",".join(modules))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", set(registry._LOADED))
    monkeypatch.setattr(registry, "_FROM_PLUGINS", set(registry._FROM_PLUGINS))


def add_your_own_use_case(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str = MINE) -> str:
    """The book page "Add your own use case" (book/add_a_use_case.md), step by step: copy the
    denoising module into a folder of your own, give the copy its own name and title, and name
    the module in $DPL_BENCHMARKS with its folder on PYTHONPATH (notebook kernels, subprocesses
    and Slurm jobs inherit both). Returns the use case's name."""
    import dpllib.benchmarks.denoising as example

    source = Path(example.__file__).read_text()
    assert 'NAME = "denoising"' in source and 'title="Denoising"' in source  # what the page says to change
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source.replace('NAME = "denoising"', f'NAME = "{name}"')
                                       .replace('title="Denoising"', 'title="Denoising (mine)"'))
    monkeypatch.syspath_prepend(str(folder))
    use_benchmark_modules(monkeypatch, name)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ["PYTHONPATH"]]))
    return name


@pytest.fixture()
def instant(monkeypatch, data_env):
    """The test-only instant benchmark (tests/instant.py) registered for one test, with the
    shared data root: grid mechanics run on cells that take about a second."""
    use_benchmark_modules(monkeypatch, "tests.instant")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes) with HTTP Range support; paths listed in
    ``server.break_once`` are cut off half way the first time they are requested; every answer
    waits ``server.delay`` seconds first (a slow server)."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        time.sleep(self.server.delay)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.requests.append((self.path, rng))
        if self.path in self.server.break_once:
            self.server.break_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture()
def http_server():
    """A real HTTP server on 127.0.0.1: ``server.files[path] = bytes``; yields (server, base_url)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.break_once, server.requests, server.delay = {}, set(), [], 0.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def dpl(*args: str, timeout: int = 900, **kwargs) -> subprocess.CompletedProcess:
    """`dpl ARGS` in a subprocess (this interpreter; ``kwargs``: subprocess.run's, e.g. cwd and
    env), its output captured."""
    return subprocess.run([sys.executable, "-m", "dpllib.cli", *args], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def _add_your_use_case(run: Path) -> None:
    """Add your own use case (a copy of denoising, :func:`add_your_own_use_case`) to the run's
    preset at the smoke budget (EfficientNet-Lite0 at two points and the baseline; the
    fabricated networks limited to the fabricated benchmarks)."""
    preset_file = run / "preset.yaml"
    preset = yaml.safe_load(preset_file.read_text())
    fabricated = list(preset["benchmarks"])
    preset["networks"] = [{**e, "benchmarks": fabricated} for e in preset["networks"]]
    preset["networks"].append({"network": "efficientnet_lite0", "weights": ["imagenet"], "points": ["stem", "stage1"],
                               "benchmarks": [MINE]})
    preset["benchmarks"][MINE] = "sigma25"
    preset_file.write_text(yaml.safe_dump(preset))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, shared_data):
    """The book, built once per test session the way a user builds it, and read by every book
    and browser check:

    1. a fabricated run of the four study use cases (tests/fabricate.py: made-up numbers in the
       real record format, and its point costs);
    2. your own use case (the book page "Add your own use case" followed: a copy of the denoising
       module under another name, registered as a plugin) added to its preset and run for real
       through the grid (papermill kernels find the plugin);
    3. `dpl evaluate` of a network outside the preset (a torchvision MobileNet from a weights
       file at two points, real cells of the plugin use case, the costs of its points measured
       beside the run's);
    4. `dpl book --no-run --workers 2` (chapters executed two at a time, the HTML built);
    5. every page opened in headless Chromium (tests/browser.py).
    """
    import torchvision

    from dpllib import grid

    from .browser import check_book
    from .fabricate import fabricate_point_costs, fabricate_results

    base = tmp_path_factory.mktemp("built-book")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPL_DATA_ROOT", str(shared_data))
        add_your_own_use_case(mp, base / "mine")
        run = fabricate_results(base / "results")
        fabricated_costs = fabricate_point_costs(run)  # dpl evaluate measures only the points it lacks
        _add_your_use_case(run)
        mine_outcome = grid.run(grid.load_preset(str(run / "preset.yaml")), run, workers=2, progress=False)
        weights = base / "mine.pth"
        torch.save(torchvision.models.mobilenet_v3_small().state_dict(), weights)
        evaluated = dpl("evaluate", "mobilenet_v3_small", "--weights", str(weights), "--points", "features.3", "features.9",
                        "--preset", str(run / "preset.yaml"), "--results", str(run), "--benchmarks", MINE)
        book = base / "book"
        shutil.copytree(REPO / "book", book, ignore=shutil.ignore_patterns("_build", "chapters", "_screenshots"))
        built = dpl("book", "--preset", str(run / "preset.yaml"), "--results", str(run), "--book-dir", str(book),
                    "--no-run", "--workers", "2")
        html = book / "_build" / "html"
        shots = REPO / "book" / "_screenshots" / "fabricated"
        reports = check_book(html, shots) if built.returncode == 0 else []
    return SimpleNamespace(run=run, book=book, html=html, shots=shots, mine=base / "mine", mine_outcome=mine_outcome,
                           evaluated=evaluated,
                           fabricated_costs=fabricated_costs, built=built, reports=reports)
