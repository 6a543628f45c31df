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

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .benchmark import Check, get_benchmark
from .config import BASELINE

KEYS = ["benchmark", "network", "weights", "pretrained", "family", "top1", "has_batchnorm", "point",
        "alias", "study_index", "depth"]
MIN_NETWORKS = 5  # fewer networks: no interval or p-value across networks
MIN_CLUSTERS = 10  # fewer networks: no cluster-robust errors
LEVEL = 0.95


# --------------------------------------------------------------------------- scores and seeds


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark, loss network (network, weights, point) and seed with its primary
    ``score`` (its descriptor's ``primary`` metric). Failed cells are left out."""
    ok = table[table["status"] == "ok"]
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
    """Mean over seeds with a t-interval (NaN bounds with one seed) per loss network."""
    rows = []
    for key, g in score_frame.groupby(KEYS, dropna=False):
        v = g["score"].to_numpy(float)
        mean = float(v.mean())
        half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
        rows.append({**dict(zip(KEYS, key)), "score": mean, "n_seeds": len(v), "ci_low": mean - half,
                     "ci_high": mean + half, "seeds": ", ".join(f"{x:.3g}" for x in v)})
    return pd.DataFrame(rows, columns=KEYS + ["score", "n_seeds", "ci_low", "ci_high", "seeds"])


def direction(benchmark: str) -> int:
    """+1 where a higher score is better, -1 where lower is."""
    return 1 if get_benchmark(benchmark).primary.higher_is_better else -1


def loss_networks(frame: pd.DataFrame, weights: str | None = "imagenet") -> pd.DataFrame:
    """Rows of real loss networks (no baseline), optionally of one weights kind."""
    out = frame[frame["network"] != BASELINE]
    return out if weights is None else out[out["weights"] == weights]


def _item(frame: pd.DataFrame) -> pd.Series:
    return frame["network"].astype(str) + "|" + frame["weights"].astype(str) + "|" + frame["alias"].astype(str)


def seed_agreement(score_frame: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark: how well seeds agree on the loss networks' scores (all weights, no
    baseline): the mean Spearman correlation over pairs of seeds and Kendall's W (corrected
    for ties)."""
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
    return pd.DataFrame(rows, columns=["benchmark", "seeds", "loss_networks", "spearman", "kendall_w"])


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
    for bench, sub in loss_networks(out, None).groupby("benchmark"):
        if np.isfinite(lsd.get(bench, np.nan)):
            signed = direction(bench) * sub["score"]
            out.loc[sub.index, "within_noise_of_best"] = signed.max() - signed < lsd[bench]
    return out


def heatmap_frame(summary: pd.DataFrame, benchmark: str, weights: str = "imagenet") -> pd.DataFrame:
    """network x point (study index 1-4, alias) scores of one benchmark."""
    sub = loss_networks(summary, weights)
    sub = sub[sub["benchmark"] == benchmark]
    cols = ["network", "alias", "study_index", "depth", "score", "ci_low", "ci_high", "n_seeds"]
    if "within_noise_of_best" in sub:
        cols.append("within_noise_of_best")
    return sub[cols]


def best_points(summary: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """The best point of each network in each benchmark (in the metric's direction)."""
    sub = loss_networks(summary, weights)
    signed = sub["score"] * sub["benchmark"].map(direction)
    idx = signed.groupby([sub["benchmark"], sub["network"]]).idxmax()
    return sub.loc[idx, ["benchmark", "network", "alias", "study_index", "depth", "score"]].reset_index(drop=True)


def ranks(summary: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Architecture ranks (1 = best) per benchmark by each network's best point, and the
    average rank over benchmarks (the study's ranking)."""
    best = best_points(summary, weights)
    if best.empty:
        return pd.DataFrame(columns=["network", "average_rank"])
    signed = best["score"] * best["benchmark"].map(direction)
    best["rank"] = signed.groupby(best["benchmark"]).rank(ascending=False, method="average")
    wide = best.pivot(index="network", columns="benchmark", values="rank")
    wide["average_rank"] = wide.mean(axis=1)
    return wide.sort_values("average_rank").reset_index()


# --------------------------------------------------------------------------- the conventions


def depth_within_networks(summary: pd.DataFrame, weights: str = "imagenet", n_boot: int = 2000,
                          seed: int = 0, min_networks: int = MIN_NETWORKS) -> pd.DataFrame:
    """Convention (b) within networks, per benchmark: each network's Spearman correlation of
    its points' relative depth and score, their mean, a bootstrap interval over networks (only
    with ``min_networks`` or more), and in how many networks the correlation is negative."""
    rng = np.random.default_rng(seed)
    rows = []
    for bench, sub in loss_networks(summary, weights).groupby("benchmark"):
        rhos = {}
        for network, g in sub.dropna(subset=["depth", "score"]).groupby("network"):
            if g["depth"].nunique() > 1 and g["score"].nunique() > 1:
                rhos[network] = float(stats.spearmanr(g["depth"], g["score"])[0])
        values = np.array(list(rhos.values()))
        lo = hi = np.nan
        if len(values) >= min_networks:
            boot = [rng.choice(values, len(values)).mean() for _ in range(n_boot)]
            lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        rows.append({"benchmark": bench, "networks": len(values),
                     "mean_rho": float(values.mean()) if len(values) else np.nan, "ci_low": lo, "ci_high": hi,
                     "negative_in": int((values < 0).sum()),
                     "per_network": ", ".join(f"{k} {v:+.2f}" for k, v in rhos.items())})
    return pd.DataFrame(rows, columns=["benchmark", "networks", "mean_rho", "ci_low", "ci_high", "negative_in",
                                       "per_network"])


def depth_slope(score_frame: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Convention (b) for these networks, per benchmark: the change of the score (in the
    benchmark's units) per unit of relative depth, from score ~ network + depth over every
    seed's score (a fixed network effect, so only depth differences within a network count),
    with a t-interval. It speaks for the networks run, not for networks in general."""
    import statsmodels.formula.api as smf

    rows = []
    for bench, sub in loss_networks(score_frame, weights).dropna(subset=["depth"]).groupby("benchmark"):
        if sub["seed"].nunique() < 2 or sub["depth"].nunique() < 2:
            rows.append({"benchmark": bench, "slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan,
                         "networks": sub["network"].nunique(), "rows": len(sub)})
            continue
        formula = "score ~ depth" + (" + C(network)" if sub["network"].nunique() > 1 else "")
        fit = smf.ols(formula, sub).fit()
        lo, hi = fit.conf_int(1 - LEVEL).loc["depth"]
        rows.append({"benchmark": bench, "slope": float(fit.params["depth"]), "ci_low": float(lo), "ci_high": float(hi),
                     "p": float(fit.pvalues["depth"]), "networks": sub["network"].nunique(), "rows": len(sub)})
    return pd.DataFrame(rows, columns=["benchmark", "slope", "ci_low", "ci_high", "p", "networks", "rows"])


def accuracy_correlation(summary: pd.DataFrame, weights: str = "imagenet", n_boot: int = 2000, seed: int = 0,
                         min_networks: int = MIN_NETWORKS) -> pd.DataFrame:
    """Convention (a), per benchmark and per summary of a network ('best' point, 'mean' over
    points): the Spearman correlation of ImageNet top-1 and score, one value per network (n =
    networks); the p-value and a bootstrap interval over networks only with ``min_networks``
    or more (NaN otherwise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for bench, sub in loss_networks(summary, weights).dropna(subset=["top1"]).groupby("benchmark"):
        per = sub.groupby("network").agg(top1=("top1", "first"), best=("score", "max"), mean=("score", "mean"))
        for which in ("best", "mean"):
            n = len(per)
            rho = stats.spearmanr(per["top1"], per[which])[0] if n >= 3 and per["top1"].nunique() > 1 else np.nan
            p = lo = hi = np.nan
            if n >= min_networks and np.isfinite(rho):
                p = stats.spearmanr(per["top1"], per[which])[1]
                boot = []
                for _ in range(n_boot):
                    s = per.iloc[rng.integers(0, n, n)]
                    if s["top1"].nunique() > 1 and s[which].nunique() > 1:
                        boot.append(stats.spearmanr(s["top1"], s[which])[0])
                lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            rows.append({"benchmark": bench, "network_score": which, "networks": n, "rho": rho, "ci_low": lo,
                         "ci_high": hi, "p": p})
    return pd.DataFrame(rows, columns=["benchmark", "network_score", "networks", "rho", "ci_low", "ci_high", "p"])


def variance_shares(score_frame: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Per benchmark: nested ANOVA of the score, point within network, seeds as the residual:
    each source's share of the sum of squares and the F-tests of network and point against the
    seed noise: NaN with one seed, and where the seeds agree exactly (a measure that the seed
    does not change, such as an untrained distance, has no seed noise to be judged against).
    Networks may have different points."""
    rows = []
    cols = ["benchmark", "network", "point_within_network", "seed", "p_network", "p_point", "networks", "rows"]
    for bench, sub in loss_networks(score_frame, weights).groupby("benchmark"):
        sub = sub.dropna(subset=["alias", "score"])
        nets, cells = sub["network"].nunique(), sub.groupby(["network", "alias"]).ngroups
        if cells <= nets or len(sub) < 4:
            rows.append(dict(zip(cols, [bench] + [np.nan] * 5 + [nets, len(sub)])))
            continue
        y = sub["score"].to_numpy()
        net_mean = sub.groupby("network")["score"].transform("mean").to_numpy()
        cell_mean = sub.groupby(["network", "alias"])["score"].transform("mean").to_numpy()
        ss = {"network": ((net_mean - y.mean()) ** 2).sum(), "point_within_network": ((cell_mean - net_mean) ** 2).sum(),
              "seed": ((y - cell_mean) ** 2).sum()}
        df = {"network": nets - 1, "point_within_network": cells - nets, "seed": len(y) - cells}
        total = sum(ss.values())

        def p_value(source: str) -> float:
            if df["seed"] == 0 or df[source] == 0 or ss["seed"] == 0:
                return np.nan
            f = (ss[source] / df[source]) / (ss["seed"] / df["seed"])
            return float(stats.f.sf(f, df[source], df["seed"]))

        rows.append({"benchmark": bench, **{k: v / total for k, v in ss.items()},
                     "p_network": p_value("network"), "p_point": p_value("point_within_network"),
                     "networks": nets, "rows": len(sub)})
    return pd.DataFrame(rows, columns=cols)


def pretrained_vs_random(score_frame: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                         min_networks: int = MIN_NETWORKS) -> pd.DataFrame:
    """ImageNet minus random weights, paired by benchmark, network, point and seed. Per
    benchmark: the mean difference; its interval is a bootstrap over networks with
    ``min_networks`` or more, else (one or few networks) a t-interval over seeds of the
    per-seed mean difference, which speaks only for the networks run."""
    lossnets = loss_networks(score_frame, None)
    wide = lossnets.pivot_table(index=["benchmark", "network", "alias", "seed"], columns="weights", values="score")
    cols = ["benchmark", "networks", "pairs", "mean_difference", "ci_low", "ci_high", "interval", "pretrained_wins"]
    if "imagenet" not in wide or "random" not in wide:
        return pd.DataFrame(columns=cols)
    diff = (wide["imagenet"] - wide["random"]).dropna().rename("difference").reset_index()
    rng = np.random.default_rng(seed)
    rows = []
    for bench, g in diff.groupby("benchmark"):
        per_network = g.groupby("network")["difference"].mean().to_numpy()
        per_seed = g.groupby("seed")["difference"].mean().to_numpy()
        lo = hi = np.nan
        if len(per_network) >= min_networks:
            boot = [rng.choice(per_network, len(per_network)).mean() for _ in range(n_boot)]
            lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            kind = f"bootstrap over {len(per_network)} networks"
        elif len(per_seed) > 1:
            half = stats.t.ppf(0.5 + LEVEL / 2, len(per_seed) - 1) * per_seed.std(ddof=1) / np.sqrt(len(per_seed))
            lo, hi = per_seed.mean() - half, per_seed.mean() + half
            kind = f"t over {len(per_seed)} seeds, {len(per_network)} network(s) only"
        else:
            kind = "none (one seed)"
        rows.append({"benchmark": bench, "networks": len(per_network), "pairs": len(g),
                     "mean_difference": float(g["difference"].mean()), "ci_low": lo, "ci_high": hi, "interval": kind,
                     "pretrained_wins": float((g["difference"] > 0).mean())})
    return pd.DataFrame(rows, columns=cols)


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


def learning_checks(table: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """Each benchmark's checks that its models learned (``Benchmark.learning_checks``): what is
    required, the value measured (mean over seeds), the worst seed (or model), whether it is met,
    and why it may not be."""
    rows = []
    for bench in table["benchmark"].dropna().unique():
        checks = get_benchmark(bench).learning_checks(table[table["benchmark"] == bench],
                                                      references[references["benchmark"] == bench])
        rows += [c.row() for c in checks]
    return pd.DataFrame(rows, columns=list(Check("", "", 0, 0, 0, False).row()))
