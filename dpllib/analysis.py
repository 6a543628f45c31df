"""The statistics the book's chapters call: pure functions on tables, each testable on a table
with a known answer. (The sentences and tables the book makes of them: :mod:`dpllib.narrative`.)

Input: the tidy table of :func:`dpllib.results.table` (and the references of
:func:`dpllib.results.references`). A *loss network* is (network, weights, point); a
benchmark's score and its direction (higher or lower is better) come from its descriptor
(:mod:`dpllib.benchmark`). The design: points are nested in networks, seeds replicate each
cell; so intervals come from seeds (within a network) or from a bootstrap over networks (across
networks, only with at least ``MIN_NETWORKS`` of them).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .config import BASELINE
from .errors import DplError
from .registry import Check, get_benchmark

KEYS = ["benchmark", "network", "weights", "pretrained", "family", "top1", "has_batchnorm", "point",
        "alias", "study_index", "depth", "yours"]
MIN_NETWORKS = 5  # fewer networks: no interval or p-value across networks
EXACT_BELOW = 10  # fewer networks: exact permutation p-values for rank correlations
MIN_CLUSTERS = 10  # fewer networks: no cluster-robust errors
# A benchmark ranks its loss networks only when two seeds order them alike at least this well
# (mean Spearman over pairs of seeds): a correlation whose square, the share of rank variance two
# seeds share, is at least a quarter. Below 12 loss networks the one-sided 5% critical value of no
# agreement is higher (0.55 for 10, 0.90 for 4; t approximation) and is required instead.
RANKING_AGREEMENT = 0.5
LEVEL = 0.95


# --------------------------------------------------------------------------- scores and seeds


def _marked(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``yours`` column (False where it had none: nothing is the user's)."""
    return frame if "yours" in frame else frame.assign(yours=False)


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark, loss network (network, weights, point) and seed with its primary
    ``score`` (its descriptor's ``primary`` metric). Failed cells are left out."""
    ok = _marked(table[table["status"] == "ok"])
    several = ok.groupby("benchmark")["dataset"].nunique() if "dataset" in ok else pd.Series(dtype=int)
    if (several > 1).any():
        raise DplError(f"{', '.join(several[several > 1].index)} ran on several data sets, whose scores are not "
                       "comparable: analyse one at a time (Run.on_datasets({benchmark: data set}))")
    parts = []
    for bench in ok["benchmark"].dropna().unique():
        primary = get_benchmark(bench).primary
        sub = ok[(ok["benchmark"] == bench) & (ok["metric"] == primary.metric) & (ok["split"].isin(primary.splits))]
        if sub.empty:
            continue
        g = sub.groupby(KEYS + ["seed"], dropna=False)["value"].mean().reset_index()
        parts.append(g.rename(columns={"value": "score"}))
    if not parts:
        return pd.DataFrame(columns=KEYS + ["seed", "score"])
    return pd.concat(parts, ignore_index=True)


def seed_summary(score_frame: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Mean over seeds with a t-interval (NaN bounds with one seed) per loss network; a score that
    is not a finite number is no seed (:func:`exclusions` names it), and a loss network without
    any is left out."""
    columns = KEYS + ["score", "n_seeds", "ci_low", "ci_high", "seeds"]
    marked = _marked(score_frame)
    values = marked["score"].to_numpy(float)
    finite = np.isfinite(values)
    if not finite.any():
        return pd.DataFrame(columns=columns)
    grouped = marked[finite].groupby(KEYS, dropna=False)
    ids = grouped.ngroup().to_numpy()
    order = np.argsort(ids, kind="stable")  # each loss network's seeds together, in the table's order
    seeds = np.split(values[finite][order], np.flatnonzero(np.diff(ids[order])) + 1)
    t = {n: stats.t.ppf(0.5 + level / 2, n - 1) for n in {len(v) for v in seeds} if n > 1}
    rows = []
    for key, v in zip(grouped.size().index, seeds):
        mean = float(v.mean())
        half = t[len(v)] * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
        rows.append({**dict(zip(KEYS, key)), "score": mean, "n_seeds": len(v), "ci_low": mean - half,
                     "ci_high": mean + half, "seeds": ", ".join(f"{x:.3g}" for x in v)})
    return pd.DataFrame(rows, columns=columns)


def direction(benchmark: str) -> int:
    """+1 where a higher score is better, -1 where lower is."""
    return 1 if get_benchmark(benchmark).primary.higher_is_better else -1


def loss_networks(frame: pd.DataFrame, weights: str | None = "imagenet", yours: bool = False) -> pd.DataFrame:
    """Rows of the preset's real loss networks (no baseline), optionally of one weights kind;
    with ``yours``, also the user's networks (``dpl evaluate``, any weights). The statistics
    never see the user's networks: a run's conclusions do not change with them."""
    out = frame[frame["network"] != BASELINE]
    mine = out["yours"].eq(True) if "yours" in out else pd.Series(False, index=out.index)
    keep = ~mine if weights is None else ~mine & (out["weights"] == weights)
    return out[keep | mine] if yours else out[keep]


def _item(frame: pd.DataFrame) -> pd.Series:
    return frame["network"].astype(str) + "|" + frame["weights"].astype(str) + "|" + frame["alias"].astype(str)


def seed_agreement(score_frame: pd.DataFrame, threshold: float = RANKING_AGREEMENT) -> pd.DataFrame:
    """Per benchmark: how well seeds agree on the loss networks' scores (all weights, no
    baseline): the mean Spearman correlation over pairs of seeds, Kendall's W (corrected for
    ties), the Spearman ``required`` (``threshold``, or the one-sided 5% critical value of no
    agreement for this many loss networks when higher: t approximation) and ``ranks``: whether it
    is reached (False when it cannot be measured: one seed or fewer than 3 loss networks)."""
    rows = []
    for bench, sub in loss_networks(score_frame, None).groupby("benchmark"):
        wide = sub.assign(item=_item(sub)).pivot_table(index="item", columns="seed", values="score").dropna()
        n, m = wide.shape
        if m < 2 or n < 3:
            rows.append({"benchmark": bench, "seeds": m, "loss_networks": n, "spearman": np.nan, "kendall_w": np.nan})
            continue
        pairs = [stats.spearmanr(wide.iloc[:, i], wide.iloc[:, j])[0] for i in range(m) for j in range(i + 1, m)]
        ranks = wide.rank(axis=0).to_numpy()
        s = ((ranks.sum(axis=1) - m * (n + 1) / 2) ** 2).sum()
        ties = sum((c**3 - c).sum() for col in wide for c in [wide[col].value_counts().to_numpy()])
        rows.append({"benchmark": bench, "seeds": m, "loss_networks": n, "spearman": float(np.nanmean(pairs)),
                     "kendall_w": float(12 * s / (m**2 * (n**3 - n) - m * ties))})
    out = pd.DataFrame(rows, columns=["benchmark", "seeds", "loss_networks", "spearman", "kendall_w"])
    df = np.maximum(out["loss_networks"].to_numpy(float) - 2, 1)
    t = stats.t.ppf(0.95, df)
    out["required"] = np.maximum(threshold, t / np.sqrt(df + t**2))
    out["ranks"] = out["spearman"].fillna(-np.inf) >= out["required"]
    return out


def ranked_benchmarks(score_frame: pd.DataFrame, threshold: float = RANKING_AGREEMENT) -> list[str]:
    """The benchmarks whose seeds agree on the loss networks' order (:func:`seed_agreement`)."""
    agreement = seed_agreement(score_frame, threshold)
    return agreement.loc[agreement["ranks"], "benchmark"].tolist()


def seed_noise(score_frame: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per benchmark: the pooled seed-to-seed standard deviation of a loss network's score and
    the smallest difference of two seed means that exceeds it (least significant difference,
    t-based). NaN with one seed."""
    rows = []
    for bench, sub in loss_networks(score_frame, None).groupby("benchmark"):
        groups = [g["score"].to_numpy(float) for _, g in sub.groupby(_item(sub))]
        groups = [g for g in groups if len(g) > 1]
        if not groups:
            rows.append({"benchmark": bench, "seed_sd": np.nan, "lsd": np.nan})
            continue
        df = sum(len(g) - 1 for g in groups)
        sd = np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / df)
        n = np.mean([len(g) for g in groups])
        rows.append({"benchmark": bench, "seed_sd": float(sd),
                     "lsd": float(stats.t.ppf(0.5 + level / 2, df) * sd * np.sqrt(2 / n))})
    return pd.DataFrame(rows, columns=["benchmark", "seed_sd", "lsd"])


def mark_within_noise(summary: pd.DataFrame, noise: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``within_noise_of_best``: True where a loss network's mean is closer
    to its benchmark's best loss network (in the metric's direction) than the least significant
    difference."""
    out = summary.copy()
    out["within_noise_of_best"] = False
    lsd = dict(zip(noise["benchmark"], noise["lsd"]))
    for bench, sub in loss_networks(out, None, yours=True).groupby("benchmark"):
        if np.isfinite(lsd.get(bench, np.nan)):
            signed = direction(bench) * sub["score"]
            out.loc[sub.index, "within_noise_of_best"] = signed.max() - signed < lsd[bench]
    return out


def heatmap_frame(summary: pd.DataFrame, benchmark: str, weights: str = "imagenet", yours: bool = False) -> pd.DataFrame:
    """network x point (study index 1-4, alias) scores of one benchmark (with ``yours``, the
    user's networks too; points not of the study's 4 are numbered by depth)."""
    sub = loss_networks(summary, weights, yours)
    sub = sub[sub["benchmark"] == benchmark].copy()
    order = sub.groupby("network")["depth"].rank(method="first")
    sub["study_index"] = sub["study_index"].fillna(order) if len(sub) else sub["study_index"]
    cols = ["network", "alias", "study_index", "depth", "score", "ci_low", "ci_high", "n_seeds", "yours"]
    if "within_noise_of_best" in sub:
        cols.append("within_noise_of_best")
    return sub[[c for c in cols if c in sub]]


def best_points(summary: pd.DataFrame, weights: str = "imagenet", yours: bool = False) -> pd.DataFrame:
    """The best point of each network in each benchmark (in the metric's direction; with
    ``yours``, of the user's networks too)."""
    sub = loss_networks(summary, weights, yours)
    signed = sub["score"] * sub["benchmark"].map(direction)
    idx = signed.groupby([sub["benchmark"], sub["network"], sub["weights"]]).idxmax()
    cols = ["benchmark", "network", "weights", "alias", "study_index", "depth", "score", "yours"]
    return sub.loc[idx, [c for c in cols if c in sub]].reset_index(drop=True)


def ranks(summary: pd.DataFrame, weights: str = "imagenet", benchmarks: list[str] | None = None,
          yours: bool = False) -> pd.DataFrame:
    """Architecture ranks (1 = best) per benchmark by each network's best point, and the
    average rank over benchmarks (the study's ranking); only ``benchmarks`` when given (those
    whose seeds agree on an order: :func:`ranked_benchmarks`); with ``yours``, the user's
    networks ranked among them (a ``yours`` column marks them)."""
    best = best_points(summary, weights, yours)
    if benchmarks is not None:
        best = best[best["benchmark"].isin(benchmarks)]
    if best.empty:
        return pd.DataFrame(columns=["network", "average_rank"])
    signed = best["score"] * best["benchmark"].map(direction)
    best["rank"] = signed.groupby(best["benchmark"]).rank(ascending=False, method="average")
    index = ["network"] + (["weights"] if best.duplicated(["benchmark", "network"]).any() else []) \
        + (["yours"] if yours else [])  # the user's network may share its name with one of the preset's
    wide = best.pivot(index=index, columns="benchmark", values="rank")
    wide["average_rank"] = wide.mean(axis=1)
    return wide.sort_values("average_rank").reset_index()


# --------------------------------------------------------------------------- the study's three questions
#
# The units are what each question is about: points (cell means over seeds) for "do later
# points score better" and for the point effect; networks for "does the network matter", for
# ImageNet accuracy and for pretraining across networks. A seed is never a replicate of a point
# or a network; seeds only measure the noise of a cell.


def cell_means(score_frame: pd.DataFrame, weights: str | None = "imagenet") -> pd.DataFrame:
    """One row per benchmark, loss network (network, weights, point): the mean score over its
    seeds (``n_seeds`` of them). Rows without a score are left out (see :func:`exclusions`)."""
    sub = loss_networks(score_frame, weights).dropna(subset=["score", "alias"])
    cols = ["benchmark", "network", "weights", "alias", "depth", "top1"]
    if sub.empty:
        return pd.DataFrame(columns=cols + ["score", "n_seeds"])
    return (sub.groupby(["benchmark", "network", "weights", "alias"], as_index=False, dropna=False)
            .agg(depth=("depth", "first"), top1=("top1", "first"), score=("score", "mean"), n_seeds=("seed", "nunique")))


def exclusions(score_frame: pd.DataFrame, table: pd.DataFrame | None = None) -> list[str]:
    """What the statistics leave out, named: failed cells, scores that are not numbers, and loss
    networks with fewer seeds than the others of their benchmark."""
    out = []
    if table is not None and "status" in table:
        failed = table[table["status"] != "ok"].drop_duplicates("cell_id") if "cell_id" in table else table[
            table["status"] != "ok"]
        out += [f"{r.benchmark}: the cell {r.network} ({r.weights}), seed {r.seed} failed and is left out"
                for r in failed.itertuples()]
    bad = score_frame[~np.isfinite(score_frame["score"].astype(float))]
    out += [f"{r.benchmark}: {r.network} ({r.weights}) {r.alias}, seed {r.seed} has no finite score and is left out"
            for r in bad.itertuples()]
    counts = loss_networks(score_frame, None).dropna(subset=["score"]).groupby(
        ["benchmark", "network", "weights", "alias"], dropna=False)["seed"].nunique()
    for bench, per in counts.groupby(level=0):
        full = per.max()
        out += [f"{bench}: {n} ({w}) {a} has {k} of {full} seeds" + ("; the variance components leave it out"
                                                                     if w == "imagenet" else "")
                for (_, n, w, a), k in per[per < full].items()]
    return out


def _t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p of mean = 0) of a t-interval over ``values`` (the units)."""
    n = len(values)
    mean = float(np.mean(values)) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan, np.nan
    se = float(np.std(values, ddof=1)) / np.sqrt(n)
    if se == 0:
        return mean, mean, mean, np.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return mean, mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / se, n - 1))


def depth_within_networks(summary: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Convention (b) network by network, per benchmark: each network's Spearman correlation of
    its points' relative depth and score (3 or more points), their mean (descriptive), and in
    how many networks later points score better (in the metric's direction), with an exact
    (Clopper-Pearson) interval of that share and an exact sign test of a share of one half: the
    network is the unit, and the interval holds its level with any number of networks."""
    cols = ["benchmark", "networks", "mean_rho", "later_better_in", "share", "share_low", "share_high", "p_sign",
            "per_network"]
    rows = []
    for bench, sub in loss_networks(summary, weights).groupby("benchmark"):
        rhos = {}
        for network, g in sub.dropna(subset=["depth", "score"]).groupby("network"):
            if g["depth"].nunique() > 2 and g["score"].nunique() > 1:
                rhos[network] = float(stats.spearmanr(g["depth"], g["score"])[0])
        values = np.array(list(rhos.values())) * direction(bench)
        n, better = len(values), int((values > 0).sum())
        lo = hi = p = np.nan
        if n:
            ci = stats.binomtest(better, n).proportion_ci(LEVEL, method="exact")
            lo, hi = ci.low, ci.high
            decided = int((values != 0).sum())
            p = stats.binomtest(better, decided).pvalue if decided else np.nan
        rows.append({"benchmark": bench, "networks": n, "mean_rho": float(values.mean() * direction(bench)) if n else np.nan,
                     "later_better_in": better, "share": better / n if n else np.nan, "share_low": lo,
                     "share_high": hi, "p_sign": p,
                     "per_network": ", ".join(f"{k} {v:+.2f}" for k, v in rhos.items())})
    return pd.DataFrame(rows, columns=cols)


def depth_slope(score_frame: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Convention (b), per benchmark: the change of the score (in the benchmark's units) per unit
    of relative depth within networks, fitted to the points' means over seeds (the point is the
    unit: score ~ depth + network), with a t-interval and p-value on points - networks - 1
    degrees of freedom. It speaks for the networks run."""
    cols = ["benchmark", "slope", "ci_low", "ci_high", "p", "networks", "points"]
    rows = []
    for bench, sub in cell_means(score_frame, weights).dropna(subset=["depth"]).groupby("benchmark"):
        nets, points = sub["network"].nunique(), len(sub)
        y = sub["score"].to_numpy(float) - sub.groupby("network")["score"].transform("mean").to_numpy(float)
        d = sub["depth"].to_numpy(float) - sub.groupby("network")["depth"].transform("mean").to_numpy(float)
        df = points - nets - 1
        sxx = float((d**2).sum())
        if df < 1 or sxx == 0:
            rows.append(dict(zip(cols, [bench, np.nan, np.nan, np.nan, np.nan, nets, points])))
            continue
        slope = float((d * y).sum() / sxx)
        resid = y - slope * d
        s2 = float((resid**2).sum()) / df
        if s2 <= 1e-24 * float((y**2).sum() + 1e-300):  # the points lie on the line: nothing to test against
            rows.append(dict(zip(cols, [bench, slope, slope, slope, np.nan, nets, points])))
            continue
        se = np.sqrt(s2 / sxx)
        half = stats.t.ppf(0.5 + LEVEL / 2, df) * se
        rows.append(dict(zip(cols, [bench, slope, slope - half, slope + half,
                                    float(2 * stats.t.sf(abs(slope) / se, df)), nets, points])))
    return pd.DataFrame(rows, columns=cols)


@functools.cache
def _permutations(n: int) -> np.ndarray:
    """Every permutation of range(n) (n! x n), for exact tests with few networks."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def spearman_test(x: np.ndarray, y: np.ndarray, exact_below: int = EXACT_BELOW) -> tuple[float, float]:
    """Spearman's rho of ``x`` and ``y`` and its two-sided p-value: exact (every permutation)
    with fewer than ``exact_below`` pairs, else scipy's t approximation."""
    n = len(x)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return np.nan, np.nan
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if n >= exact_below:
        return rho, float(stats.spearmanr(x, y)[1])
    cx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())
    cy = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
    null = cy[_permutations(n)] @ cx
    return rho, float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def spearman_interval(rho: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """A Fisher-z interval for Spearman's rho with Bonett and Wright's (2000) variance
    (1 + rho^2 / 2) / (n - 3)."""
    if n <= 3 or not np.isfinite(rho):
        return np.nan, np.nan
    z = np.arctanh(np.clip(rho, -0.9999, 0.9999))
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt((1 + rho**2 / 2) / (n - 3))
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def accuracy_correlation(summary: pd.DataFrame, weights: str = "imagenet",
                         min_networks: int = MIN_NETWORKS) -> pd.DataFrame:
    """Convention (a), per benchmark and per summary of a network ('best' point in the metric's
    direction, 'mean' over points): the Spearman correlation of ImageNet top-1 and score, one
    value per network (n = networks), with a Fisher-z interval and an exact permutation p-value
    below 10 networks; neither with fewer than ``min_networks``."""
    rows = []
    for bench, sub in loss_networks(summary, weights).dropna(subset=["top1", "score"]).groupby("benchmark"):
        signed = sub.assign(signed=sub["score"] * direction(bench))
        per = signed.groupby("network").agg(top1=("top1", "first"), signed_best=("signed", "max"),
                                            mean=("score", "mean"))
        per["best"] = per["signed_best"] * direction(bench)
        for which in ("best", "mean"):
            n = len(per)
            rho, p = spearman_test(per["top1"].to_numpy(), per[which].to_numpy()) if n >= 3 else (np.nan, np.nan)
            lo = hi = np.nan
            if n >= min_networks:
                lo, hi = spearman_interval(rho, n)
            else:
                p = np.nan
            rows.append({"benchmark": bench, "network_score": which, "networks": n, "rho": rho, "ci_low": lo,
                         "ci_high": hi, "p": p})
    return pd.DataFrame(rows, columns=["benchmark", "network_score", "networks", "rho", "ci_low", "ci_high", "p"])


def _components(cell: np.ndarray, network: np.ndarray, ms_e: np.ndarray, n: int):
    """Method-of-moments variance components of a nested design from cell means ``cell``
    (... x cells), the cells' network index and the within-cell mean square ``ms_e`` (...):
    (var_network, var_point, ms_a, ms_w, k), vectorised over leading dimensions."""
    a = network.max() + 1
    b = np.bincount(network, minlength=a).astype(float)  # points per network
    cells = len(network)
    net_mean = (cell @ np.eye(a)[network]) / b
    grand = (b * net_mean).sum(-1) / cells
    ms_w = ((cell - net_mean[..., network]) ** 2).sum(-1) / (cells - a)
    ms_a = (b * (net_mean - grand[..., None]) ** 2).sum(-1) / (a - 1) if a > 1 else np.full(ms_w.shape, np.nan)
    k = (cells - (b**2).sum() / cells) / (a - 1) if a > 1 else np.nan
    var_point = np.maximum(0.0, ms_w - ms_e / n)
    var_network = np.maximum(0.0, (ms_a - ms_w) / k) if a > 1 else np.full(ms_w.shape, np.nan)
    return var_network, var_point, ms_a, ms_w, k


def variance_components(score_frame: pd.DataFrame, weights: str = "imagenet", n_boot: int = 1000,
                        seed: int = 0, level: float = LEVEL) -> pd.DataFrame:
    """Does the point matter as much as the architecture? Per benchmark, networks and points
    within them as random effects and seeds as the noise: each variance component (network,
    point within network, seed) estimated by the method of moments on the nested design (points
    per network may differ), with percentile intervals from a parametric bootstrap of
    ``n_boot`` runs, and the ratio point / network with its interval. ``p_network`` tests the
    network against the points within networks (networks are the units), ``p_point`` the
    points against the seed noise; neither where the seeds or points agree exactly (nothing to
    test against: a tolerance tied to the scores' scale). Loss networks with fewer seeds than
    the others are left out (:func:`exclusions` names them)."""
    cols = ["benchmark", "var_network", "var_network_low", "var_network_high", "var_point", "var_point_low",
            "var_point_high", "var_seed", "ratio", "ratio_low", "ratio_high", "p_network", "p_point", "networks",
            "points", "seeds"]
    rng = np.random.default_rng(seed)
    rows = []
    for bench, sub in loss_networks(score_frame, weights).dropna(subset=["alias", "score"]).groupby("benchmark"):
        seeds_per_cell = sub.groupby(["network", "alias"])["score"].transform("count")
        n = int(seeds_per_cell.max())
        sub = sub[seeds_per_cell == n]  # loss networks with missing seeds are left out
        means = sub.groupby(["network", "alias"], sort=True)["score"].mean()
        network = pd.factorize(means.index.get_level_values(0))[0]
        cell = means.to_numpy(float)
        a, cells = network.max() + 1, len(cell)
        scale = float((sub["score"].to_numpy(float) ** 2).sum()) + 1e-300
        resid = sub["score"].to_numpy(float) - sub.groupby(["network", "alias"])["score"].transform("mean").to_numpy()
        ss_e, df_e = float((resid**2).sum()), cells * (n - 1)
        if cells <= a:
            rows.append(dict(zip(cols, [bench] + [np.nan] * 12 + [a, cells, n])))
            continue
        ms_e = ss_e / df_e if df_e else np.nan
        seeds_agree = df_e == 0 or ss_e <= 1e-24 * scale
        var_net, var_point, ms_a, ms_w, _ = _components(cell, network, np.asarray(ms_e if not seeds_agree else 0.0), n)
        df_w = cells - a
        points_agree = ms_w * df_w <= 1e-24 * scale
        p_point = np.nan if seeds_agree or points_agree else float(stats.f.sf(n * ms_w / ms_e, df_w, df_e))
        p_network = np.nan if a < 2 or points_agree else float(stats.f.sf(ms_a / ms_w, a - 1, df_w))
        var_seed = 0.0 if seeds_agree else ms_e
        ratio = _ratio(var_point, var_net)
        bounds = [np.nan] * 6
        if n_boot and a > 1:
            sim = (rng.standard_normal((n_boot, a)) * np.sqrt(var_net))[:, network] \
                + rng.standard_normal((n_boot, cells)) * np.sqrt(var_point + var_seed / n)
            sim_e = var_seed * rng.chisquare(df_e, n_boot) / df_e if df_e else np.zeros(n_boot)
            b_net, b_point, *_ = _components(sim, network, sim_e, n)
            q = [(1 - level) / 2, (1 + level) / 2]
            ratios = _ratio(b_point, b_net)  # inf where only the point varies; NaN (neither) left out
            bounds = [*np.quantile(b_net, q), *np.quantile(b_point, q),
                      *(np.nanquantile(ratios, q, method="inverted_cdf") if (~np.isnan(ratios)).any()
                        else [np.nan, np.nan])]
        rows.append(dict(zip(cols, [bench, float(var_net), *bounds[:2], float(var_point), *bounds[2:4], var_seed,
                                    float(ratio), *bounds[4:], p_network, p_point, a, cells, n])))
    return pd.DataFrame(rows, columns=cols)


def _ratio(point, network):
    """point / network variance: inf where only the point varies, NaN where neither does."""
    point, network = np.asarray(point, float), np.asarray(network, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(network > 0, point / np.where(network > 0, network, 1.0), np.where(point > 0, np.inf, np.nan))
    return out


def pretrained_vs_random(score_frame: pd.DataFrame, min_networks: int = MIN_NETWORKS) -> pd.DataFrame:
    """ImageNet minus random weights, paired by benchmark, network, point and seed. Per
    benchmark: the mean difference, with a t-interval and p-value over networks (each network's
    mean difference is one unit) with ``min_networks`` or more; with fewer, over seeds of the
    mean difference of the networks run (it then speaks only for them, and says so)."""
    lossnets = loss_networks(score_frame, None)
    wide = lossnets.pivot_table(index=["benchmark", "network", "alias", "seed"], columns="weights", values="score")
    cols = ["benchmark", "networks", "pairs", "mean_difference", "ci_low", "ci_high", "p", "interval",
            "pretrained_wins"]
    if "imagenet" not in wide or "random" not in wide:
        return pd.DataFrame(columns=cols)
    diff = (wide["imagenet"] - wide["random"]).dropna().rename("difference").reset_index()
    rows = []
    for bench, g in diff.groupby("benchmark"):
        signed = g["difference"] * direction(bench)  # > 0: ImageNet better
        per_network = signed.groupby(g["network"]).mean().to_numpy()
        per_seed = signed.groupby(g["seed"]).mean().to_numpy()
        if len(per_network) >= min_networks:
            mean, lo, hi, p = _t_interval(per_network)
            kind = f"t over {len(per_network)} networks"
        elif len(per_seed) > 1:
            mean, lo, hi, p = _t_interval(per_seed)
            kind = f"t over {len(per_seed)} seeds; these {len(per_network)} network(s) only"
        else:
            mean, lo, hi, p, kind = float(signed.mean()), np.nan, np.nan, np.nan, "none (one seed)"
        sign = direction(bench)
        lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
        rows.append({"benchmark": bench, "networks": len(per_network), "pairs": len(g), "mean_difference": mean * sign,
                     "ci_low": lo, "ci_high": hi, "p": p, "interval": kind,
                     "pretrained_wins": float((signed > 0).mean())})
    return pd.DataFrame(rows, columns=cols)


SUPERVISED = "supervised"  # training kinds starting so are ImageNet classifiers (networks.NetworkInfo.training)


def permutation_difference(a: np.ndarray, b: np.ndarray, n_perm: int = 10_000,
                           rng: np.random.Generator | None = None) -> tuple[float, float]:
    """mean(b) - mean(a) and its two-sided permutation p-value (labels shuffled over the pooled
    units; every split of them when there are at most ``n_perm``, else ``n_perm`` random ones)."""
    pooled = np.concatenate([a, b])
    observed = float(b.mean() - a.mean())
    n, k = len(pooled), len(b)
    if math.comb(n, k) <= n_perm:
        splits = np.array([np.isin(np.arange(n), c) for c in itertools.combinations(range(n), k)])
    else:
        rng = rng or np.random.default_rng(0)
        splits = np.array([np.isin(np.arange(n), rng.choice(n, k, replace=False)) for _ in range(n_perm)])
    sums = splits @ pooled
    null = sums / k - (pooled.sum() - sums) / (n - k)
    return observed, float(np.mean(np.abs(null) >= abs(observed) - 1e-12))


def training_comparison(summary: pd.DataFrame, trainings: dict[str, str], min_each: int = 2) -> pd.DataFrame:
    """Do backbones trained otherwise (self-supervised, image-text, masked image modelling) make
    better losses than supervised ImageNet classifiers? Per benchmark, each network's best point
    (ImageNet-tag weights) is one unit, grouped by ``trainings`` ({network: what its weights
    learned from}); the difference of the groups' means, signed so that positive means the others
    are better (in the metric's units), with a permutation p-value over networks, where each group has
    ``min_each`` networks or more (else an estimate only, and the note says so)."""
    cols = ["benchmark", "supervised", "other", "other_kinds", "difference", "p", "note"]
    rows = []
    for bench, best in best_points(summary).groupby("benchmark"):
        kind = best["network"].map(trainings).fillna(SUPERVISED + " (unknown)")
        signed = best["score"].to_numpy(float) * direction(bench)
        mine = ~kind.str.startswith(SUPERVISED).to_numpy()
        a, b = signed[~mine], signed[mine]
        others = ", ".join(sorted(set(kind[mine])))
        if len(a) < 1 or len(b) < 1:
            rows.append({"benchmark": bench, "supervised": len(a), "other": len(b), "other_kinds": others,
                         "difference": np.nan, "p": np.nan, "note": "only one kind of training ran: nothing to compare"})
            continue
        diff, p = permutation_difference(a, b)
        note = "permutation over networks" if min(len(a), len(b)) >= min_each else \
            f"estimate only: fewer than {min_each} networks in a group"
        rows.append({"benchmark": bench, "supervised": len(a), "other": len(b), "other_kinds": others,
                     "difference": diff, "p": p if min(len(a), len(b)) >= min_each else np.nan, "note": note})
    return pd.DataFrame(rows, columns=cols)


def holm(p: pd.Series) -> pd.Series:
    """Holm's step-down adjustment of ``p`` (NaN stay NaN): the family-wise error stays at the
    level over every p-value given."""
    valid = p.dropna().sort_values()
    m = len(valid)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * valid.to_numpy()))
    return pd.Series(adjusted, index=valid.index).reindex(p.index)


def claims(score_frame: pd.DataFrame, summary: pd.DataFrame, n_boot: int = 1000,
           components: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every answer this run gives to the study's three questions, per benchmark, as one table:
    question, estimate with interval, p-value, Holm-adjusted p over all rows (one family per
    book) and whether it is a claim at the 5% level. Rows without a p-value are estimates
    only (too few networks, points or seeds: the ``note`` says which). ``components``: the
    :func:`variance_components` of ``score_frame`` when already computed (else computed here)."""
    rows = []
    if components is None:
        components = variance_components(score_frame, n_boot=n_boot)
    for r in components.itertuples():
        base = {"benchmark": r.benchmark, "networks": r.networks, "points": r.points, "seeds": r.seeds}
        rows.append({**base, "question": "network", "estimate": r.var_network, "ci_low": r.var_network_low,
                     "ci_high": r.var_network_high, "p": r.p_network})
        rows.append({**base, "question": "point", "estimate": r.var_point, "ci_low": r.var_point_low,
                     "ci_high": r.var_point_high, "p": r.p_point})
        rows.append({**base, "question": "point vs network", "estimate": r.ratio, "ci_low": r.ratio_low,
                     "ci_high": r.ratio_high, "p": np.nan})
    for r in depth_slope(score_frame).itertuples():
        rows.append({"benchmark": r.benchmark, "networks": r.networks, "points": r.points, "question": "depth",
                     "estimate": r.slope, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p})
    acc = accuracy_correlation(summary)
    for r in acc[acc["network_score"] == "best"].itertuples():
        rows.append({"benchmark": r.benchmark, "networks": r.networks, "question": "accuracy", "estimate": r.rho,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p})
    for r in pretrained_vs_random(score_frame).itertuples():
        rows.append({"benchmark": r.benchmark, "networks": r.networks, "question": "pretraining",
                     "estimate": r.mean_difference, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p,
                     "interval": r.interval})
    out = pd.DataFrame(rows, columns=["benchmark", "question", "estimate", "ci_low", "ci_high", "p", "networks",
                                      "points", "seeds", "interval"])
    out["p_holm"] = holm(out["p"])
    out["claim"] = out["p_holm"] < 1 - LEVEL
    # point vs network: a claim only where the interval of the ratio excludes 1 and the point
    # effect itself holds after the correction
    point_holds = out[out["question"] == "point"].set_index("benchmark")["claim"]
    ratio = out["question"] == "point vs network"
    out.loc[ratio, "claim"] = [bool(point_holds.get(b, False)) and (lo > 1 or hi < 1)
                               for b, lo, hi in zip(out.loc[ratio, "benchmark"], out.loc[ratio, "ci_low"],
                                                    out.loc[ratio, "ci_high"])]
    return out


def mixed_model(summary: pd.DataFrame, weights: str = "imagenet",
                min_clusters: int = MIN_CLUSTERS) -> tuple[pd.DataFrame, str]:
    """Across benchmarks: the score standardised within each benchmark ~ benchmark-specific
    depth slopes + ImageNet top-1 + batch norm (constant predictors dropped), networks as a
    random intercept (statsmodels MixedLM). With fewer than ``min_clusters`` networks no
    cluster-robust errors are used, and where MixedLM cannot be fitted, plain OLS is; the note
    says which model was fitted and why."""
    import statsmodels.formula.api as smf

    cols = ["term", "estimate", "ci_low", "ci_high", "p"]
    sub = loss_networks(summary, weights).dropna(subset=["depth", "score"]).copy()
    if sub.empty or sub["network"].nunique() < 2:
        return pd.DataFrame(columns=cols), "fewer than 2 networks with ImageNet weights: no model fitted"
    sub["z"] = sub.groupby("benchmark")["score"].transform(lambda s: (s - s.mean()) / (s.std(ddof=0) or 1.0))
    sub["has_batchnorm"] = sub["has_batchnorm"].astype(float)
    terms = ["C(benchmark):depth"] + [p for p in ("top1", "has_batchnorm") if sub[p].nunique() > 1]
    formula = "z ~ C(benchmark) + " + " + ".join(terms)
    networks = sub["network"].nunique()
    note = (f"{networks} networks, {len(sub)} loss-network means; "
            + (f"fewer than {min_clusters} networks: no cluster-robust errors. " if networks < min_clusters else ""))
    fit = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm(formula, sub, groups=sub["network"]).fit(reml=True)
        if not np.all(np.isfinite(fit.bse)):
            fit = None
    except Exception:  # singular designs with few networks
        fit = None
    if fit is not None:
        note = f"MixedLM {formula}, random intercept per network; " + note
    else:
        fit = smf.ols(formula, sub).fit()
        note = f"MixedLM could not be fitted (singular with these networks); OLS {formula}; " + note
    ci = fit.conf_int(1 - LEVEL)
    names = [t for t in fit.params.index if t != "Group Var" and not t.startswith("C(benchmark)[T.")]
    return pd.DataFrame({"term": names, "estimate": [fit.params[t] for t in names],
                         "ci_low": [ci.loc[t, 0] for t in names], "ci_high": [ci.loc[t, 1] for t in names],
                         "p": [fit.pvalues[t] for t in names]}), note


def pairs(summary: pd.DataFrame) -> pd.DataFrame:
    """The paired rows themselves (benchmark, network, point, imagenet, random)."""
    wide = loss_networks(summary, None).pivot_table(index=["benchmark", "network", "alias", "study_index"],
                                                   columns="weights", values="score")
    return wide.dropna().reset_index() if {"imagenet", "random"} <= set(wide.columns) else pd.DataFrame()


# --------------------------------------------------------------------------- did the models learn


def reference_value(references: pd.DataFrame, method: str, metric: str, split: str) -> float:
    """The mean over seeds of a reference (bicubic, nearest, all road, PCA-64, SSIM) in
    ``references`` (one benchmark's)."""
    r = references[(references["method"] == method) & (references["metric"] == metric) & (references["split"] == split)]
    return float(r["value"].mean()) if len(r) else np.nan


def per_seed(rows: pd.DataFrame) -> pd.Series:
    """The mean value of ``rows`` per seed."""
    return rows.groupby("seed")["value"].mean()


def learning_check(benchmark: str, text: str, required: float, measured: pd.Series, compare=lambda v, r: v >= r,
                   mean: float | None = None, worst: float | None = None, failing: str = "", why: str = "") -> Check:
    """A check that ``compare(worst, required)`` holds: ``measured`` per seed (or per model),
    its mean and its worst (default: the smallest)."""
    worst = (measured.min() if len(measured) else np.nan) if worst is None else worst
    met = bool(len(measured)) and bool(compare(worst, required))
    return Check(benchmark, text, required, measured.mean() if mean is None else mean, worst, met, failing,
                 "" if met else why)


def every_model_beats(benchmark: str, text: str, required: float, rows: pd.DataFrame, why: str = "") -> list[Check]:
    """A check that every trained model (network, weights, point) of ``rows`` scores above
    ``required`` in every seed (higher is better), naming the models that do not; no check when
    ``rows`` has none."""
    per_model = rows.groupby(["network", "weights", "alias"])["value"].agg(["mean", "min"])
    if not len(per_model):
        return []
    failing = per_model[per_model["min"] <= required]
    return [learning_check(benchmark, text, required, per_model["mean"], lambda v, r: v > r,
                           mean=per_model["mean"].mean(), worst=per_model["min"].min(),
                           failing=", ".join(f"{n} ({w}) {a}" for n, w, a in failing.index), why=why)]


def learning_checks(table: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """Each benchmark's checks that its models learned (``Benchmark.learning_checks``): what is
    required, the value measured (mean over seeds), the worst seed (or model), whether it is met,
    and why it may not be."""
    rows = []
    agreement = seed_agreement(scores(table))
    for bench in table["benchmark"].dropna().unique():
        checks = get_benchmark(bench).learning_checks(table[table["benchmark"] == bench],
                                                      references[references["benchmark"] == bench])
        rows += [c.row() for c in checks]
        agreed = agreement[(agreement["benchmark"] == bench) & np.isfinite(agreement["spearman"])]
        if len(agreed):
            required = float(agreed["required"].iloc[0])
            rows.append(learning_check(bench, f"seeds agree on the loss networks' order: mean Spearman between seeds "
                                              f">= {required:.2f} (else the chapter ranks nothing)",
                                       required, agreed["spearman"],
                                       why="this budget cannot tell the loss networks apart; no ranking is shown").row())
    return pd.DataFrame(rows, columns=list(Check("", "", 0, 0, 0, False).row()))
