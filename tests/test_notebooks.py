"""The benchmark notebook runs each real trainer end to end through papermill with the tiniest
budget and writes a record: super-resolution with the notebook's default parameters (as `make
lab` opens it), the other three with a cell's parameters (as the grid passes them)."""

import json

import papermill as pm
import pytest

from dpllib.results import read_record

from .conftest import REPO
from .test_trainers import DATASET, TINY

pytestmark = pytest.mark.usefixtures("data_env")
POINTS = {"similarity": ["stem", "stage7"], "segmentation": ["stage4"],
          "autoencoding": ["stage4"]}


def _rendered(executed_notebook) -> str:
    executed = json.loads(executed_notebook.read_text())
    return json.dumps([o for c in executed["cells"] for o in c.get("outputs", [])])


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", list(POINTS))  # denoising runs through the notebook in the session book
def test_benchmark_notebook_runs_and_writes_a_record(benchmark, tmp_path):
    out = tmp_path / f"{benchmark}.ipynb"
    record_path = tmp_path / "record.json"
    pm.execute_notebook(
        str(REPO / "notebooks" / "benchmarks" / "cell.ipynb"), str(out),
        parameters={"benchmark": benchmark, "points": POINTS[benchmark], "dataset": DATASET[benchmark],
                    "overrides": TINY[benchmark],
                    "output_dir": str(tmp_path / "results"), "record_path": str(record_path), "device": "cpu"},
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    record = read_record(record_path)
    assert record["status"] == "ok" and record["rows"]
    assert record["config"]["network"] == "efficientnet_lite0" and record["config"]["weights"] == "imagenet"
    rendered = _rendered(out)
    assert "image/svg+xml" in rendered  # the altair figure rendered offline
    if benchmark != "similarity":
        assert "data:image/png;base64" in rendered  # the image figure


@pytest.mark.slow
def test_benchmark_notebook_runs_with_default_parameters(tmp_path, monkeypatch):
    """As `make lab` opens it: only a budget small enough for the test (its defaults: the
    benchmark's offline data set, EfficientNet-Lite0 at its study points)."""
    monkeypatch.setenv("DPL_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "cell.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "benchmarks" / "cell.ipynb"), str(out),
                        parameters={"overrides": TINY["super_resolution"]},
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    records = list((tmp_path / "results" / "notebooks" / "super_resolution").glob("*.json"))
    assert len(records) == 1
    record = read_record(records[0])
    assert record["status"] == "ok" and record["config"]["dataset"] == "bsds500"
    assert record["config"]["network"] == "efficientnet_lite0" and record["config"]["weights"] == "imagenet"
    assert {r["alias"] for r in record["rows"]} == {"stem", "stage1", "stage4", "stage7"}
    rendered = _rendered(out)
    assert "image/svg+xml" in rendered and "data:image/png;base64" in rendered  # a chart and the SR outputs
