"""A cell killed mid-training (SIGKILL) resumes from its on-disk checkpoint and ends with the
same numbers as a run that was never interrupted."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dpllib.results import read_record

from .conftest import REPO

pytestmark = pytest.mark.usefixtures("data_env")

CELL = ("from dpllib.training import run_cell_in_notebook\n"
        "run_cell_in_notebook('autoencoding', network='efficientnet_lite0', points=['stem', 'stage1'],\n"
        "    weights='imagenet', dataset='cifar10', device='cpu', output_dir={out!r}, progress=False,\n"
        "    overrides={{'steps': 20, 'train_limit': 200, 'test_limit': 100, 'probe_epochs': 1,\n"
        "               'pca_reference': False}})\n")


def _saved_step(path) -> int:
    try:
        return torch.load(path, weights_only=False)["step"]
    except FileNotFoundError:  # removed between the check and the read: the fit ended
        return -1


def _start(out, **env):
    return subprocess.Popen([sys.executable, "-c", CELL.format(out=str(out))], cwd=REPO,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.slow
def test_a_killed_cell_resumes_and_matches_an_uninterrupted_run(tmp_path):
    whole = _start(tmp_path / "whole")  # the uninterrupted run, beside the one that is killed
    out = tmp_path / "killed"
    proc = _start(out, DPL_CHECKPOINT_SECONDS="0")
    cell_folder = out / "autoencoding"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not list(cell_folder.glob("*.ckpt")):
        time.sleep(0.02)
    fit_file = next(cell_folder.glob("*.ckpt"), cell_folder) / "stem_stage1.fit.pt"  # both points, lockstep
    # any step past the first will do: on a fast machine the whole fit takes about a second
    while time.time() < deadline and proc.poll() is None and not (fit_file.exists() and _saved_step(fit_file) >= 3):
        time.sleep(0.02)
    assert fit_file.exists(), proc.stdout.read().decode()[-3000:] if proc.poll() is not None else "no checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(cell_folder.glob("*.json"))

    assert whole.wait(timeout=600) == 0, whole.stdout.read().decode()[-3000:]
    [expected_path] = (tmp_path / "whole" / "autoencoding").glob("*.json")
    expected = read_record(expected_path)
    assert not expected_path.with_suffix(".ckpt").exists()  # removed once the record is written
    again = _start(out)
    assert again.wait(timeout=600) == 0, again.stdout.read().decode()[-3000:]
    record = read_record(out / "autoencoding" / f"{expected['cell_id']}.json")
    assert record["resumed_at"]["stem"] == record["resumed_at"]["stage1"] >= 3  # resumed, not restarted
    assert record["rows"] == expected["rows"]
    assert json.dumps(record["loss_curve"]) == json.dumps(expected["loss_curve"])
