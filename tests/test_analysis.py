"""The analysis functions behind the book's chapters, on tables whose answers are known."""

import pandas as pd

from dpllib import analysis


def test_preset_tables():
    preset = {"name": "p", "budget": "smoke", "seeds": [0], "baselines": True,
              "benchmarks": {"super_resolution": "bsds500", "autoencoding": "cifar10"},
              "overrides": {"autoencoding": {"steps": 7}},
              "networks": [{"network": "efficientnet_lite0", "weights": ["imagenet", "random"]},
                           {"network": "vgg16", "points": ["relu2_2"]}]}
    nets = analysis.preset_networks(preset)
    assert list(nets["alias"]) == ["stem", "stage1", "stage4", "stage7", "relu2_2"]
    assert nets.iloc[0]["weights"] == "imagenet, random" and nets.iloc[-1]["weights"] == "imagenet"
    assert nets.iloc[-1]["module"] == "features.8"
    benches = analysis.preset_benchmarks(preset).set_index("benchmark")
    assert "steps=7" in benches.loc["autoencoding", "budget settings"]
    assert "steps=60" in benches.loc["super_resolution", "budget settings"]


def test_run_summary_states_each_finding():
    ranking = pd.DataFrame({"network": ["a", "b"], "average_rank": [1.0, 2.0]})
    rho = pd.DataFrame({"benchmark": ["sr"], "rho": [-0.5], "ci_low": [float("nan")], "ci_high": [float("nan")],
                        "p": [0.04], "networks": [3]})
    shares = pd.DataFrame({"benchmark": ["sr"], "network": [0.1], "point": [0.7]})
    pretrained = pd.DataFrame({"benchmark": ["sr"], "pairs": [8], "pretrained_wins": [0.75],
                               "mean_difference": [0.2], "ci_low": [0.1], "ci_high": [0.3]})
    lines = analysis.run_summary(ranking, rho, rho.iloc[:0], shares, pretrained)
    assert lines[0].startswith("Best average rank: **a**")
    assert "ImageNet top-1 vs score rho = -0.50 (no interval: 3 networks" in lines[1]
    assert "network explains 10%" in lines[2] and "point 70%" in lines[2]
    assert "75% of 8 pairs" in lines[3]
