"""The paper path as a new user meets it: commands from other folders, official checkpoints,
non-spatial points, many processes on one data root, stale and foreign records, Slurm
retries, temporaries of live runs, and JupyterLab as root."""

import json
import multiprocessing
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

from dpllib import PerceptualLoss, grid, load_network, results
from dpllib.files import temporary_is_orphaned, temporary_path

from .conftest import REPO, dpl
from .instant import instant_preset



# --------------------------------------------------------------------------- 1: other folders


@pytest.mark.slow
def test_a_wheel_install_runs_a_preset_from_an_empty_folder_with_relative_paths(tmp_path, shared_data):
    """`pip install .` (not editable; the notebooks ship inside the package), then dpl run,
    status and table from folders outside any checkout, with relative paths everywhere. The cell
    is the instant benchmark's (it reads the data root the preset names, relative to the preset
    file); each real trainer runs through the notebook in test_notebooks."""
    site = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                            str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    assert (site / "dpllib" / "_resources" / "notebooks" / "benchmarks" / "cell.ipynb").is_file()
    assert (site / "dpllib" / "_resources" / "book" / "intro.md").is_file()
    (tmp_path / "data").symlink_to(shared_data)
    (tmp_path / "presets").mkdir()
    preset = instant_preset(tmp_path / "presets", seeds=(0,))
    spec = yaml.safe_load(preset.read_text())
    preset.write_text(yaml.safe_dump({**spec, "data_root": "../data"}))  # relative to the preset file
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "DPL_CACHE": "cache", "DPL_DATA_ROOT": "../nowhere", "DPL_RESULTS": "res",
           "DPL_BENCHMARKS": "tests.instant",  # kernels inherit it: they import the installed dpllib too
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    where = subprocess.run([sys.executable, "-c", "import dpllib.paths as p; print(p.__file__, p.source_checkout())"],
                           cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.split() == [str(site / "dpllib" / "paths.py"), "None"], where.stdout + where.stderr
    run = dpl("run", str(preset), cwd=work, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    [record] = (work / "res" / "instant" / "instant").glob("*.json")
    record = results.read_record(record)
    assert record["status"] == "ok" and "README.md" in record["data_root_entries"]  # ../data, not ../nowhere
    assert (work / "res" / "instant" / "instant" / f"{record['cell_id']}.ipynb").is_file()  # the shipped notebook ran
    status = dpl("status", str(preset), cwd=tmp_path, env={**env, "DPL_RESULTS": str(work / "res")})
    assert re.search(r"total\s+1\s+0\s+0\s+0", status.stdout), status.stdout + status.stderr
    preset.write_text(yaml.safe_dump({**spec, "data_root": "../data", "overrides": {"instant": {"seconds": 0.5}}}))
    table = dpl("table", str(preset), "--results", "res/instant", cwd=work, env=env)  # the run as it ran: run.json
    assert table.returncode == 0 and (work / "res" / "instant" / "table.parquet").is_file(), table.stderr
    assert "from 1 cells" in table.stdout, table.stdout  # an edited preset's cells would have no record


# --------------------------------------------------------------------------- 2: official checkpoints


def _official_file(arch: str, path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint in torchvision's published on-disk form with random values: aux heads for
    googlenet / inception_v3, DenseNet's legacy key names, no num_batches_tracked."""
    import torchvision

    kwargs = {"aux_logits": True, "transform_input": True, "init_weights": False} \
        if arch in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if arch.startswith("densenet"):
            key = re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)
        state[key] = torch.randn(value.shape) if value.is_floating_point() else torch.zeros(value.shape, dtype=value.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "densenet121", "resnet18",
                                  "resnet50", "resnext50_32x4d", "googlenet", "inception_v3", "squeezenet1_1",
                                  "efficientnet_b0", "efficientnet_b7"])
def test_study_networks_load_official_checkpoints(arch, tmp_path, monkeypatch):
    from dpllib.weights import torchvision_cache_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DPL_TORCHVISION_MIRROR", "http://127.0.0.1:9")  # nothing may be downloaded
    file_state = _official_file(arch, torchvision_cache_path(arch))
    model = load_network(arch, "imagenet")
    loaded = model.state_dict()
    assert not any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in loaded)
    for key, value in loaded.items():
        if key.endswith("num_batches_tracked"):
            continue
        file_key = re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)
        assert torch.equal(value, file_state[file_key]), key
    if arch in ("googlenet", "inception_v3"):
        assert model.transform_input is True  # as torchvision's pretrained builder sets it
    if arch in ("densenet121", "googlenet"):  # the same file passed as a path loads too
        from_file = load_network(arch, str(torchvision_cache_path(arch))).state_dict()
        assert all(torch.equal(from_file[k], v) for k, v in loaded.items() if not k.endswith("num_batches_tracked"))


# --------------------------------------------------------------------------- 3: non-spatial points


def test_vector_points_count_as_one_by_one_maps():
    x, y = torch.rand(2, 3, 64, 64, requires_grad=True), torch.rand(2, 3, 64, 64)
    loss = PerceptualLoss("resnet18", "fc", weights="random")
    value = loss(x, y)
    assert torch.isfinite(value) and value > 0
    value.backward()
    assert x.grad.abs().sum() > 0
    assert loss.points[0].channels == 1000 and loss.points[0].reduction is None
    lite = PerceptualLoss("efficientnet_lite0", ["classifier", "global_pool.flatten"], distance="lpips")
    assert torch.isfinite(lite(x.detach(), y))


# --------------------------------------------------------------------------- 5: many processes


def _fetch_toy(root: str, url: str) -> str:
    from dpllib.datasets import core

    core.DATASETS["toy"] = core.DatasetSpec("toy", "toy", ("images",), files=((core.RemoteFile(url), "."),),
                                            layout="toy/images/*.png")
    return str(core.dataset_path("toy", root))


def _severity(cache: str) -> str:
    os.environ["DPL_CACHE"] = cache
    from dpllib.datasets import make_severity_2afc

    photos = sorted((Path(os.environ["DPL_DATA_ROOT"]) / "bsds500" / "images" / "train").glob("*.jpg"))[:3]
    return str(make_severity_2afc(photos, n_per_distortion=3, seed=5))


@pytest.mark.slow
def test_many_processes_fetch_one_data_set_once(http_server, tmp_path):
    server, base = http_server
    archive = tmp_path / "toy.tar.gz"
    (tmp_path / "src" / "images").mkdir(parents=True)
    for i in range(20):
        (tmp_path / "src" / "images" / f"{i}.png").write_bytes(os.urandom(20_000))
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "images", arcname="images")
    server.files["/toy.tar.gz"] = archive.read_bytes()
    server.delay = 3.0  # slow enough that all three processes ask while the first downloads
    root = tmp_path / "root"
    root.mkdir()
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        folders = pool.starmap(_fetch_toy, [(str(root), f"{base}/toy.tar.gz")] * 3)
    assert len(set(folders)) == 1 and len(list(Path(folders[0], "images").glob("*.png"))) == 20
    assert [p for p, _ in server.requests].count("/toy.tar.gz") == 1
    assert not list(root.glob(".toy-*"))  # no staging folder left


@pytest.mark.slow
def test_many_processes_generate_one_set_once(data_env, tmp_path):
    cache = str(tmp_path / "cache")
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        folders = pool.map(_severity, [cache] * 3)
    assert len(set(folders)) == 1
    assert len(list(Path(folders[0]).glob("2afc/val/*/ref/*.png"))) == 6 * 3
    assert not [p for p in Path(cache, "generated").iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- 6, 7: records, Slurm, temporaries


def test_stale_and_foreign_records(instant, tmp_path):
    preset = grid.load_preset(str(instant_preset(tmp_path, seeds=(0,))))
    out = tmp_path / "results"
    assert grid.run(preset, out, progress=False) == {"ok": 1}
    [path] = (out / "instant").glob("*.json")
    record = json.loads(path.read_text())
    assert record["code_version"] == results.code_version()
    record["code_version"] = "older"
    path.write_text(json.dumps(record))
    assert [s.state for s in grid.status(preset, out)] == ["stale"]
    assert "rerun them with --rerun-stale" in grid.status_table(preset, out)
    assert grid.run(preset, out, progress=False) == {"skipped (stale)": 1}
    assert grid.run(preset, out, rerun_stale=True, progress=False) == {"ok": 1}
    assert [s.state for s in grid.status(preset, out)] == ["done"]
    foreign = {**record, "config": {**record["config"], "seed": 7}}  # a cell this preset does not have
    results.write_record(foreign)
    assert set(results.table(out, grid.cell_ids(preset))["seed"]) == {0}
    assert set(results.table(out)["seed"]) == {0, 7}


@pytest.mark.slow
def test_retry_failed_reaches_slurm(instant, tmp_path):
    preset = grid.load_preset(str(instant_preset(tmp_path, seeds=(0,), fail="told to fail")))
    out = tmp_path / "r"
    assert grid.run(preset, out, progress=False) == {"failed": 1}
    assert grid.run_slurm(preset, out, cluster="local", wait=True) == []
    jobs = grid.run_slurm(preset, out, cluster="local", retry_failed=True, wait=True)
    assert len(jobs) == 1 and isinstance(jobs[0].submission().function, grid.CellJob)


def test_cleaning_keeps_the_temporaries_of_live_writers(tmp_path):
    live = temporary_path(tmp_path / "a.json")
    live.write_text("{")
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    dead = tmp_path / live.name.replace(f".{os.getpid()}.", f".{dead_pid.pid}.")
    dead.write_text("{")
    remote_new = tmp_path / ".b.json.otherhost.1.tmp"
    remote_new.write_text("{")
    remote_old = tmp_path / ".c.json.otherhost.1.tmp"
    remote_old.write_text("{")
    os.utime(remote_old, (time.time() - 2 * 86_400,) * 2)
    assert not temporary_is_orphaned(live) and temporary_is_orphaned(dead)
    assert grid.clean_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, remote_new.name])


def test_slurm_tasks_requeue_themselves():
    import submitit

    job = grid.CellJob()
    assert isinstance(job, submitit.helpers.Checkpointable)
    resubmission = job.checkpoint({"benchmark": "x"}, "/results")
    assert resubmission.function is job and resubmission.args == ({"benchmark": "x"}, "/results")


# --------------------------------------------------------------------------- 9: JupyterLab


@pytest.mark.slow
def test_lab_serves_the_notebooks_with_the_project_kernel(tmp_path):
    import socket

    from jupyter_client import BlockingKernelClient

    from dpllib.cli import lab_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = lab_command(port, open_browser=False) + ["--ServerApp.token=dpltest", "--ServerApp.ip=127.0.0.1"]
    if os.geteuid() == 0:
        assert "--allow-root" in cmd
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": "token dpltest"}

    def api(path, data=None):
        req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.time() + 120
        while True:
            try:
                api("/api/status")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError(server.stderr.read().decode()[-3000:] if server.poll() is not None else "timeout")
                time.sleep(0.5)
        names = {c["name"] for c in api("/api/contents/benchmarks")["content"]}
        assert "cell.ipynb" in names
        kernel = api("/api/kernels", json.dumps({"name": "python3"}).encode())
        client = BlockingKernelClient(connection_file=str(tmp_path / "runtime" / f"kernel-{kernel['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        lines = []
        client.execute_interactive("import dpllib, sys; print(dpllib.__file__); print(sys.prefix)", timeout=60,
                                   output_hook=lambda m: lines.append(m["content"].get("text", "")))
        client.stop_channels()
        printed = "".join(lines).split()
        assert printed[0] == str(REPO / "dpllib" / "__init__.py") and printed[1] == sys.prefix
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_one_slurm_task_runs_several_cells_on_its_gpu(instant, tmp_path):
    preset = grid.load_preset(str(instant_preset(tmp_path, seeds=(0, 1))))
    jobs = grid.run_slurm(preset, tmp_path / "r", cluster="local", cells_per_job=2, wait=True)
    assert len(jobs) == 1 and len(jobs[0].result()) == 2
    assert [s.state for s in grid.status(preset, tmp_path / "r")] == ["done", "done"]
