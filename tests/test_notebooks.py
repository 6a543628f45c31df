"""Each benchmark notebook runs through papermill with the tiniest budget and writes a record."""

import json

import papermill as pm
import pytest

from dpllib.results import read_record

from .conftest import REPO
from .test_trainers import DATASET, TINY

pytestmark = pytest.mark.usefixtures("data_env")
POINTS = {"similarity": ["stem", "stage7"], "super_resolution": ["stage1"], "segmentation": ["stage4"],
          "autoencoding": ["stage4"]}


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", list(TINY))
def test_benchmark_notebook_runs_and_writes_a_record(benchmark, tmp_path):
    out = tmp_path / f"{benchmark}.ipynb"
    record_path = tmp_path / "record.json"
    pm.execute_notebook(
        str(REPO / "notebooks" / "benchmarks" / f"{benchmark}.ipynb"), str(out),
        parameters={"points": POINTS[benchmark], "dataset": DATASET[benchmark], "overrides": TINY[benchmark],
                    "output_dir": str(tmp_path / "results"), "record_path": str(record_path), "device": "cpu"},
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    record = read_record(record_path)
    assert record["status"] == "ok" and record["rows"]
    assert record["config"]["network"] == "efficientnet_lite0" and record["config"]["weights"] == "imagenet"
    executed = json.loads(out.read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    rendered = json.dumps(outputs)
    assert "image/svg+xml" in rendered  # the altair figure rendered offline
    if benchmark != "similarity":
        assert "data:image/png;base64" in rendered  # the image figure


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", list(TINY))
def test_benchmark_notebook_runs_with_default_parameters(benchmark, tmp_path, monkeypatch):
    """As `make lab` opens it: no parameters at all (smoke budget, EfficientNet-Lite0)."""
    monkeypatch.setenv("DPL_RESULTS", str(tmp_path / "results"))
    out = tmp_path / f"{benchmark}.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "benchmarks" / f"{benchmark}.ipynb"), str(out),
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    records = list((tmp_path / "results" / "notebooks" / benchmark).glob("*.json"))
    assert len(records) == 1 and read_record(records[0])["status"] == "ok"
