"""The extended preset (issue 20, item 3): modern timm backbones beside the study's networks,
each with 4 study-style points, ImageNet top-1 where the weights have a classifier, an estimate
of its cost, and a smoke cell per family with random weights."""

import pytest

from dpllib import grid
from dpllib.catalog import TIMM_NETWORKS
from dpllib.networks import extraction_points, fixed_input_size, network_info
from dpllib.benchmarks import similarity

pytestmark = pytest.mark.slow  # 19 networks described, 5 smoke cells: make test-fast leaves them out


@pytest.fixture(scope="module")
def extended():
    return grid.load_preset("extended")  # validates every network and point (built on the meta device)


def test_every_extended_network_builds_and_has_four_points(extended):
    names = [e["network"] for e in extended["networks"]]
    modern = [n for n in names if n.startswith("timm:")]
    assert len(modern) >= 10 and {n.split(":")[1] for n in modern} <= set(TIMM_NETWORKS)
    for name in names:
        points = extraction_points(name, study_only=True)
        assert [p.study_index for p in points] == [1, 2, 3, 4], name
        assert all(p.layout in ("map", "tokens", "channels_last") and p.channels for p in points), name
    with_top1 = [n for n in names if network_info(n).top1 is not None]
    assert len(with_top1) >= 13  # convention (a) across networks
    kinds = {network_info(n).training for n in modern}
    assert {"self-supervised (DINOv2, registers)", "image-text (CLIP)", "supervised ImageNet-1k"} <= kinds
    assert {network_info(n).kind for n in names} == {"CNN", "transformer"}


def test_the_extended_dry_run_estimates_its_cells(extended):
    cells = grid.cells(extended)
    assert len(cells) == 5 * 3 * (len(extended["networks"]) + 1)  # 5 (benchmark, data set) x 3 seeds
    text = grid.estimate(extended)
    assert "total hours" in text and "not measured" in text  # the unmeasured pairs are named, not guessed
    listed = grid.networks_table(extended).splitlines()[1:]
    assert len(listed) == len(extended["networks"])
    assert "timm:vit_small_patch14_reg4_dinov2.lvd142m" in listed[13] and "blocks.2, blocks.5, blocks.8, blocks.11" in listed[13]


@pytest.mark.usefixtures("data_env")
@pytest.mark.parametrize("network", [
    "timm:convnext_tiny.fb_in1k",  # CNN
    "timm:vit_small_patch16_224.augreg_in1k",  # ViT
    "timm:vit_small_patch14_reg4_dinov2.lvd142m",  # DINOv2 with registers: 64 px padded to whole 14 px patches
    "timm:swin_tiny_patch4_window7_224.ms_in1k",  # Swin: takes 224 px only, resized
    "timm:vit_base_patch16_clip_224.openai",  # CLIP
])
def test_one_network_per_family_runs_a_smoke_cell(network):
    point = extraction_points(network, study_only=True)[1].module
    record, _ = similarity.run({"benchmark": "similarity", "network": network, "points": [point], "weights": "random",
                                "dataset": "equal_mse", "budget": "smoke", "seed": 0, "device": "cpu",
                                "overrides": {"steps": 1, "synthetic_n": 2}}, progress=False)
    assert record["status"] == "ok", record.get("traceback")
    scores = [r["value"] for r in record["rows"] if r["metric"] == "2afc"]
    assert scores and all(0 <= v <= 1 for v in scores)
    assert (fixed_input_size(network) == 224) == ("swin" in network)
