"""Bring your own network (``dpl evaluate``): its entry beside a preset's run, its rows marked in
the book's tables and figures, and the run's statistics unchanged by it."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dpllib import DplError, analysis, grid, narrative, results
from dpllib.networks import extraction_points

from .fabricate import fabricate_results

NETWORKS = ("efficientnet_lite0", "efficientnet_lite1", "squeezenet1_1", "alexnet")
MINE = "alexnet"  # marked as the user's in the tests below


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    return fabricate_results(tmp_path_factory.mktemp("yours") / "results", seeds=(0, 1, 2), networks=NETWORKS)


def _marked(folder, tmp_path):
    """A copy of the run's manifest in which alexnet with ImageNet weights is the user's network
    (alexnet with random weights stays the preset's)."""
    preset, ids = results.read_manifest(folder)
    preset = {**preset, "networks": [*preset["networks"], {"network": MINE, "weights": ["imagenet"], "yours": True}]}
    (tmp_path / "marked").mkdir()
    for bench in ("similarity", "super_resolution", "segmentation", "autoencoding"):
        (tmp_path / "marked" / bench).symlink_to(folder / bench)
    results.write_manifest(tmp_path / "marked", preset, list(ids))
    return results.load_run(tmp_path / "marked")


def test_the_statistics_do_not_change_with_the_users_network(run_folder, tmp_path):
    """Seed noise, seed agreement and every claim about the conventions are the same whether the
    user's network is in the run or was never run."""
    marked = _marked(run_folder, tmp_path)
    assert set(marked.table.loc[marked.table["yours"], "network"]) == {MINE}
    without = results.load_run(run_folder).table.query("not (network == @MINE and weights == 'imagenet')")
    mine_scores, their_scores = analysis.scores(marked.table), analysis.scores(without)
    for estimator in (analysis.seed_noise, analysis.seed_agreement):
        pd.testing.assert_frame_equal(estimator(mine_scores), estimator(their_scores))
    claims = [analysis.claims(s, analysis.seed_summary(s), n_boot=50) for s in (mine_scores, their_scores)]
    pd.testing.assert_frame_equal(claims[0], claims[1])
    assert MINE not in set(analysis.loss_networks(analysis.seed_summary(mine_scores))["network"])
    assert MINE in set(analysis.loss_networks(analysis.seed_summary(mine_scores), "random")["network"])


def test_the_users_network_is_one_more_row_marked_as_theirs(run_folder, tmp_path):
    marked = _marked(run_folder, tmp_path)
    summary = analysis.seed_summary(analysis.scores(marked.table))
    frame = analysis.heatmap_frame(summary, "super_resolution", "imagenet", yours=True)
    assert set(frame["network"]) == set(NETWORKS) and frame.loc[frame["network"] == MINE, "yours"].all()
    assert MINE not in set(analysis.heatmap_frame(summary, "super_resolution", "imagenet")["network"])
    ranked = analysis.ranks(summary, yours=True)
    assert len(ranked) == len(NETWORKS) and ranked.loc[ranked["network"] == MINE, "yours"].all()
    html = narrative.readable(ranked).data
    assert "alexnet (yours)" in html and ">yours<" not in html  # marked by name, no extra column
    assert "alexnet (imagenet)" in narrative.yours_line(marked.table)
    assert narrative.yours_line(results.load_run(run_folder).table) is None


def _preset(folder) -> dict:
    return grid.load_preset(str(folder / "preset.yaml"))


def test_an_evaluated_network_joins_the_run(run_folder, tmp_path):
    """Its entry is kept beside the records (once, however often it is evaluated), limited to
    the benchmarks asked for, with a network outside the study at its study-style points."""
    preset = _preset(run_folder)
    weights = tmp_path / "mine.pth"
    torch.save({"anything": torch.zeros(1)}, weights)
    entry = grid.add_yours(preset, tmp_path, "mobilenet_v3_small", str(weights), benchmarks=["super_resolution"])
    assert entry["points"] == [p.module for p in extraction_points("mobilenet_v3_small", study_only=True)]
    grid.add_yours(preset, tmp_path, "mobilenet_v3_small", str(weights), benchmarks=["super_resolution"])
    assert len(json.loads((tmp_path / grid.YOURS).read_text())) == 1
    cells = grid.cells(grid.with_yours(preset, tmp_path))
    mine = [c for c in cells if c["network"] == "mobilenet_v3_small"]
    assert {c["benchmark"] for c in mine} == {"super_resolution"} and len(mine) == len(preset["seeds"])
    assert len(cells) == len(grid.cells(preset)) + len(mine)
    (network, kept), = results.yours(grid.with_yours(preset, tmp_path))
    assert kept.startswith(str(tmp_path / "weights")) and kept.endswith("/mine.pth")  # kept by content in the run
    torch.save({"anything": torch.ones(1)}, weights)  # a new version of the file replaces the old entry
    grid.add_yours(preset, tmp_path, "mobilenet_v3_small", str(weights), benchmarks=["super_resolution"])
    (_, newer), = results.yours(grid.with_yours(preset, tmp_path))
    assert newer != kept and newer.endswith("/mine.pth")


@pytest.mark.parametrize("network, weights, kwargs, message", [
    ("alexnet", "imagenet", {}, "alexnet \\(imagenet\\) is in the fabricated preset already"),
    ("resnet18", "no/such.pth", {}, "'no/such.pth' is no file"),
    ("resnet18", "random", {"benchmarks": ["denoising"]}, "the fabricated preset does not run denoising; it runs autoencoding"),
    ("resnet18", "random", {"points": ["layer9"]}, "resnet18 has no extraction point 'layer9'"),
    ("resnet81", "random", {}, "unknown network 'resnet81'"),
])
def test_a_bad_evaluation_names_the_problem(run_folder, tmp_path, network, weights, kwargs, message):
    with pytest.raises(DplError, match=message):
        grid.add_yours(_preset(run_folder), tmp_path, network, weights, **kwargs)
    assert not (tmp_path / grid.YOURS).exists()


def test_a_preset_entry_limited_to_a_benchmark_it_does_not_run_is_refused(run_folder, tmp_path):
    preset = yaml.safe_load((run_folder / "preset.yaml").read_text())
    preset["networks"][0]["benchmarks"] = ["denoising"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(preset))
    with pytest.raises(DplError, match="limited to 'denoising', which the preset does not run"):
        grid.load_preset(str(tmp_path / "p.yaml"))


def test_weights_files_are_shown_by_name():
    assert narrative.shown_weights("/home/me/runs/mine.pth") == "file mine.pth"
    assert narrative.shown_weights("imagenet") == "imagenet"
    frame = pd.DataFrame({"network": ["resnet18", "efficientnet_lite0"], "yours": [True, np.nan]})
    assert narrative.shown_names(frame).tolist() == ["resnet18 (yours)", "lite0"]
