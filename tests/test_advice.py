"""Choosing a loss network: point costs, the Pareto front and the recommendation, on tables
with a known answer."""

import json

import numpy as np
import pandas as pd
import pytest

import dpllib
import dpllib.advice
from dpllib import DplError, results
from dpllib.advice import pareto_front, recommend
from dpllib.costs import load_point_costs, measure_point_costs
from dpllib.networks import extraction_points

from .fabricate import fabricate_results

A, B = "efficientnet_lite0", "squeezenet1_1"
COST_MS = {A: (1.0, 2.0, 4.0, 8.0), B: (0.5, 1.0, 2.0, 4.0)}  # per study point 1-4


def _costs() -> pd.DataFrame:
    return pd.DataFrame([{"network": n, "point": p.module, "ms_per_image": ms, "memory_mb": 10 * ms, "gmacs": ms,
                          "params": 1000} for n in (A, B)
                         for p, ms in zip(extraction_points(n, study_only=True), COST_MS[n])])


def _table(tmp_path, scores) -> pd.DataFrame:
    """Super-resolution PSNR of A and B at their 4 points over 3 seeds: ``scores(network,
    study index, seed)``."""
    folder = fabricate_results(tmp_path / "run", seeds=(0, 1, 2), networks=(A, B), weights=("imagenet",))
    table = results.load_run(folder).table
    table = table[table["benchmark"] == "super_resolution"].copy()
    lossnet = table["network"] != "baseline"
    table.loc[lossnet, "value"] = [scores(n, i, s) for n, i, s in
                                   table.loc[lossnet, ["network", "study_index", "seed"]].itertuples(index=False)]
    return table


def test_pareto_front_by_hand():
    frame = pd.DataFrame({"score": [0.6, 0.7, 0.7, 0.9, 0.5], "ms": [1.0, 1.0, 2.0, 8.0, 0.5]})
    assert pareto_front(frame, "score", "ms").tolist() == [False, True, False, True, True]
    # lower is better: the lowest score at the least cost
    assert pareto_front(frame, "score", "ms", higher_is_better=False).tolist() == [False, False, False, False, True]


def test_the_cheapest_loss_network_within_noise_of_the_best_is_recommended(tmp_path):
    """Scores rise by 0.1 per point; B is 0.001 below A at each point (within seed noise) and
    costs half as much. Known answers: no budget -> B's 4th point (tied with A's, cheaper);
    3 ms -> B's 3rd point; the front is B's 4 points and A's last."""
    offsets = {0: -0.002, 1: 0.0, 2: 0.002}  # the same for every loss network: the seeds agree
    table = _table(tmp_path, lambda n, i, s: 0.5 + 0.1 * i - (0.001 if n == B else 0) + offsets[s])
    answer = recommend(table, "super_resolution", costs=_costs())
    assert answer.ranked and answer.lsd < 0.01
    assert (answer.choice["network"], answer.choice["study_index"]) == (B, 4)
    tied = answer.candidates[answer.candidates["tied_with_best"]]
    assert sorted(zip(tied["network"], tied["study_index"])) == [(A, 4), (B, 4)]
    front = answer.candidates[answer.candidates["on_front"]]
    assert sorted(zip(front["network"], front["study_index"])) == [(A, 4), (B, 1), (B, 2), (B, 3), (B, 4)]
    within = recommend(table, "super_resolution", max_ms=3, costs=_costs())
    assert (within.choice["network"], within.choice["study_index"]) == (B, 3)
    assert "Use squeezenet1_1" in str(within) and "seed noise" in str(within)
    assert recommend(table, "super_resolution", max_ms=0.1, costs=_costs()).choice is None
    assert dpllib.recommend is recommend


def test_without_seed_agreement_any_network_in_budget_will_do(tmp_path):
    rng = np.random.default_rng(0)
    table = _table(tmp_path, lambda n, i, s: 0.5 + 0.01 * rng.standard_normal())
    answer = recommend(table, "super_resolution", costs=_costs())
    assert not answer.ranked and answer.candidates["tied_with_best"].all()
    assert (answer.choice["network"], answer.choice["study_index"]) == (B, 1)  # the cheapest
    assert "Any of these" in str(answer)


def test_a_loss_network_without_a_cost_names_the_command(tmp_path):
    table = _table(tmp_path, lambda n, i, s: 0.5 + 0.1 * i)
    with pytest.raises(DplError, match=f"dpl bench point_cost --networks {B}"):
        recommend(table, "super_resolution", costs=_costs()[lambda f: f["network"] == A])


def test_point_costs_are_measured_and_read_back(tmp_path):
    """Deeper points of one network cost more time, more MACs and more parameters; a
    measurement written as the bench script writes it reads back."""
    from dpllib.costs import costs_json

    rows = measure_point_costs("alexnet", ["relu1", "relu5"], size=64, batch=2, repeats=2, min_seconds=0)
    early, late = rows
    assert late["gmacs"] > early["gmacs"] > 0 and late["params"] > early["params"] > 0
    assert late["memory_mb"] > early["memory_mb"] > 0 and late["ms_per_image"] > 0
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(costs_json(rows, "test CPU", "cpu", 64, 2, 2, "x", "abc")))
    frame, what = load_point_costs(path)
    assert list(frame["point"]) == [early["point"], late["point"]] and "64 x 64 px" in what


def test_brackets_recommend_within_each_third_of_the_costs(tmp_path):
    offsets = {0: -0.002, 1: 0.0, 2: 0.002}
    table = _table(tmp_path, lambda n, i, s: 0.5 + 0.1 * i - (0.001 if n == B else 0) + offsets[s])
    per_bracket, answer = dpllib.advice.brackets(table, "super_resolution", costs=_costs())
    assert per_bracket["budget per image"].tolist()[-1] == "no limit"
    assert per_bracket["use"].tolist()[-1] == f"{B} {answer.choice['alias']}"
    cheap = per_bracket.iloc[0]  # the cheapest third of 8 costs: under 1.67 ms -> B's 2nd point (1 ms)
    assert cheap["ms per image"] <= 1.67 and cheap["use"].startswith(B)
