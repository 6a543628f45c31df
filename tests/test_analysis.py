"""The statistics (dpllib.analysis) and the book's sentences and tables (dpllib.narrative), on
tables whose answers are known."""

import dataclasses

import pandas as pd
import pytest
from scipy import stats

from dpllib import analysis, narrative
from dpllib.registry import benchmarks, get_benchmark, register


def test_preset_tables():
    preset = {"name": "p", "budget": "smoke", "seeds": [0], "baselines": True,
              "benchmarks": {"super_resolution": "bsds500", "autoencoding": "cifar10"},
              "overrides": {"autoencoding": {"steps": 7}},
              "networks": [{"network": "efficientnet_lite0", "weights": ["imagenet", "random"]},
                           {"network": "vgg16", "points": ["relu2_2"]}]}
    nets = narrative.preset_networks(preset)
    assert list(nets["alias"]) == ["stem", "stage1", "stage4", "stage7", "relu2_2"]
    assert nets.iloc[0]["weights"] == "imagenet, random" and nets.iloc[-1]["weights"] == "imagenet"
    assert nets.iloc[-1]["module"] == "features.8"
    benches = narrative.preset_benchmarks(preset).set_index("benchmark")
    assert "steps=7" in benches.loc["autoencoding", "budget settings"]
    assert "steps=20," in benches.loc["super_resolution", "budget settings"]  # the smoke budget


# --------------------------------------------------------------------------- statistics with known answers

import numpy as np  # noqa: E402

POINTS = ["p1", "p2", "p3", "p4"]


def _scores(networks: int, seeds=(0, 1), net_effect=0.0, depth_effect=-1.0, noise=0.01, weights=("imagenet",),
            random_shift=0.0, benchmark="autoencoding", seed=0) -> pd.DataFrame:
    """Seed-level scores: score = net_effect * network index + depth_effect * depth + noise;
    networks' top-1 rises with their index."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(networks):
        for w in weights:
            for i, alias in enumerate(POINTS):
                depth = (i + 1) / 4
                for s in seeds:
                    score = net_effect * n + depth_effect * depth + (random_shift if w == "random" else 0.0)
                    rows.append({"benchmark": benchmark, "network": f"net{n}", "weights": w, "pretrained": w == "imagenet",
                                 "family": "f", "top1": 70.0 + n, "has_batchnorm": n % 2 == 0, "point": alias,
                                 "alias": alias, "study_index": i + 1, "depth": depth, "seed": s,
                                 "score": score + noise * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_depth_within_networks_ignores_differences_between_networks():
    # within each network deeper is worse, while deeper networks... the networks' levels rise:
    # a pooled correlation would mix the two; the within-network one must not
    frame = analysis.seed_summary(_scores(6, net_effect=2.0, depth_effect=-1.0))
    out = analysis.depth_within_networks(frame).iloc[0]
    assert out["mean_rho"] == pytest.approx(-1.0) and out["later_better_in"] == 0 and out["share_high"] < 0.5
    assert out["p_sign"] == pytest.approx(2 / 64)  # exact: all 6 of 6 networks, two-sided


def test_depth_slope_has_the_right_sign_and_interval():
    out = analysis.depth_slope(_scores(3, depth_effect=-1.0)).iloc[0]
    assert out["slope"] == pytest.approx(-1.0, abs=0.05) and out["ci_high"] < 0
    assert out["points"] == 12 and out["networks"] == 3  # points (seed means) are the units
    flat = analysis.depth_slope(_scores(3, depth_effect=0.0, noise=0.1)).iloc[0]
    assert flat["ci_low"] < 0 < flat["ci_high"]


def test_accuracy_correlation_uses_one_value_per_network():
    frame = analysis.seed_summary(_scores(6, net_effect=1.0))  # better networks have higher top-1
    out = analysis.accuracy_correlation(frame).set_index("network_score")
    assert out.loc["best", "networks"] == 6 and out.loc["best", "rho"] == pytest.approx(1.0)
    assert out.loc["best", "p"] == pytest.approx(2 / 720) and out.loc["mean", "rho"] == pytest.approx(1.0)  # exact
    few = analysis.accuracy_correlation(analysis.seed_summary(_scores(4, net_effect=1.0)))
    assert few["p"].isna().all() and few["ci_low"].isna().all()  # fewer than 5 networks


def test_variance_components_nest_points_in_networks_with_seeds_as_noise():
    out = analysis.variance_components(_scores(3, net_effect=0.0, depth_effect=-1.0), n_boot=200).iloc[0]
    assert out["var_point"] > 0.05 and out["var_network"] < out["var_point"] and out["p_point"] < 1e-6
    assert out["var_point_low"] <= out["var_point"] <= out["var_point_high"]
    one_seed = analysis.variance_components(_scores(3, seeds=(0,)), n_boot=0).iloc[0]
    assert np.isnan(one_seed["p_point"]) and one_seed["seeds"] == 1


def test_variance_component_tests_match_statsmodels_and_allow_different_points_per_network():
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    frame = _scores(3, net_effect=0.3, depth_effect=-1.0, noise=0.2, seeds=(0, 1, 2))
    ours = analysis.variance_components(frame, n_boot=0).iloc[0]
    ref = sm.stats.anova_lm(smf.ols("score ~ C(network) + C(network):C(alias)", frame).fit(), typ=1)
    nested, resid = ref.loc["C(network):C(alias)"], ref.loc["Residual"]
    assert ours["p_point"] == pytest.approx(nested["PR(>F)"])
    f_network = ref.loc["C(network)", "mean_sq"] / nested["mean_sq"]  # the network against its points
    assert ours["p_network"] == pytest.approx(stats.f.sf(f_network, ref.loc["C(network)", "df"], nested["df"]))
    assert ours["var_seed"] == pytest.approx(resid["mean_sq"])
    assert ours["var_point"] == pytest.approx((nested["mean_sq"] - resid["mean_sq"]) / 3)
    # the study's networks name their points differently (relu2_2, layer1, ...), and may have more or fewer
    renamed = frame.assign(alias=frame["network"] + "/" + frame["alias"])
    assert analysis.variance_components(renamed, n_boot=0).iloc[0]["p_point"] == pytest.approx(ours["p_point"])
    fewer = renamed[~renamed["alias"].isin(["net0/p4", "net1/p4"])]  # 3, 3 and 4 points
    out = analysis.variance_components(fewer, n_boot=0).iloc[0]
    assert out["points"] == 10 and 0 <= out["p_network"] <= 1


def test_pretrained_vs_random_pairs_within_networks():
    one = analysis.pretrained_vs_random(_scores(1, weights=("imagenet", "random"), random_shift=-0.5)).iloc[0]
    assert one["mean_difference"] == pytest.approx(0.5, abs=0.02) and one["ci_low"] > 0
    assert "seeds" in one["interval"] and "only" in one["interval"] and one["pretrained_wins"] == 1.0
    many = analysis.pretrained_vs_random(_scores(6, weights=("imagenet", "random"), random_shift=-0.5)).iloc[0]
    assert "t over 6 networks" in many["interval"] and many["ci_low"] > 0 and many["p"] < 0.01


def test_mixed_model_has_benchmark_specific_depth_slopes():
    frame = pd.concat([_scores(3, depth_effect=-1.0, benchmark="autoencoding"),
                       _scores(3, depth_effect=1.0, benchmark="similarity")])
    coefs, note = analysis.mixed_model(analysis.seed_summary(frame))
    slopes = coefs.set_index("term")["estimate"]
    assert slopes["C(benchmark)[autoencoding]:depth"] < 0 < slopes["C(benchmark)[similarity]:depth"]
    assert "no cluster-robust errors" in note


def test_seed_summary_equals_one_loss_network_at_a_time():
    """The grouped computation gives exactly what one loss network at a time gives: its finite
    seeds in the table's order, their mean and t-interval; no finite seed, no row."""
    frame = _scores(4, seeds=(0, 1, 2), noise=0.1, weights=("imagenet", "random")).sample(frac=1, random_state=1)
    frame.loc[frame.index[:5], "score"] = [np.nan, np.inf, np.nan, -np.inf, np.nan]
    frame.loc[frame["network"] == "net3", "top1"] = np.nan  # a key that is missing is a key
    frame.loc[(frame["network"] == "net0") & (frame["point"] == "p1"), "score"] = np.nan
    rows = []
    for key, g in frame.assign(yours=False).groupby(analysis.KEYS, dropna=False):
        v = g["score"].to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            rows.append({**dict(zip(analysis.KEYS, key)), "score": float(v.mean()), "n_seeds": len(v),
                         "ci_low": v.mean() - half, "ci_high": v.mean() + half, "seeds": ", ".join(f"{x:.3g}" for x in v)})
    expected = pd.DataFrame(rows, columns=analysis.KEYS + ["score", "n_seeds", "ci_low", "ci_high", "seeds"])
    got = analysis.seed_summary(frame)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(got) == 4 * 2 * 4 - 2 and (got["n_seeds"] < 3).any()  # net0 p1 has no finite seed in either weights


def test_seed_agreement_and_noise():
    same = _scores(3, noise=0.0)
    assert analysis.seed_agreement(same).iloc[0][["spearman", "kendall_w"]].tolist() == pytest.approx([1.0, 1.0])
    flipped = same.copy()
    flipped.loc[flipped["seed"] == 1, "score"] *= -1
    assert analysis.seed_agreement(flipped).iloc[0]["spearman"] == pytest.approx(-1.0)
    noisy = _scores(3, noise=0.1, seeds=range(20))
    assert analysis.seed_noise(noisy).iloc[0]["seed_sd"] == pytest.approx(0.1, rel=0.15)
    marked = analysis.mark_within_noise(analysis.seed_summary(noisy), analysis.seed_noise(noisy))
    best = marked.sort_values("score").iloc[-1]
    assert best["within_noise_of_best"] and not marked.sort_values("score").iloc[0]["within_noise_of_best"]


def test_findings_state_only_what_exceeds_the_noise():
    table = pd.DataFrame({"benchmark": ["autoencoding"], "network": ["net0"], "weights": ["imagenet"],
                          "dataset": ["cifar10"], "budget": ["offline"], "seed": [0]})
    strong = _scores(3, net_effect=1.0, depth_effect=-1.0, weights=("imagenet", "random"), random_shift=-0.5)
    lines = narrative.findings(analysis.claims(strong, analysis.seed_summary(strong), n_boot=200),
                               analysis.seed_summary(strong), table)
    assert any("later points score worse within networks" in line for line in lines)
    assert any("the extraction point (within a network) matters" in line for line in lines)
    assert any("ImageNet weights score better than random weights" in line for line in lines)
    said = "[net0 (stand-ins for the study's networks); CIFAR-10 (stand-in); offline budget; 1 seed]"
    assert all(said in line for line in lines if line.startswith("autoencoding:"))
    assert any("Cannot speak to" in line and "no VGG network without batch norm ran" in line for line in lines)
    null = _scores(3, depth_effect=0.0, noise=0.2, weights=("imagenet", "random"), seeds=range(6), seed=3)
    quiet = narrative.findings(analysis.claims(null, analysis.seed_summary(null), n_boot=200),
                               analysis.seed_summary(null), table)
    assert not any(claim in line for line in quiet
                   for claim in ("score better within", "score worse within", "weights score better", " matters:"))
    assert any("no evidence that later points" in line for line in quiet)


def test_learning_checks_compare_controls_with_answers_needing_no_learning():
    rows = []
    for seed, (sr, q) in enumerate([(28.6, 0.2), (28.0, 0.1)]):
        base = {"network": "baseline", "weights": "none", "alias": "baseline", "seed": seed, "status": "ok"}
        rows += [{**base, "benchmark": "super_resolution", "metric": "psnr", "split": "set5", "value": sr},
                 {**base, "benchmark": "segmentation", "metric": "quality", "split": "test", "value": q}]
    refs = pd.DataFrame([{"benchmark": "super_resolution", "seed": 0, "method": "bicubic", "metric": "psnr",
                          "split": "set5", "value": 28.7},
                         {"benchmark": "super_resolution", "seed": 0, "method": "nearest", "metric": "psnr",
                          "split": "set5", "value": 26.0}])
    for i in range(16):  # 16 SR loss networks whose order seed 1 reverses: the seeds disagree
        for seed in (0, 1):
            rows.append({"network": f"net{i // 4}", "weights": "imagenet", "alias": f"p{i % 4}", "seed": seed,
                         "status": "ok", "benchmark": "super_resolution", "metric": "psnr", "split": "set5",
                         "value": 27.0 + (i if seed == 0 else -i) / 10})
    table = pd.DataFrame(rows).assign(**{k: None for k in analysis.KEYS if k not in ("benchmark", "network",
                                                                                     "weights", "alias")})
    checks = analysis.learning_checks(table, refs).set_index("check")
    assert not checks.loc["pixel-MSE baseline PSNR on Set5 >= bicubic - 0.5 dB", "met"]  # seed 1: 28.0 < 28.2
    assert checks.loc["pixel-MSE baseline PSNR on Set5 >= bicubic - 0.5 dB", "worst"] == 28.0
    assert not checks.loc["BCE baseline quality >= 0.15", "met"]
    every = checks.loc["every perceptual model beats nearest-neighbour on Set5 (every seed)"]  # 26.0 in seed 1: i >= 10
    failing = every["not met by"].split(", ")
    assert not every["met"] and every["worst"] == pytest.approx(25.5) and len(failing) == 6
    assert "net2 (imagenet) p2" in failing and "net3 (imagenet) p3" in failing and "net0 (imagenet) p0" not in failing
    agreement = checks[checks.index.str.startswith("seeds agree")]
    assert len(agreement) == 1 and agreement["benchmark"].iloc[0] == "super_resolution"  # segmentation has no loss network
    assert not agreement["met"].iloc[0] and agreement["worst"].iloc[0] == pytest.approx(-1.0)
    assert "no ranking is shown" in agreement["why it can miss"].iloc[0]


def test_reference_table_puts_no_stand_in_number_beside_a_paper_figure():
    table = pd.DataFrame({"benchmark": ["similarity"], "network": ["vgg16"], "weights": ["imagenet"], "point": ["features.29"],
                          "dataset": ["equal_mse"], "budget": ["offline"], "metric": ["2afc"], "split": ["cnn"],
                          "value": [0.9], "status": ["ok"]})
    ref = narrative.reference_table(table)
    assert ref["this run"].isna().all() and ref["source"].str.len().gt(0).all()
    assert ref.loc[ref["benchmark"] == "similarity", "status"].str.contains("not comparable").all()
    same = table.assign(dataset="bapps", budget="paper")
    assert narrative.reference_table(same)["this run"].notna().sum() == 1


def test_readable_tables():
    html = narrative.readable(pd.DataFrame({"a_b": [1.23456, np.nan], "flag": [True, False]})).data
    assert "1.23" in html and "1.2346" not in html and "–" in html and "not computed" in html
    assert "a b" in html and "yes" in html and "<th></th>" not in html  # no index column


def test_provenance_names_the_code_and_counts_stale_cells():
    from dpllib.results import code_version

    table = pd.DataFrame({"cell_id": ["a", "a", "b"], "benchmark": "similarity", "network": ["lite", "lite", "baseline"],
                          "weights": ["imagenet", "imagenet", "none"], "dataset": "equal_mse", "budget": "offline",
                          "seed": 0, "code_version": [code_version(), code_version(), "0123456789ab"]})
    line = narrative.provenance(table)
    assert "budget: offline" in line and "0123456789ab" in line and "(1 cell ran on other code" in line
    assert "other code" not in narrative.provenance(table.iloc[:2])


def test_best_ranks_and_marks_follow_the_metric_direction(monkeypatch):
    """A lower-is-better score (an error, a distance) picks the lowest as the best."""
    lower = dataclasses.replace(get_benchmark("autoencoding"), name="error_rate",
                                primary=dataclasses.replace(get_benchmark("autoencoding").primary,
                                                            higher_is_better=False))
    monkeypatch.setattr("dpllib.registry._REGISTRY", benchmarks())  # a copy: the toy stays in this test
    register(lower)
    frame = _scores(3, net_effect=1.0, depth_effect=-1.0, benchmark="error_rate")  # net0 at p4 is lowest
    summary = analysis.seed_summary(frame)
    best = analysis.best_points(summary).set_index("network")
    assert (best["alias"] == "p4").all()  # deeper is lower: the best point of every network
    assert analysis.ranks(summary)["network"].iloc[0] == "net0"
    marked = analysis.mark_within_noise(summary, analysis.seed_noise(frame))
    assert marked.loc[marked["score"].idxmin(), "within_noise_of_best"]
    assert not marked.loc[marked["score"].idxmax(), "within_noise_of_best"]


def test_findings_of_a_paper_style_run_say_nothing_of_stand_ins():
    from dpllib.catalog import STUDY_POINTS

    table = pd.DataFrame([{"benchmark": "super_resolution", "network": n, "weights": "imagenet", "dataset": "coco",
                           "budget": "paper", "seed": s} for n in STUDY_POINTS for s in range(3)])
    said = narrative.evidence(table, "super_resolution")
    assert said == "the study's networks; MS-COCO 2014; paper budget; 3 seeds"
    frame = _scores(14, net_effect=0.5, benchmark="super_resolution", seeds=(0, 1, 2)).assign(
        network=lambda f: f["network"].map(dict(zip([f"net{i}" for i in range(14)], STUDY_POINTS))))
    lines = narrative.findings(analysis.claims(frame, analysis.seed_summary(frame), n_boot=100),
                               analysis.seed_summary(frame), table)
    assert lines and not any("stand-in" in line for line in lines)
    assert not any("architecture ranking" in line for line in lines)  # all 14 ran
    assert any("VGG networks without batch norm best" in line for line in lines)


def test_scores_of_two_data_sets_are_never_averaged(tmp_path):
    """A benchmark run on two data sets: analysis.scores refuses the mixed table (its scores are
    not comparable), and Run.on_datasets / first_datasets give one data set per benchmark."""
    from dpllib import DplError, results

    from .fabricate import STUDY_DATASET, fabricate_results

    folder = fabricate_results(tmp_path / "run", seeds=(0, 1), networks=("efficientnet_lite0",), weights=("imagenet",),
                               budget="paper", datasets=STUDY_DATASET)
    run = results.load_run(folder)
    with pytest.raises(DplError, match="autoencoding ran on several data sets"):
        analysis.scores(run.table)
    assert run.first_datasets()["autoencoding"] == "svhn"
    stl10 = run.on_datasets({"autoencoding": "stl10"})
    assert set(stl10.table.loc[stl10.table["benchmark"] == "autoencoding", "dataset"]) == {"stl10"}
    assert set(stl10.table["benchmark"]) == set(run.table["benchmark"])  # the others kept whole
    assert {c["dataset"] for c, _ in stl10.examples if c["benchmark"] == "autoencoding"} == {"stl10"}
    assert len(analysis.scores(stl10.table)) == len(analysis.scores(run.on_datasets({"autoencoding": "svhn"}).table))
    line = narrative.other_datasets(run.table, run.first_datasets())
    assert "STL-10" in line and narrative.other_datasets(stl10.table, stl10.first_datasets()) is None
