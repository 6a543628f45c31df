"""The grid: presets, resumable papermill execution, failure isolation, kills, executors, table.
Its mechanics run on the instant benchmark (tests/instant.py): real notebooks and records, no
training."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dpllib import DplError, grid, results

from .conftest import REPO
from .instant import instant_preset

TINY_OVERRIDES = {
    "autoencoding": {"steps": 2, "train_limit": 100, "test_limit": 50, "probe_epochs": 2},
    "segmentation": {"steps": 2, "eval_every": 1, "crop": 64, "size": 224},
}


def write_preset(tmp_path, **changes):
    """A preset of real benchmarks (for validation and expansion; nothing here runs it)."""
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


pytestmark = pytest.mark.usefixtures("instant")


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "'bogus' was unexpected\\); allowed: baselines, benchmarks"),
    ({"networks": [{"network": "vgg61"}]}, "unknown network 'vgg61'"),
    ({"networks": [{"network": "vgg16", "points": ["relu9_9"]}]}, "no extraction point 'relu9_9'"),
    ({"benchmarks": {"autoencoding": "mnist"}}, "data set must be one of"),
    ({"budget": "huge"}, "budget must be one of .*got 'huge'"),
    ({"benchmarks": {"denoize": "x"}}, "unknown benchmark 'denoize'"),
    ({"networks": [{"network": "vgg16", "wieghts": ["random"]}]}, "networks/0: .*'wieghts' was unexpected"),
])
def test_bad_presets_name_the_problem(tmp_path, change, message):
    with pytest.raises(DplError, match=message):
        grid.load_preset(str(write_preset(tmp_path, **change)))


@pytest.mark.parametrize("change, lines", [
    ({"seeds": 0}, ["seeds: 0 is not of type 'array' (write a list of integers, e.g. seeds: [0, 1])"]),
    ({"benchmarks": ["similarity"]}, ["benchmarks: ['similarity'] is not of type 'object' (write a mapping of "
                                      "benchmark to data set, or to a list of them"]),
    ({"networks": ["resnet18"]}, ["networks/0: 'resnet18' is not of type 'object' (write a list of entries like "
                                  "{network: vgg16"]),
    ({"seeds": "0", "device": "gpu", "networks": [{"points": []}]},  # every problem, each on its own line
     ["device: 'gpu' does not match", "networks/0: 'network' is a required property",
      "networks/0/points: [] should be non-empty", "seeds: '0' is not of type 'array'"]),
])
def test_bad_presets_give_one_line_per_problem_and_no_traceback(tmp_path, change, lines):
    done = subprocess.run([sys.executable, "-m", "dpllib.cli", "run", str(write_preset(tmp_path, **change)),
                           "--dry-run"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("dpl run: error: preset ") and done.stdout == ""
    problems = done.stderr.strip().splitlines()[1:]
    assert len(problems) == len(lines), done.stderr
    for problem, expected in zip(problems, lines):
        assert problem.strip().startswith(expected), (problem, expected)
    debug = subprocess.run([sys.executable, "-m", "dpllib.cli", "--debug", "run", str(write_preset(tmp_path, **change)),
                            "--dry-run"], capture_output=True, text=True, timeout=300)
    assert "Traceback" in debug.stderr and "DplError" in debug.stderr


def test_an_unknown_preset_lists_the_shipped_presets_only():
    with pytest.raises(DplError, match=r"not one of \['denoising', 'extended', 'offline', 'paper'\]$"):
        grid.preset_path("ofline")


def test_points_by_network_counts_an_alias_and_its_module_once():
    entries = [{"network": "efficientnet_lite0", "points": ["stem", "stage1"]}, {"network": "efficientnet_lite0"},
               {"network": "alexnet", "points": ["relu2"]}]
    assert grid.points_by_network(entries) == {"efficientnet_lite0": ["bn1", "blocks.0", "blocks.3", "blocks.6"],
                                               "alexnet": ["features.4"]}


def test_shipped_presets_expand():
    offline = grid.cells(grid.load_preset("offline"))
    # Lite0 (imagenet, random), Lite1, Lite2 and the baseline, 4 benchmarks, 2 seeds
    assert len(offline) == 4 * 5 * 2
    assert len({results.cell_id(c) for c in offline}) == len(offline)
    assert {c["weights"] for c in offline if c["network"] == "efficientnet_lite0"} == {"imagenet", "random"}
    assert {c["budget"] for c in offline} == {"offline"} and {c["seed"] for c in offline} == {0, 1}
    # parallel workers start different warm starts first: the first 8 cells are the 8 (benchmark, seed) groups
    order = grid.interleaved(offline)
    assert sorted(map(results.cell_id, order)) == sorted(map(results.cell_id, offline))
    assert len({(c["benchmark"], c["seed"]) for c in order[:8]}) == 8
    paper = grid.load_preset("paper")
    assert len(grid.cells(paper)) == 5 * 3 * 15  # autoencoding on SVHN and STL-10
    text = grid.estimate(paper)
    assert "super_resolution" in text and "200000" in text


@pytest.mark.slow
def test_run_resume_and_status(tmp_path):
    lite = {"network": "efficientnet_lite0", "weights": ["imagenet"], "points": ["stage1"]}
    preset = grid.load_preset(str(instant_preset(tmp_path, networks=[lite])))
    out = tmp_path / "results"
    outcome = grid.run(preset, out, progress=False)
    assert outcome == {"ok": 4}
    for s in grid.status(preset, out):
        assert s.state == "done"
        path = results.record_path(s.cell, out)
        assert path.with_suffix(".ipynb").is_file()  # the executed notebook is kept
        assert "README.md" in results.read_record(path)["data_root_entries"]  # the kernel read the data root
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")}
    assert grid.run(preset, out, progress=False) == {"skipped": 4}
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")}
    assert "instant" in grid.status_table(preset, out)
    frame = results.table(out)
    assert set(frame["network"]) == {"efficientnet_lite0", "baseline"}
    lite = frame[frame["network"] == "efficientnet_lite0"]
    assert (lite["top1"] == 75.1).all() and (lite["alias"] == "stage1").all() and lite["pretrained"].all()
    path = results.write_table(frame, tmp_path / "t.parquet")
    assert len(results.read_table(path)) == len(frame)


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path):
    preset = grid.load_preset(str(instant_preset(tmp_path, seeds=(0, 1, 2, 3), fail="told to fail", only=[1, 3])))
    out = tmp_path / "results"
    outcome = grid.run(preset, out, progress=False)
    assert outcome == {"ok": 2, "failed": 2}
    failed = [results.read_record(results.record_path(s.cell, out)) for s in grid.status(preset, out)
              if s.state == "failed"]
    assert all("RuntimeError: told to fail" in r["traceback"] for r in failed)
    assert sorted(r["config"]["seed"] for r in failed) == [1, 3]
    # nothing new runs unless asked to retry
    assert grid.run(preset, out, progress=False) == {"skipped": 2, "skipped (failed)": 2}


@pytest.mark.slow
def test_submitit_array_with_the_local_executor(tmp_path):
    preset = grid.load_preset(str(instant_preset(tmp_path, seeds=(0,))))
    jobs = grid.run_slurm(preset, tmp_path / "r", cluster="local", wait=True)
    assert len(jobs) == 1
    assert [s.state for s in grid.status(preset, tmp_path / "r")] == ["done"]


@pytest.mark.slow
def test_killing_a_run_never_leaves_a_half_record(tmp_path):
    preset_file = instant_preset(tmp_path, seeds=(0, 1, 2, 3), seconds=2.0)
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dpllib.cli", "run", str(preset_file), "--results", str(out)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("*/*.json")):
        time.sleep(0.2)
    assert list(out.glob("*/*.json")), "the first cell never finished"
    time.sleep(1.5)  # well into the next cell
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


def _kernels_of(pid: int) -> list[int]:
    """The ipykernel processes started by process ``pid`` (papermill's kernels)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"ipykernel" in cmd:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
def test_a_dead_kernel_becomes_a_failed_record_and_the_run_goes_on(tmp_path):
    """SIGKILL of a cell's kernel (as the out-of-memory killer does): a failed record naming the
    signal within seconds, the next cell runs, and `dpl run` exits non-zero."""
    preset_file = instant_preset(tmp_path, seconds=120.0, only=[0])  # the first cell waits to be killed
    out = tmp_path / "results"
    runner = subprocess.Popen([sys.executable, "-m", "dpllib.cli", "run", str(preset_file), "--results", str(out)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _kernels_of(runner.pid):
        time.sleep(0.2)
    [kernel] = _kernels_of(runner.pid)
    time.sleep(3)  # into the first cell
    killed = time.time()
    os.kill(kernel, signal.SIGKILL)
    while time.time() < killed + 60 and not list(out.glob("*/*.json")):
        time.sleep(0.2)
    assert list(out.glob("*/*.json")), "no failed record a minute after the kernel died"
    assert time.time() - killed < 30
    [record] = [results.read_record(p) for p in out.glob("*/*.json")]
    assert record["status"] == "failed" and "killed by signal 9 (SIGKILL" in record["traceback"]
    stdout, stderr = runner.communicate(timeout=600)  # the other cell (seed 1) still runs
    assert runner.returncode == 1 and "failed" in stderr, stdout + stderr
    states = sorted(s.state for s in grid.status(grid.load_preset(str(preset_file)), out))
    assert states == ["done", "failed"]


@pytest.mark.slow
def test_two_runners_on_one_folder_run_each_cell_once(tmp_path):
    preset_file = instant_preset(tmp_path, seeds=(0, 1, 2, 3), seconds=0.5)
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "dpllib.cli", "run", str(preset_file), "--results", str(out)]
    runners = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [r.communicate(timeout=600)[0] for r in runners]
    assert all(r.returncode == 0 for r in runners), outputs
    ran = sum(int(m) for o in outputs for m in re.findall(r"\bok: (\d+)", o))
    assert ran == 4, outputs  # 4 cells, each run by one of the two
    assert len(list(out.glob("*/*.ipynb"))) == 4 and not list(out.glob("*/*.claim"))


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    from dpllib.files import claim, release

    path = tmp_path / "cell.claim"
    assert claim(path) and claim(path)  # this process holds it
    other = subprocess.run([sys.executable, "-c", f"from dpllib.files import claim; print(claim({str(path)!r}))"],
                           capture_output=True, text=True)
    assert other.stdout.strip() == "False"  # a live holder keeps it
    release(path)
    assert not path.exists()
    dead = subprocess.Popen([sys.executable, "-c", f"from dpllib.files import claim; claim({str(path)!r})"])
    dead.wait()
    assert path.exists() and claim(path)  # its process is gone: taken over
    release(path)


def test_a_benchmark_may_run_on_several_data_sets(tmp_path):
    """``autoencoding: [cifar10, svhn]`` makes every cell once per data set; the paper preset
    runs the study's two autoencoder data sets."""
    preset = grid.load_preset(str(write_preset(tmp_path, benchmarks={"autoencoding": ["cifar10", "stl10"]})))
    made = grid.cells(preset, tmp_path / "results")
    assert sorted({c["dataset"] for c in made}) == ["cifar10", "stl10"]
    assert len(made) == 2 * len([c for c in made if c["dataset"] == "cifar10"]) == 4
    assert grid.load_preset("paper")["benchmarks"]["autoencoding"] == ["svhn", "stl10"]
    with pytest.raises(DplError, match="autoencoding data set must be one of"):
        grid.load_preset(str(write_preset(tmp_path, benchmarks={"autoencoding": ["cifar10", "mnist"]})))
