"""The statistics are calibrated: simulations on fabricated score tables with a known truth pin
false-positive rates, interval coverage and the recovery of known variance components (a few
hundred tables per case)."""

import numpy as np
import pandas as pd
import pytest

from dpllib import analysis, narrative
from dpllib.registry import get_benchmark

TABLES = 300
BENCH = "autoencoding"  # a registered benchmark whose score is higher-is-better


def fabricate(rng, networks=3, points=4, seeds=3, net_sd=0.0, point_sd=0.0, seed_sd=0.1, depth=0.0,
              weights=("imagenet",), pretraining_sd=0.0, pretraining=0.0, identical_seeds=False, top1=None):
    """Seed-level scores: network effect + point effect + depth x slope (+ a pretraining
    difference per network for ImageNet weights) + seed noise, all normal with the given SDs."""
    net = rng.normal(0, net_sd, networks)
    pre = rng.normal(pretraining, pretraining_sd, networks)
    top1 = rng.permutation(networks) + 70.0 if top1 is None else top1
    rows = []
    for n in range(networks):
        for w in weights:
            point = rng.normal(0, point_sd, points)
            for i in range(points):
                d = (i + 1) / points
                base = net[n] + point[i] + depth * d + (pre[n] if w == "imagenet" else 0.0)
                noise = rng.normal(0, seed_sd, 1 if identical_seeds else seeds)
                for s in range(seeds):
                    rows.append((BENCH, f"net{n}", w, f"p{i}", d, top1[n], s,
                                 base + noise[0 if identical_seeds else s]))
    frame = pd.DataFrame(rows, columns=["benchmark", "network", "weights", "alias", "depth", "top1", "seed", "score"])
    return frame.assign(point=frame["alias"], study_index=frame["alias"].str[1:].astype(int) + 1, family="f",
                        pretrained=frame["weights"] == "imagenet", has_batchnorm=False)


def rate(flags) -> float:
    return float(np.mean(list(flags)))


# --------------------------------------------------------------------------- nothing to test against


@pytest.mark.parametrize("seeds", [2, 3, 4, 5, 6])
def test_identical_seeds_give_no_point_test(seeds):
    """A deterministic measure (every seed the same float): no seed noise to test the point
    against (was p = 0 with 3 or more seeds)."""
    frame = fabricate(np.random.default_rng(seeds), seeds=seeds, net_sd=1, point_sd=1, identical_seeds=True)
    out = analysis.variance_components(frame, n_boot=0).iloc[0]
    assert np.isnan(out["p_point"]) and out["var_seed"] == 0
    assert 0 < out["p_network"] < 1  # the network is tested against the points, which do vary


@pytest.mark.slow
def test_identical_seeds_do_not_make_the_network_test_liberal():
    rng = np.random.default_rng(1)
    p = [analysis.variance_components(fabricate(rng, point_sd=1, identical_seeds=True), n_boot=0).iloc[0]["p_network"]
         for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


# --------------------------------------------------------------------------- false positives


@pytest.mark.slow
def test_depth_slope_treats_the_point_as_the_unit():
    """Random point effects, no depth trend: ~5% false positives (was 25-38% with seeds as
    replicates)."""
    rng = np.random.default_rng(2)
    p = [analysis.depth_slope(fabricate(rng, point_sd=1.0, seeds=2)).iloc[0]["p"] for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


def test_network_effect_is_tested_against_the_points():
    """Random point effects and no network effect: ~5% false positives (was 99.8%)."""
    rng = np.random.default_rng(3)
    p = [analysis.variance_components(fabricate(rng, point_sd=1.0), n_boot=0).iloc[0]["p_network"]
         for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


@pytest.mark.slow
def test_point_effect_is_tested_against_the_seeds():
    rng = np.random.default_rng(4)
    p = [analysis.variance_components(fabricate(rng, net_sd=1.0, seed_sd=0.3), n_boot=0).iloc[0]["p_point"]
         for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


def test_accuracy_correlation_is_exact_with_few_networks():
    rho, p = analysis.spearman_test(np.arange(5.0), np.array([0, 1, 2, 4, 3.0]))
    assert rho == pytest.approx(0.9) and p == pytest.approx(10 / 120)  # scipy's asymptotic p: 0.037
    rng = np.random.default_rng(5)
    p = [analysis.spearman_test(rng.normal(size=5), rng.normal(size=5))[1] for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


@pytest.mark.slow
def test_pretraining_across_networks_has_no_excess_false_positives():
    rng = np.random.default_rng(6)
    p = [analysis.pretrained_vs_random(fabricate(rng, networks=5, weights=("imagenet", "random"),
                                                 pretraining_sd=0.5)).iloc[0]["p"] for _ in range(TABLES)]
    assert rate(x < 0.05 for x in p) <= 0.07


@pytest.mark.slow
def test_findings_make_no_claim_on_pure_noise():
    """Every question of one book on pure noise (6 networks, ImageNet and random weights, 3
    seeds; 200 books): at least one claim in <= 7% of them (was 18-22% without a correction)."""
    rng = np.random.default_rng(7)
    any_claim = []
    for _ in range(200):
        frame = fabricate(rng, networks=6, weights=("imagenet", "random"))
        claims = analysis.claims(frame, analysis.seed_summary(frame), n_boot=20)
        assert set(claims["question"]) == {"network", "point", "point vs network", "depth", "accuracy", "pretraining"}
        any_claim.append(claims["claim"].any())
    assert rate(any_claim) <= 0.07


# --------------------------------------------------------------------------- coverage and recovery


@pytest.mark.slow
def test_intervals_over_five_networks_cover_the_truth():
    """t-intervals over networks: >= 92% coverage with 5 networks (percentile bootstraps over
    networks covered 84-86%)."""
    rng = np.random.default_rng(8)
    covered = []
    for _ in range(TABLES):
        out = analysis.pretrained_vs_random(fabricate(rng, networks=5, weights=("imagenet", "random"),
                                                      pretraining=0.3, pretraining_sd=0.5)).iloc[0]
        covered.append(out["ci_low"] <= 0.3 <= out["ci_high"])
    assert rate(covered) >= 0.92


@pytest.mark.slow
def test_depth_intervals_over_five_networks_cover_the_share_of_networks():
    """The share of networks whose later points score better: an exact interval over 5
    networks covers the share in the population of networks (a t-interval of the mean
    correlation covered 89%: with 4 points the correlations pile up at +-1)."""
    rng = np.random.default_rng(9)

    def network_rhos(n):  # each network's depth effect varies; its points add noise
        frame = fabricate(rng, networks=n, depth=0.0, point_sd=0.5, seeds=1, net_sd=0.0)
        slopes = rng.normal(0.5, 1.0, n)
        frame["score"] += slopes[frame["network"].str[3:].astype(int)] * frame["depth"]
        return frame

    truth = analysis.depth_within_networks(analysis.seed_summary(network_rhos(2000))).iloc[0]["share"]
    covered = []
    for _ in range(TABLES):
        out = analysis.depth_within_networks(analysis.seed_summary(network_rhos(5))).iloc[0]
        covered.append(out["share_low"] <= truth <= out["share_high"])
    assert rate(covered) >= 0.92


def test_variance_components_are_recovered_with_fourteen_networks():
    rng = np.random.default_rng(10)
    truth = {"var_network": 1.0, "var_point": 0.5, "var_seed": 0.04}
    est = pd.DataFrame([analysis.variance_components(fabricate(rng, networks=14, net_sd=1.0, point_sd=0.5 ** 0.5,
                                                               seed_sd=0.2), n_boot=0).iloc[0]
                        for _ in range(200)])
    for name, value in truth.items():
        assert est[name].mean() == pytest.approx(value, rel=0.10), name


def test_the_ratio_interval_judges_point_against_network():
    rng = np.random.default_rng(11)
    frame = fabricate(rng, networks=14, net_sd=0.2, point_sd=1.0)
    out = analysis.variance_components(frame, n_boot=500).iloc[0]
    assert out["ratio_low"] > 1  # the point matters more than the network, and the interval says so
    claims = analysis.claims(frame, analysis.seed_summary(frame), n_boot=500).set_index("question")
    assert claims.loc["point vs network", "claim"]
    line = narrative.answer(claims.reset_index().set_index("question").loc["point vs network"].to_dict()
                            | {"question": "point vs network"}, get_benchmark(BENCH))
    assert "the point matters more than the architecture" in line


# --------------------------------------------------------------------------- what is said


def test_findings_speak_to_convention_a_with_five_or_more_networks():
    rng = np.random.default_rng(12)
    tracks = fabricate(rng, networks=8, net_sd=0.0, top1=np.arange(8) + 70.0)
    tracks["score"] += tracks["top1"] - 70  # top-1 tracks the score perfectly
    lines = narrative.findings(analysis.claims(tracks, analysis.seed_summary(tracks), n_boot=50),
                               analysis.seed_summary(tracks), tracks.assign(dataset="cifar10", budget="offline"))
    assert any("networks with higher ImageNet top-1 make better loss networks" in line for line in lines)
    noise = fabricate(rng, networks=8)
    lines = narrative.findings(analysis.claims(noise, analysis.seed_summary(noise), n_boot=50),
                               analysis.seed_summary(noise), noise.assign(dataset="cifar10", budget="offline"))
    assert any("no evidence that ImageNet accuracy predicts the score" in line for line in lines)
    assert any("no evidence that later points score better or worse" in line for line in lines)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = pd.Series([0.01, 0.04, np.nan, 0.03, 0.2, 0.001])
    ours = analysis.holm(p)
    theirs = multipletests(p.dropna(), method="holm")[1]
    assert np.isnan(ours[2]) and np.allclose(ours.dropna().to_numpy(), theirs)


def test_missing_cells_and_nan_scores_are_named_and_left_out():
    frame = fabricate(np.random.default_rng(13), networks=3, point_sd=1.0)
    frame.loc[(frame["network"] == "net1") & (frame["alias"] == "p2") & (frame["seed"] == 0), "score"] = np.nan
    frame = frame[~((frame["network"] == "net2") & (frame["alias"] == "p0") & (frame["seed"] == 2))]
    said = analysis.exclusions(frame)
    assert any("net1 (imagenet) p2, seed 0 has no finite score" in line for line in said)
    assert any("net2 (imagenet) p0 has 2 of 3 seeds" in line for line in said)
    out = analysis.variance_components(frame, n_boot=0).iloc[0]
    assert out["points"] == 10 and out["seeds"] == 3  # the two incomplete loss networks are out
    summary = analysis.seed_summary(frame).set_index(["network", "alias"])
    assert summary.loc[("net1", "p2"), "n_seeds"] == 2 and np.isfinite(summary["score"]).all()  # NaN is no seed


# --------------------------------------------------------------------------- ranking gate


@pytest.mark.parametrize("networks,points,seeds", [(4, 4, 2), (2, 4, 3), (2, 3, 2)])
@pytest.mark.slow
def test_the_ranking_gate_rarely_opens_on_pure_seed_noise(networks, points, seeds):
    """No true differences between loss networks (16, 8 or 6 of them; 2-3 seeds): a benchmark
    is ranked in at most ~5% of tables (the gate needs the critical value below 12 loss networks)."""
    rng = np.random.default_rng(networks * 10 + points + seeds)
    opened = [analysis.seed_agreement(fabricate(rng, networks, points, seeds)).iloc[0]["ranks"] for _ in range(TABLES)]
    assert rate(opened) <= 0.06


@pytest.mark.slow
def test_the_ranking_gate_opens_when_loss_networks_differ_beyond_the_seed_noise():
    rng = np.random.default_rng(11)
    opened = [analysis.seed_agreement(fabricate(rng, 4, 4, 2, net_sd=0.3, point_sd=0.3)).iloc[0]["ranks"]
              for _ in range(TABLES)]
    assert rate(opened) >= 0.95
    one_seed = analysis.seed_agreement(fabricate(rng, 4, 4, 1, net_sd=0.3)).iloc[0]
    assert not one_seed["ranks"] and np.isnan(one_seed["spearman"])  # agreement unknown: no ranking


def test_ranks_leave_out_benchmarks_without_seed_agreement():
    rng = np.random.default_rng(12)
    agreeing = fabricate(rng, 4, 4, 2, net_sd=0.3, point_sd=0.3)
    noise = fabricate(rng, 4, 4, 2).assign(benchmark="super_resolution")
    frame = pd.concat([agreeing, noise], ignore_index=True)
    assert analysis.ranked_benchmarks(frame) == [BENCH]
    ranked = analysis.ranks(analysis.seed_summary(frame), benchmarks=analysis.ranked_benchmarks(frame))
    assert list(ranked.columns) == ["network", BENCH, "average_rank"]
    sentence = narrative.no_ranking(analysis.seed_agreement(frame), "super_resolution")
    assert sentence.startswith("**No ranking") and narrative.no_ranking(analysis.seed_agreement(frame), BENCH) is None


def _fine_tuning_check_fails(rng, shift_sd: float, reps: int = 300) -> float:
    """How often the segmentation baseline's fine-tuning check fails over ``reps`` fabricated
    2-seed runs: per seed a warm-start validation and 6 fine-tuning validations, i.i.d. normal
    (SD 0.01), the fine-tuning's level shifted by ``shift_sd`` SDs."""
    from dpllib.benchmarks import segmentation
    from dpllib.training.points import validation_rows

    fails = 0
    for _ in range(reps):
        rows = []
        for seed in (0, 1):
            curve = [0.2 + 0.01 * rng.standard_normal(), *(0.2 + 0.01 * (shift_sd + rng.standard_normal(6)))]
            rows += [{**r, "seed": seed, "status": "ok", "network": "baseline"}
                     for r in validation_rows([[10 * i, v] for i, v in enumerate(curve)], None, "baseline")]
        [check] = [c for c in segmentation.learning_checks(pd.DataFrame(rows), pd.DataFrame()) if "fine-tuning" in c.check]
        fails += not check.met
    return fails / reps


@pytest.mark.slow
def test_the_fine_tuning_check_false_alarm_rate_and_power():
    """Without any change the check fails when a seed's z = (mean of 6 - warm start) / SD of
    the 6 falls below -2: z = sqrt(7/6) t(5), P = 0.062 per seed, 0.119 for the worse of two
    seeds (pinned: the check's known false-alarm rate). A fall of the fine-tuning's level by 3
    validation SDs fails it in ~96% of runs."""
    rng = np.random.default_rng(0)
    assert 0.07 <= _fine_tuning_check_fails(rng, 0.0) <= 0.17
    assert _fine_tuning_check_fails(rng, -3.0) >= 0.9


def _training_table(rng, n_each: int, effect: float, bench: str = BENCH) -> tuple[pd.DataFrame, dict]:
    """One best point per network: n_each supervised and n_each self-supervised networks, scores
    N(0, 1) plus ``effect`` for the self-supervised ones."""
    rows, trainings = [], {}
    for i in range(2 * n_each):
        name = f"net{i}"
        trainings[name] = "supervised ImageNet-1k" if i < n_each else "self-supervised (DINO)"
        rows.append({"benchmark": bench, "network": name, "weights": "imagenet", "alias": "p4", "study_index": 4,
                     "depth": 1.0, "score": rng.standard_normal() + (effect if i >= n_each else 0.0)})
    return pd.DataFrame(rows), trainings


@pytest.mark.slow
def test_training_comparison_holds_its_false_positive_rate():
    """No difference between the kinds of training: the permutation test over networks rejects
    at about its level (exact: every split of 6 + 6 networks)."""
    rng = np.random.default_rng(21)
    rejected = [analysis.training_comparison(*_training_table(rng, 6, 0.0)).iloc[0]["p"] < 0.05 for _ in range(200)]
    assert 0.015 <= rate(rejected) <= 0.095  # 0.05 +- 3 standard errors of 200 tables


@pytest.mark.slow
def test_training_comparison_recovers_a_known_effect():
    """Self-supervised networks 2 SD better: the estimate is unbiased and the test finds it (a
    t-test's power is 0.92 for 6 + 6 units)."""
    rng = np.random.default_rng(22)
    out = [analysis.training_comparison(*_training_table(rng, 6, 2.0)).iloc[0] for _ in range(200)]
    assert np.mean([o["difference"] for o in out]) == pytest.approx(2.0, abs=0.15)
    assert rate([o["p"] < 0.05 for o in out]) >= 0.8
    lower = analysis.training_comparison(*_training_table(rng, 6, 1.5, bench="super_resolution"))
    assert lower.iloc[0]["difference"] > 0  # signed so that positive is better, whatever the metric's direction
    only = analysis.training_comparison(_training_table(rng, 3, 0.0)[0], {})
    assert only.iloc[0]["note"] == "only one kind of training ran: nothing to compare"
