"""Every `dpl` subcommand answers --help and makes one real call. Real calls made elsewhere:
`dpl run`, `dpl status`, `dpl table` from a wheel install (test_paper_path), `dpl book`
(test_book), the server `dpl lab` starts (test_paper_path)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dpllib import cli, grid

from .conftest import dpl

SUBCOMMANDS = ("networks", "bench", "run", "status", "table", "recommend", "evaluate", "data", "book", "lab")


def test_the_console_script_lists_every_subcommand():
    out = subprocess.run([str(Path(sys.executable).parent / "dpl"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and all(name in out.stdout for name in SUBCOMMANDS), out.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    out = dpl(command, "--help")
    assert out.returncode == 0 and out.stdout.startswith(f"usage: dpl {command}"), out.stdout + out.stderr


@pytest.mark.slow
def test_networks_lists_a_networks_points(capsys):
    """In this process (the command's own code; starting `dpl` itself is tested above)."""
    assert cli.main(["networks", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "relu2_2" in out and "features.8" in out and "study 2" in out
    assert cli.main(["networks", "timm:vit_small_patch14_reg4_dinov2.lvd142m"]) == 0  # a transformer: tokens as maps
    vit = capsys.readouterr().out
    assert "blocks.11" in vit and "tokens (+5 prefix)" in vit


@pytest.mark.slow
def test_run_dry_run_estimates_the_paper_preset(capsys):
    assert cli.main(["run", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "225 cells" in out and "super_resolution" in out  # autoencoding on SVHN and STL-10 and "total hours" in out


@pytest.mark.slow
def test_bench_step_cost_feeds_the_dry_run(tmp_path, data_env):
    """`dpl bench step_cost` measures (here: the baseline's autoencoding step on the CPU) and its
    file turns into hours in the dry-run."""
    out = tmp_path / "cpu_test.json"
    done = dpl("bench", "step_cost", "--networks", "baseline", "--benchmarks", "autoencoding", "--device", "cpu",
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    measured = json.loads(out.read_text())
    assert measured["seconds_per_step"]["autoencoding/baseline"] > 0 and "CPU" in measured["device"]
    text = grid.estimate(grid.load_preset("paper"), {"cpu_test": measured})
    assert "cpu_test: " in text and "not measured" in text  # the loss networks were not measured here
