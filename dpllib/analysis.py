"""The statistics the book's chapters call, each testable on a table with a known answer.

Input: the tidy table of :func:`dpllib.results.table` (and the references of
:func:`dpllib.results.references`). A *loss network* is (network, weights, point). The design:
points are nested in networks, seeds replicate each cell; so intervals come from seeds
(within a network) or from a bootstrap over networks (across networks, only with at least
``MIN_NETWORKS`` of them), and a statement is made only where its interval excludes no effect.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

# benchmark -> (metric, splits averaged into the score, label). Higher is better for all.
PRIMARY = {
    "similarity": ("2afc", ("mean",), "2AFC score (uncalibrated), mean over splits"),
    "super_resolution": ("psnr", ("set5", "set14", "bsd100"), "PSNR (dB, Y) at full resolution, mean of the test sets run"),
    "segmentation": ("quality", ("test",), "road quality TP/(TP+FP+FN), pixel-exact"),
    "autoencoding": ("probe_accuracy", ("mean",), "probe accuracy, mean of 7 MLP shapes"),
}
KEYS = ["benchmark", "network", "weights", "pretrained", "family", "top1", "has_batchnorm", "point",
        "alias", "study_index", "depth"]
MIN_NETWORKS = 5  # fewer networks: no interval or p-value across networks
MIN_CLUSTERS = 10  # fewer networks: no cluster-robust errors
LEVEL = 0.95


# --------------------------------------------------------------------------- scores and seeds


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark, loss network (network, weights, point) and seed with its primary
    ``score`` (see PRIMARY). Failed cells are left out."""
    ok = table[table["status"] == "ok"]
    parts = []
    for bench, (metric, splits, _) in PRIMARY.items():
        sub = ok[(ok["benchmark"] == bench) & (ok["metric"] == metric) & (ok["split"].isin(splits))]
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


def loss_networks(frame: pd.DataFrame, weights: str | None = "imagenet") -> pd.DataFrame:
    """Rows of real loss networks (no baseline), optionally of one weights kind."""
    out = frame[frame["network"] != "baseline"]
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
    to its benchmark's best loss network than the least significant difference."""
    out = summary.copy()
    out["within_noise_of_best"] = False
    lsd = dict(zip(noise["benchmark"], noise["lsd"]))
    for bench, sub in loss_networks(out, None).groupby("benchmark"):
        if np.isfinite(lsd.get(bench, np.nan)):
            out.loc[sub.index, "within_noise_of_best"] = sub["score"].max() - sub["score"] < lsd[bench]
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
    """The best point of each network in each benchmark."""
    sub = loss_networks(summary, weights)
    idx = sub.groupby(["benchmark", "network"])["score"].idxmax()
    return sub.loc[idx, ["benchmark", "network", "alias", "study_index", "depth", "score"]].reset_index(drop=True)


def ranks(summary: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Architecture ranks (1 = best) per benchmark by each network's best point, and the
    average rank over benchmarks (the study's ranking)."""
    best = best_points(summary, weights)
    if best.empty:
        return pd.DataFrame(columns=["network", "average_rank"])
    best["rank"] = best.groupby("benchmark")["score"].rank(ascending=False, method="average")
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


# --------------------------------------------------------------------------- learning thresholds


def reference_value(references: pd.DataFrame, benchmark: str, method: str, metric: str, split: str) -> float:
    """The mean over seeds of a reference (bicubic, nearest, all road, PCA-64, SSIM)."""
    r = references[(references["benchmark"] == benchmark) & (references["method"] == method)
                   & (references["metric"] == metric) & (references["split"] == split)]
    return float(r["value"].mean()) if len(r) else np.nan


# Why a check can miss on this machine's data, shown beside a check that is not met.
WHY_UNMET = {
    "beats nearest": "a perceptual loss has no pixel term, so nothing in the training holds PSNR up; the "
                     "models and seeds that miss are named, and the learning curves show how they trained",
    "BCE baseline": "the 24-image subset leaves 16 training tiles, most of them partly outside the imaged area; "
                    "scores are pixel-exact at the masks' 1500 px from predictions at 750 px (the relaxed 3-px "
                    "scores are under 'Other measures')",
}


def learning_thresholds(table: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """The checks that the offline models learned (issue 11's thresholds): per benchmark, what is
    required, the value measured (mean over seeds), the worst seed (for the perceptual SR models:
    the worst model), whether it is met, and why it may not be."""
    ok = table[table["status"] == "ok"]
    rows = []

    def values(mask) -> pd.Series:
        return ok[mask].groupby("seed")["value"].mean()

    def add(bench, check, required, measured: pd.Series, compare=lambda v, r: v >= r, mean=None, worst=None,
            failing=""):
        worst = (measured.min() if len(measured) else np.nan) if worst is None else worst
        met = bool(len(measured)) and bool(compare(worst, required))
        why = "" if met else next((w for key, w in WHY_UNMET.items() if key in check), "")
        rows.append({"benchmark": bench, "check": check, "required": required,
                     "measured (mean over seeds)": measured.mean() if mean is None else mean, "worst": worst,
                     "met": met, "not met by": failing, "why it can miss": why})

    base = ok["network"] == "baseline"
    if (ok["benchmark"] == "super_resolution").any():
        sr = ok["benchmark"] == "super_resolution"
        bicubic = reference_value(references, "super_resolution", "bicubic", "psnr", "set5")
        nearest = reference_value(references, "super_resolution", "nearest", "psnr", "set5")
        psnr5 = sr & (ok["metric"] == "psnr") & (ok["split"] == "set5")
        add("super_resolution", "pixel-MSE baseline PSNR on Set5 >= bicubic - 0.5 dB", bicubic - 0.5, values(psnr5 & base))
        per_model = ok[psnr5 & ~base].groupby(["network", "weights", "alias"])["value"].agg(["mean", "min"])
        if len(per_model):
            failing = per_model[per_model["min"] <= nearest]
            add("super_resolution", "every perceptual model beats nearest-neighbour on Set5 (every seed)", nearest,
                per_model["mean"], lambda v, r: v > r, mean=per_model["mean"].mean(), worst=per_model["min"].min(),
                failing=", ".join(f"{n.replace('efficientnet_', '')} ({w}) {a}" for n, w, a in failing.index))
    if (ok["benchmark"] == "segmentation").any():
        seg = (ok["benchmark"] == "segmentation") & base & (ok["split"] == "test")
        add("segmentation", "BCE baseline quality >= 0.15", 0.15, values(seg & (ok["metric"] == "quality")))
        for metric in ("completeness", "correctness"):
            add("segmentation", f"BCE baseline {metric} >= 0.3", 0.3, values(seg & (ok["metric"] == metric)))
    if (ok["benchmark"] == "autoencoding").any():
        pca = reference_value(references, "autoencoding", "PCA-64 of the pixels", "probe_accuracy", "mean")
        ae = (ok["benchmark"] == "autoencoding") & base & (ok["metric"] == "probe_accuracy") & (ok["split"] == "mean")
        add("autoencoding", "pixel baseline probe accuracy >= PCA-64 probes - 0.02", pca - 0.02, values(ae))
    if (ok["benchmark"] == "similarity").any():
        sim = (ok["benchmark"] == "similarity") & base & (ok["metric"] == "2afc") & (ok["split"] == "mean")
        distance = (values(sim) - 0.5).abs()
        add("similarity", "pixel L2 2AFC within 0.5 +- 0.05 (pixel distance cannot know the answer)", 0.05,
            distance, lambda v, r: abs(v) <= r, worst=distance.max() if len(distance) else np.nan)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- what the run says


CANNOT_SPEAK = {
    "VGG networks without batch norm perform best": "no VGG weights can be had offline; only EfficientNet-Lite 0/1/2 ran",
    "the architecture ranking (VGG-11 best on average)": "three networks of one family (EfficientNet-Lite) cannot rank the study's 14 architectures",
}


def findings(score_frame: pd.DataFrame, summary: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The statements the data supports, one per test whose interval excludes no effect, each
    naming its stand-ins; then the study's claims this run cannot speak to, and why."""
    lines = []
    stand_ins = {b: "stand-ins: " + stand_ins_of(table, b) for b in score_frame["benchmark"].unique()}
    for _, r in variance_shares(score_frame).iterrows():
        if r["p_network"] < 1 - LEVEL:
            lines.append(f"{r['benchmark']}: the network explains {r['network']:.0%} of the score variation "
                         f"(nested ANOVA, network effect p = {r['p_network']:.2g} against the seed noise) "
                         f"[{stand_ins[r['benchmark']]}].")
        if r["p_point"] < 1 - LEVEL:
            bigger = "more" if r["point_within_network"] > r["network"] else "less"
            lines.append(f"{r['benchmark']}: the extraction point explains {r['point_within_network']:.0%} of the score "
                         f"variation within networks, {bigger} than the network's {r['network']:.0%} (nested ANOVA, point "
                         f"effect p = {r['p_point']:.2g} against the seed noise) [{stand_ins[r['benchmark']]}].")
    for _, r in depth_slope(score_frame).dropna(subset=["slope"]).iterrows():
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            direction = "higher" if r["slope"] > 0 else "lower"
            lines.append(f"{r['benchmark']}: within the {r['networks']} networks run, later points score {direction} "
                         f"(slope {r['slope']:.3g} per unit depth, 95% CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}]) "
                         f"[{stand_ins[r['benchmark']]}].")
    for _, r in pretrained_vs_random(score_frame).dropna(subset=["ci_low"]).iterrows():
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            better = "ImageNet" if r["mean_difference"] > 0 else "random"
            lines.append(f"{r['benchmark']}: {better} weights score higher (ImageNet minus random {r['mean_difference']:.3g}, "
                         f"95% CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}], {r['interval']}) "
                         f"[{stand_ins[r['benchmark']]}].")
    nets = loss_networks(summary)["network"].nunique()
    if nets < MIN_NETWORKS:
        lines.append(f"Convention (a), ImageNet accuracy: {nets} networks with ImageNet weights ran; with fewer than "
                     f"{MIN_NETWORKS} no correlation across networks is tested (the correlations are shown, untested).")
    lines += [f"Cannot speak to \"{claim}\": {why}." for claim, why in CANNOT_SPEAK.items()
              if nets < MIN_NETWORKS]
    return lines


# --------------------------------------------------------------------------- references, provenance


# Reference figures from elsewhere (../shared/paper/NOTES.md), with the configuration they need.
REFERENCES = [
    # (benchmark, metric, split, network, point, weights, dataset, budget, value, source)
    ("similarity", "2afc", "cnn", "vgg11", "features.19", "imagenet", "bapps", "paper", 81.4, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "color", "vgg11", "features.19", "imagenet", "bapps", "paper", 62.0, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "traditional", "vgg11", "features.19", "imagenet", "bapps", "paper", 76.1, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "cnn", "vgg16", "features.29", "imagenet", "bapps", "paper", 80.3, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "color", "vgg16", "features.29", "imagenet", "bapps", "paper", 60.8, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "traditional", "vgg16", "features.29", "imagenet", "bapps", "paper", 75.0, "third-party BAPPS 2AFC, uncalibrated"),
    ("segmentation", "quality", "test", "baseline", None, "none", "mass_roads", "paper", 0.434, "a Mosinska-style U-Net re-implementation, 224 px, BCE only"),
]


def reference_table(table: pd.DataFrame) -> pd.DataFrame:
    """Figures from elsewhere, each with its source. This run's number stands beside one only
    when it ran the same configuration (network, point, weights, data set, paper budget);
    otherwise the row says why there is nothing comparable, and shows no number of ours."""
    ok = table[table["status"] == "ok"]
    rows = []
    for bench, metric, split, network, point, weights, dataset, budget, value, source in REFERENCES:
        same = ok[(ok["benchmark"] == bench) & (ok["metric"] == metric) & (ok["split"] == split)
                  & (ok["network"] == network) & (ok["weights"] == weights) & (ok["dataset"] == dataset)
                  & (ok["budget"] == budget)]
        if point is not None:
            same = same[same["point"] == point]
        scale = 100 if metric == "2afc" else 1
        if not same.empty:
            ours, status = float(same["value"].mean()) * scale, "same configuration"
        else:
            ran = ok[ok["benchmark"] == bench]
            status = f"not comparable (needs {dataset}, {budget} budget)" if len(ran) else "not run here"
            ours = np.nan
        rows.append({"benchmark": bench, "network": network, "point": point or "-", "measure": f"{metric} {split}",
                     "figure": value, "source": source, "this run": ours, "status": status})
    return pd.DataFrame(rows)


DATA_KIND = {
    "bapps": "BAPPS (real, human judgements)",
    "severity": "severity 2AFC (synthetic answers on real BSDS500 photos; a sanity check)",
    "equal_mse": "equal-MSE 2AFC (synthetic answers on real BSDS500 photos; stands in for BAPPS)",
    "coco": "MS-COCO 2014 (real, the study's)",
    "bsds500": "BSDS500 (real; stand-in for MS-COCO)",
    "mass_roads": "Massachusetts Roads (real)",
    "svhn": "SVHN (real, the study's)",
    "stl10": "STL-10 (real, the study's)",
    "cifar10": "CIFAR-10 (real; stand-in for SVHN/STL-10)",
}


def stand_ins_of(table: pd.DataFrame, benchmark: str) -> str:
    """What stood in for the study's networks, data and protocol in ``benchmark`` (short)."""
    sub = table[table["benchmark"] == benchmark]
    nets = sorted(n.replace("efficientnet_", "") for n in sub["network"].dropna().unique() if n != "baseline")
    data = ", ".join(DATA_KIND.get(d, d).split(" (")[0] for d in sorted(sub["dataset"].dropna().unique()))
    budgets = ", ".join(sorted(sub["budget"].dropna().unique()))
    seeds = sorted(int(s) for s in sub["seed"].dropna().unique())
    return f"{', '.join(nets)}; {data}; {budgets} budget; {len(seeds)} seeds"


def provenance(table: pd.DataFrame, benchmark: str | None = None) -> str:
    """One line: weights, data, budget, seeds and the dpllib code version(s) behind a table or
    figure; cells from other code than this checkout's are counted."""
    sub = table if benchmark is None else table[table["benchmark"] == benchmark]
    if sub.empty:
        return "no results"
    nets = sorted(n for n in sub["network"].dropna().unique() if n != "baseline")
    weights = ", ".join(sorted(w for w in sub["weights"].dropna().unique() if w != "none"))
    data = ", ".join(DATA_KIND.get(d, d) for d in sorted(sub["dataset"].dropna().unique()))
    budget = ", ".join(sorted(sub["budget"].dropna().unique()))
    seeds = sorted(int(s) for s in sub["seed"].dropna().unique())
    line = f"networks: {', '.join(nets)} ({weights}) | data: {data} | budget: {budget} | seeds: {seeds}"
    if "code_version" not in sub:
        return line
    from .results import code_version

    line += f" | dpllib code: {', '.join(sorted(sub['code_version'].dropna().unique()))}"
    stale = sub.loc[sub["code_version"] != code_version(), "cell_id"].nunique()
    if stale:
        line += (f" ({stale} cell{'s' if stale > 1 else ''} ran on other code than this checkout's {code_version()}: "
                 "`dpl run PRESET --rerun-stale` reruns them)")
    return line


# --------------------------------------------------------------------------- tables for reading


def readable(frame: pd.DataFrame, digits: int = 3, columns: dict[str, str] | None = None):
    """A table for the book: no index column, numbers to ``digits`` significant digits, a dash
    where a value is not computed (with a footnote saying so), booleans as yes/no, column names
    made readable (``columns`` renames), network names short (lite0 for efficientnet_lite0)."""
    from IPython.display import HTML

    frame = frame.rename(columns=columns or {})
    frame = frame.rename(columns=lambda c: str(c).replace("_", " "))
    dash = frame.isna().to_numpy().any()

    def show(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "–"
        if isinstance(v, (float, np.floating)):
            return f"{v:.{digits}g}"
        return str(v).replace("efficientnet_", "")

    body = frame.map(show) if hasattr(frame, "map") else frame.applymap(show)
    html = body.to_html(index=False, escape=True, border=0, classes="dpl-table")
    if dash:
        html += '<p class="dpl-note">– : not computed (too few seeds or networks for it, or not run).</p>'
    return HTML(f'<div class="dpl-table-wrap">{html}</div>')


# --------------------------------------------------------------------------- the methods page


def preset_networks(preset: dict) -> pd.DataFrame:
    """The preset's loss networks: one row per network and study point with its weights,
    ImageNet top-1, parameters, batch norm, module, alias, depth and channels."""
    from .networks import extraction_points, network_info, resolve_point

    rows = []
    for entry in preset["networks"]:
        info = network_info(entry["network"])
        weights = entry.get("weights", ["imagenet"])
        weights = [weights] if isinstance(weights, str) else weights
        chosen = entry.get("points")
        points = ([resolve_point(info.name, p) for p in chosen] if chosen
                  else extraction_points(info.name, study_only=True))
        for p in points:
            rows.append({"network": info.name, "weights": ", ".join(weights), "top1": info.top1,
                         "params (M)": round(info.params / 1e6, 1), "batch norm": info.has_batchnorm,
                         "point": p.study_index, "module": p.module, "alias": p.alias, "depth": round(p.depth, 3),
                         "channels": p.channels, "weights from": info.weights_origin.split(" (")[0]})
    return pd.DataFrame(rows)


def preset_benchmarks(preset: dict) -> pd.DataFrame:
    """The preset's benchmarks: data, score and the budget settings each cell ran with."""
    from .config import CellConfig

    rows = []
    for bench, dataset in preset["benchmarks"].items():
        settings = CellConfig(bench, "baseline", dataset=dataset, budget=preset["budget"],
                              overrides=preset.get("overrides", {}).get(bench, {})).settings()
        rows.append({"benchmark": bench, "data": DATA_KIND.get(dataset, dataset), "score": PRIMARY[bench][2],
                     "budget settings": ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)})
    return pd.DataFrame(rows)


def records_line(table: pd.DataFrame) -> str:
    """How many cells ran, how many are ok, and their total wall time."""
    cells = table.drop_duplicates("cell_id")
    return (f"Records: {len(cells)} cells, {int((cells['status'] == 'ok').sum())} ok; "
            f"total wall time {cells['wall_time_s'].sum() / 60:.1f} min.")
