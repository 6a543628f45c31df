"""Shared fixtures: real photos shipped inside packages, the shared data root, a local HTTP
server for download tests."""

from __future__ import annotations

import http.server
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

warnings.filterwarnings("ignore", message=".*pretrained.*", category=UserWarning)


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


@pytest.fixture()
def data_env(monkeypatch, shared_data, tmp_path_factory):
    """DPL_DATA_ROOT at the shared (read-only) data, DPL_CACHE in this session's temp folder."""
    monkeypatch.setenv("DPL_DATA_ROOT", str(shared_data))
    monkeypatch.setenv("DPL_CACHE", str(tmp_path_factory.getbasetemp() / "dpl-cache"))


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
