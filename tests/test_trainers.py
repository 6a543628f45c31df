"""Benchmark trainers: configs, determinism, failure records, networks beyond `.features`."""

import pytest

from dpllib.config import CellConfig
from dpllib import DplError
from dpllib.results import read_record, write_record
from dpllib.trainers import autoencoding, segmentation, similarity, super_resolution

TINY = {
    "similarity": {"steps": 2, "severity_n": 6},
    "super_resolution": {"steps": 2, "eval_every": 1, "train_limit": 4, "val_images": 2, "test_limit": 1, "hr_size": 64},
    "segmentation": {"steps": 2, "eval_every": 1, "width": 4, "crop": 64},
    "autoencoding": {"steps": 2, "train_limit": 100, "test_limit": 50, "probe_epochs": 3},
}
DATASET = {"similarity": "severity", "super_resolution": "bsds500", "segmentation": "mass_roads",
           "autoencoding": "cifar10"}
RUN = {"similarity": similarity.run, "super_resolution": super_resolution.run,
       "segmentation": segmentation.run, "autoencoding": autoencoding.run}


pytestmark = pytest.mark.usefixtures("data_env")


def cfg(benchmark, network="efficientnet_lite0", points=("stage1",), weights="random", **kw):
    return {"benchmark": benchmark, "network": network, "points": list(points), "weights": weights,
            "dataset": DATASET[benchmark], "budget": "smoke", "seed": 0, "device": "cpu",
            "overrides": TINY[benchmark], **kw}


def test_config_is_validated_at_the_edge():
    with pytest.raises(DplError, match="unknown config keys"):
        CellConfig.from_dict({**cfg("autoencoding"), "lr": 1})
    with pytest.raises(DplError, match="budget must be one of"):
        CellConfig.from_dict({**cfg("autoencoding"), "budget": "huge"})
    with pytest.raises(DplError, match="no extraction point"):
        CellConfig.from_dict(cfg("autoencoding", points=["nowhere"]))
    with pytest.raises(DplError, match="existing file"):
        CellConfig.from_dict(cfg("autoencoding", weights="no/such/weights.pth"))
    with pytest.raises(DplError, match="data set must be one of"):
        CellConfig.from_dict({**cfg("autoencoding"), "dataset": "mnist"})
    with pytest.raises(DplError, match="unknown budget overrides"):
        CellConfig.from_dict({**cfg("autoencoding"), "overrides": {"stepz": 1}})


@pytest.mark.parametrize("benchmark", ["super_resolution", "autoencoding", "segmentation"])
def test_same_config_and_seed_same_metrics(benchmark):
    a, _ = RUN[benchmark](cfg(benchmark), progress=False)
    b, _ = RUN[benchmark](cfg(benchmark), progress=False)
    assert a["status"] == b["status"] == "ok", a.get("traceback")
    assert a["rows"] == b["rows"] and a["loss_curve"] == b["loss_curve"]


def test_similarity_scores_every_point_and_split():
    rec, _ = similarity.run(cfg("similarity", points=["stem", "stage4"]), progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    means = [r for r in rec["rows"] if r["split"] == "mean"]
    assert {(r["alias"], r["metric"]) for r in means} == {(a, m) for a in ("stem", "stage4") for m in ("2afc", "2afc_lin")}
    assert all(0 <= r["value"] <= 1 for r in rec["rows"])
    splits = {r["split"] for r in rec["rows"]}
    assert {"blur", "noise", "jpeg", "color", "contrast", "pixelate", "mean"} == splits


def test_a_nan_loss_is_a_recorded_failure_not_a_number(monkeypatch, tmp_path):
    def nan_loss(*args, **kwargs):
        return lambda prediction, target: (prediction * float("nan")).mean()

    monkeypatch.setattr(autoencoding, "loss_for", nan_loss)
    rec, _ = autoencoding.run(cfg("autoencoding"), progress=False)
    assert rec["status"] == "failed" and rec["rows"] == []
    assert "NonFiniteLoss" in rec["error"] and "nan" in rec["error"]
    written = read_record(write_record(rec, tmp_path / "r.json"))
    assert written["status"] == "failed" and "Traceback" in written["traceback"]


@pytest.mark.parametrize("benchmark, network, point", [
    ("segmentation", "resnet18", "layer2"),          # no `.features`: never ran in the authors' code
    ("segmentation", "timm:resnet18", "layer1"),
    ("super_resolution", "googlenet", "inception3a"),
    ("autoencoding", "densenet121", "denseblock1"),
])
def test_networks_without_features_attribute_work(benchmark, network, point):
    rec, _ = RUN[benchmark](cfg(benchmark, network=network, points=[point]), progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    assert rec["rows"]


def test_baselines_run():
    for benchmark in ("super_resolution", "segmentation", "autoencoding", "similarity"):
        rec, _ = RUN[benchmark](cfg(benchmark, network="baseline", points=[]), progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert {r["alias"] for r in rec["rows"]} == {"baseline"}


def test_one_model_per_point_from_the_same_seed():
    rec, _ = autoencoding.run(cfg("autoencoding", points=["stem", "stage1"]), progress=False)
    alone, _ = autoencoding.run(cfg("autoencoding", points=["stage1"]), progress=False)
    assert set(rec["loss_curve"]) == {"stem", "stage1"}
    assert rec["loss_curve"]["stage1"] == alone["loss_curve"]["stage1"]
    assert [r for r in rec["rows"] if r["alias"] == "stage1"] == alone["rows"]


def test_sr_lpips_metric_when_alexnet_weights_are_cached(tmp_path, monkeypatch):
    """Offline the LPIPS metric is skipped with a note; with (here fabricated) AlexNet weights in
    torch's cache it is computed."""
    import torch

    from dpllib import load_network

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DPL_TORCHVISION_MIRROR", "http://127.0.0.1:9")
    rec, _ = super_resolution.run(cfg("super_resolution"), progress=False)
    assert "LPIPS not computed" in rec["data"]["metrics_note"]
    assert not any(r["metric"] == "lpips" for r in rec["rows"])
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(load_network("alexnet", "random").state_dict(), cache / "alexnet-owt-7be5be79.pth")
    rec, _ = super_resolution.run(cfg("super_resolution"), progress=False)
    lpips_rows = [r for r in rec["rows"] if r["metric"] == "lpips"]
    assert len(lpips_rows) == 3 and all(r["value"] > 0 for r in lpips_rows)
