"""The grid: presets, resumable papermill execution, failure isolation, kills, executors, table."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from dpllib import DplError, grid, results

from .conftest import REPO

TINY_OVERRIDES = {
    "autoencoding": {"steps": 2, "train_limit": 100, "test_limit": 50, "probe_epochs": 2},
    "segmentation": {"steps": 2, "eval_every": 1, "crop": 64, "size": 224},
}


def write_preset(tmp_path, **changes):
    preset = {"name": "tiny", "budget": "smoke", "seeds": [0], "device": "cpu",
              "benchmarks": {"autoencoding": "cifar10", "segmentation": "mass_roads"},
              "networks": [{"network": "efficientnet_lite0", "weights": ["imagenet"], "points": ["stage1"]}],
              "baselines": True, "overrides": TINY_OVERRIDES}
    preset.update(changes)
    if "overrides" not in changes:
        preset["overrides"] = {b: o for b, o in TINY_OVERRIDES.items() if b in preset["benchmarks"]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


pytestmark = pytest.mark.usefixtures("data_env")


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "unknown keys \\['bogus'\\]"),
    ({"networks": [{"network": "vgg61"}]}, "unknown network 'vgg61'"),
    ({"networks": [{"network": "vgg16", "points": ["relu9_9"]}]}, "no extraction point 'relu9_9'"),
    ({"benchmarks": {"autoencoding": "mnist"}}, "data set must be one of"),
    ({"budget": "huge"}, "unknown budget 'huge'"),
    ({"benchmarks": {"denoising": "x"}}, "unknown benchmark 'denoising'"),
    ({"networks": [{"network": "vgg16", "wieghts": ["random"]}]}, "unknown keys \\['wieghts'\\]"),
])
def test_bad_presets_name_the_problem(tmp_path, change, message):
    with pytest.raises(DplError, match=message):
        grid.load_preset(str(write_preset(tmp_path, **change)))


def test_shipped_presets_expand():
    offline = grid.cells(grid.load_preset("offline"))
    # Lite0 (imagenet, random), Lite1, Lite2 and the baseline, 4 benchmarks, 2 seeds
    assert len(offline) == 4 * 5 * 2
    assert len({results.cell_id(c) for c in offline}) == len(offline)
    assert {c["weights"] for c in offline if c["network"] == "efficientnet_lite0"} == {"imagenet", "random"}
    assert {c["budget"] for c in offline} == {"offline"} and {c["seed"] for c in offline} == {0, 1}
    paper = grid.load_preset("paper")
    assert len(grid.cells(paper)) == 4 * 3 * 15
    text = grid.estimate(paper)
    assert "super_resolution" in text and "200000" in text


def test_run_resume_and_status(tmp_path):
    preset = grid.load_preset(str(write_preset(tmp_path)))
    out = tmp_path / "results"
    outcome = grid.run(preset, out, progress=False)
    assert outcome == {"ok": 4}
    for s in grid.status(preset, out):
        assert s.state == "done"
        path = results.record_path(s.cell, out)
        assert path.with_suffix(".ipynb").is_file()  # the executed notebook is kept
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")}
    assert grid.run(preset, out, progress=False) == {"skipped": 4}
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")}
    assert "autoencoding" in grid.status_table(preset, out)
    frame = results.table(out)
    assert set(frame["network"]) == {"efficientnet_lite0", "baseline"}
    lite = frame[frame["network"] == "efficientnet_lite0"]
    assert (lite["top1"] == 75.1).all() and (lite["alias"] == "stage1").all() and lite["pretrained"].all()
    path = results.write_table(frame, tmp_path / "t.parquet")
    assert len(results.read_table(path)) == len(frame)


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path):
    overrides = {**TINY_OVERRIDES, "segmentation": {**TINY_OVERRIDES["segmentation"], "crop": 512}}  # > 224
    preset = grid.load_preset(str(write_preset(tmp_path, overrides=overrides)))
    out = tmp_path / "results"
    outcome = grid.run(preset, out, progress=False)
    assert outcome == {"ok": 2, "failed": 2}
    failed = [results.read_record(results.record_path(s.cell, out)) for s in grid.status(preset, out)
              if s.state == "failed"]
    assert all("crop 512" in r["traceback"] for r in failed)
    # nothing new runs unless asked to retry
    assert grid.run(preset, out, progress=False) == {"skipped": 2, "skipped (failed)": 2}


def test_parallel_workers(tmp_path):
    preset = grid.load_preset(str(write_preset(tmp_path, benchmarks={"autoencoding": "cifar10"})))
    assert grid.run(preset, tmp_path / "r", workers=2, progress=False) == {"ok": 2}


def test_submitit_array_with_the_local_executor(tmp_path):
    preset = grid.load_preset(str(write_preset(tmp_path, benchmarks={"autoencoding": "cifar10"}, baselines=False)))
    jobs = grid.run_slurm(preset, tmp_path / "r", cluster="local", wait=True)
    assert len(jobs) == 1
    assert [s.state for s in grid.status(preset, tmp_path / "r")] == ["done"]


def test_killing_a_run_never_leaves_a_half_record(tmp_path):
    preset_file = write_preset(tmp_path, overrides={**TINY_OVERRIDES,
                               "autoencoding": {**TINY_OVERRIDES["autoencoding"], "steps": 15}})
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dpllib.cli", "run", str(preset_file), "--results", str(out)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("*/*.json")):
        time.sleep(0.2)
    assert list(out.glob("*/*.json")), "the first cell never finished"
    time.sleep(3)  # well into the next cell
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for path in out.glob("*/*.json"):
        json.loads(path.read_text())  # every record on disk is whole
    done_before = len(list(out.glob("*/*.json")))
    assert done_before < 4
    preset = grid.load_preset(str(preset_file))
    outcome = grid.run(preset, out, progress=False)
    assert outcome["skipped"] == done_before and outcome["ok"] == 4 - done_before


def test_old_record_schema_is_refused(tmp_path):
    path = tmp_path / "x" / "r.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"schema": 0, "config": {}}))
    with pytest.raises(DplError, match="schema 0"):
        results.read_record(path)
