"""The statistics the analysis notebooks call: per-benchmark scores, ranks, the two
transfer-learning conventions, variance shares, pretrained-vs-random pairs, seed intervals.

Input: the tidy table of :func:`dpllib.results.table`. Every function returns a DataFrame.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

# benchmark -> (metric, splits averaged into the score, unit). Higher is better for all.
PRIMARY = {
    "similarity": ("2afc", ("mean",), "2AFC score (uncalibrated), mean over splits"),
    "super_resolution": ("psnr", ("set5", "set14", "bsd100"), "PSNR (dB, Y), mean of Set5/Set14/BSD100"),
    "segmentation": ("quality", ("test",), "road quality TP/(TP+FP+FN)"),
    "autoencoding": ("probe_accuracy", ("mean",), "probe accuracy, mean of 7 MLP shapes"),
}
KEYS = ["benchmark", "network", "weights", "pretrained", "family", "top1", "has_batchnorm", "point",
        "alias", "study_index", "depth"]


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


def seed_summary(score_frame: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean over seeds with a t-interval (NaN bounds with one seed) per loss network."""
    rows = []
    for key, g in score_frame.groupby(KEYS, dropna=False):
        v = g["score"].to_numpy(float)
        mean = float(v.mean())
        if len(v) > 1:
            half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
            lo, hi = mean - half, mean + half
        else:
            lo = hi = np.nan
        rows.append({**dict(zip(KEYS, key)), "score": mean, "n_seeds": len(v), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=KEYS + ["score", "n_seeds", "ci_low", "ci_high"])


def loss_networks(summary: pd.DataFrame, weights: str | None = "imagenet") -> pd.DataFrame:
    """Rows of real loss networks (no baseline), optionally of one weights kind."""
    out = summary[summary["network"] != "baseline"]
    return out if weights is None else out[out["weights"] == weights]


def heatmap_frame(summary: pd.DataFrame, benchmark: str, weights: str = "imagenet") -> pd.DataFrame:
    """network x point (study index 1-4, alias) scores of one benchmark."""
    sub = loss_networks(summary, weights)
    sub = sub[sub["benchmark"] == benchmark]
    return sub[["network", "alias", "study_index", "depth", "score", "ci_low", "ci_high", "n_seeds"]]


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


def spearman(summary: pd.DataFrame, x: str, weights: str = "imagenet", n_boot: int = 2000,
             seed: int = 0, level: float = 0.95, min_networks: int = 5) -> pd.DataFrame:
    """Spearman correlation of ``x`` (e.g. 'top1', 'depth') with the score per benchmark, with a
    cluster bootstrap CI (networks resampled with their points; NaN with fewer than
    ``min_networks`` networks, where it would mislead) and the asymptotic p-value."""
    rng = np.random.default_rng(seed)
    rows = []
    for bench, sub in loss_networks(summary, weights).groupby("benchmark"):
        sub = sub.dropna(subset=[x, "score"])
        networks = sub["network"].unique()
        if len(sub) < 3 or sub[x].nunique() < 2:
            rows.append({"benchmark": bench, "x": x, "rho": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                         "p": np.nan, "n": len(sub), "networks": len(networks)})
            continue
        rho, p = stats.spearmanr(sub[x], sub["score"])
        groups = {n: sub[sub["network"] == n] for n in networks}
        boot = []
        for _ in range(n_boot if len(networks) >= min_networks else 0):
            pick = rng.choice(networks, size=len(networks), replace=True)
            sample = pd.concat([groups[n] for n in pick])
            if sample[x].nunique() > 1 and sample["score"].nunique() > 1:
                boot.append(stats.spearmanr(sample[x], sample["score"])[0])
        lo, hi = (np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if boot else (np.nan, np.nan))
        rows.append({"benchmark": bench, "x": x, "rho": float(rho), "ci_low": float(lo), "ci_high": float(hi),
                     "p": float(p), "n": len(sub), "networks": len(networks)})
    return pd.DataFrame(rows)


def mixed_model(summary: pd.DataFrame, weights: str = "imagenet",
                predictors: tuple[str, ...] = ("top1", "depth", "has_batchnorm")) -> tuple[pd.DataFrame, str]:
    """Across benchmarks: score standardised within benchmark ~ predictors, network as a
    random intercept (statsmodels MixedLM). Constant predictors are dropped; with fewer than 3
    networks or a failed fit, an OLS with network-clustered errors is used instead. Returns the
    coefficient table (estimate, CI, p) and a note saying which model was fitted."""
    import statsmodels.formula.api as smf

    sub = loss_networks(summary, weights).dropna(subset=["top1", "depth", "score"]).copy()
    if sub.empty:
        return pd.DataFrame(columns=["term", "estimate", "ci_low", "ci_high", "p"]), "no pretrained loss networks"
    sub["z"] = sub.groupby("benchmark")["score"].transform(lambda s: (s - s.mean()) / (s.std(ddof=0) or 1.0))
    sub["has_batchnorm"] = sub["has_batchnorm"].astype(float)
    used = [p for p in predictors if sub[p].nunique() > 1]
    dropped = [p for p in predictors if p not in used]
    if not used:
        return pd.DataFrame(columns=["term", "estimate", "ci_low", "ci_high", "p"]), "every predictor is constant"
    formula = "z ~ " + " + ".join(used)
    note = ""
    fit = None
    if sub["network"].nunique() >= 3:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = smf.mixedlm(formula, sub, groups=sub["network"]).fit(reml=True)
            if not np.all(np.isfinite(fit.bse)):
                fit = None
            else:
                note = f"MixedLM {formula}, random intercept per network ({sub['network'].nunique()} networks, {len(sub)} rows)"
        except Exception as err:  # singular designs with few networks
            note = f"MixedLM failed ({type(err).__name__}); "
            fit = None
    if fit is None:
        fit = smf.ols(formula, sub).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(sub["network"])[0]})
        note += f"OLS {formula} with network-clustered errors ({sub['network'].nunique()} networks, {len(sub)} rows)"
    if dropped:
        note += f"; constant here, dropped: {', '.join(dropped)}"
    ci = fit.conf_int()
    terms = [t for t in fit.params.index if t != "Group Var"]
    table = pd.DataFrame({"term": terms, "estimate": [fit.params[t] for t in terms],
                          "ci_low": [ci.loc[t, 0] for t in terms], "ci_high": [ci.loc[t, 1] for t in terms],
                          "p": [fit.pvalues[t] for t in terms]})
    return table, note


def variance_shares(summary: pd.DataFrame, weights: str = "imagenet") -> pd.DataFrame:
    """Two-way ANOVA per benchmark, score ~ network + point (study index): the share of the
    score's sum of squares explained by the network, by the point, and left over (their
    interaction, as there is one value per cell)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rows = []
    for bench, sub in loss_networks(summary, weights).groupby("benchmark"):
        sub = sub.dropna(subset=["study_index"])
        if sub["network"].nunique() < 2 or sub["study_index"].nunique() < 2 or len(sub) <= sub["network"].nunique() + sub["study_index"].nunique():
            rows.append({"benchmark": bench, "network": np.nan, "point": np.nan, "residual": np.nan, "n": len(sub)})
            continue
        fit = smf.ols("score ~ C(network) + C(study_index)", sub).fit()
        anova = sm.stats.anova_lm(fit, typ=2)
        total = anova["sum_sq"].sum()
        rows.append({"benchmark": bench, "network": anova.loc["C(network)", "sum_sq"] / total,
                     "point": anova.loc["C(study_index)", "sum_sq"] / total,
                     "residual": anova.loc["Residual", "sum_sq"] / total, "n": len(sub)})
    return pd.DataFrame(rows)


def pretrained_vs_random(summary: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Paired by benchmark, network and point: pretrained minus random-init score. Per benchmark:
    mean difference with a bootstrap CI, share of pairs where pretrained wins, Wilcoxon p."""
    lossnets = loss_networks(summary, None)
    wide = lossnets.pivot_table(index=["benchmark", "network", "alias"], columns="weights", values="score")
    if "imagenet" not in wide or "random" not in wide:
        return pd.DataFrame(columns=["benchmark", "pairs", "mean_difference", "ci_low", "ci_high", "pretrained_wins", "p"])
    diff = (wide["imagenet"] - wide["random"]).dropna().rename("difference").reset_index()
    rng = np.random.default_rng(seed)
    rows = []
    for bench, g in diff.groupby("benchmark"):
        d = g["difference"].to_numpy()
        boot = [rng.choice(d, len(d)).mean() for _ in range(n_boot)]
        p = stats.wilcoxon(d).pvalue if len(d) >= 2 and np.any(d != 0) else np.nan
        rows.append({"benchmark": bench, "pairs": len(d), "mean_difference": d.mean(),
                     "ci_low": np.quantile(boot, 0.025), "ci_high": np.quantile(boot, 0.975),
                     "pretrained_wins": float((d > 0).mean()), "p": p})
    return pd.DataFrame(rows)


def pairs(summary: pd.DataFrame) -> pd.DataFrame:
    """The paired rows themselves (benchmark, network, point, imagenet, random)."""
    wide = loss_networks(summary, None).pivot_table(index=["benchmark", "network", "alias", "study_index"],
                                                   columns="weights", values="score")
    return wide.dropna().reset_index() if {"imagenet", "random"} <= set(wide.columns) else pd.DataFrame()


# Reference figures from elsewhere (../shared/paper/NOTES.md), with the configuration they need.
REFERENCES = [
    # (benchmark, metric, split, network, point, weights, dataset, budget, value, source)
    ("similarity", "2afc", "cnn", "vgg11", "features.19", "imagenet", "bapps", "paper", 81.4, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "color", "vgg11", "features.19", "imagenet", "bapps", "paper", 62.0, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "traditional", "vgg11", "features.19", "imagenet", "bapps", "paper", 76.1, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "cnn", "vgg16", "features.29", "imagenet", "bapps", "paper", 80.3, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "color", "vgg16", "features.29", "imagenet", "bapps", "paper", 60.8, "third-party BAPPS 2AFC, uncalibrated"),
    ("similarity", "2afc", "traditional", "vgg16", "features.29", "imagenet", "bapps", "paper", 75.0, "third-party BAPPS 2AFC, uncalibrated"),
    ("segmentation", "quality", "test", "baseline", None, "none", "mass_roads", "paper", 0.434, "Mosinska-style U-Net, 224 px (BCE only)"),
]


def reference_table(table: pd.DataFrame) -> pd.DataFrame:
    """The reference figures beside this run's numbers where the configuration matches; where it
    does not, the nearest own number is shown and marked as not comparable."""
    ok = table[table["status"] == "ok"]
    rows = []
    for bench, metric, split, network, point, weights, dataset, budget, value, source in REFERENCES:
        exact = ok[(ok["benchmark"] == bench) & (ok["metric"] == metric) & (ok["split"] == split)
                   & (ok["network"] == network) & (ok["weights"] == weights) & (ok["dataset"] == dataset)
                   & (ok["budget"] == budget)]
        if point is not None:
            exact = exact[exact["point"] == point]
        scale = 100 if metric == "2afc" else 1
        if not exact.empty:
            ours, status = float(exact["value"].mean()) * scale, "same configuration"
        else:
            near = ok[(ok["benchmark"] == bench) & (ok["metric"] == metric) & (ok["network"] == network)]
            if near.empty:
                ours, status = np.nan, "not run here"
            else:
                ours = float(near["value"].mean()) * scale
                what = sorted(set(near["dataset"])) + sorted(set(near["budget"]))
                status = f"stand-in ({', '.join(what)}): not comparable"
        rows.append({"benchmark": bench, "network": network, "point": point, "metric": metric, "split": split,
                     "reference": value, "this_run": ours, "status": status, "source": source})
    return pd.DataFrame(rows)


DATA_KIND = {
    "bapps": "BAPPS (real, human judgements)",
    "severity": "severity 2AFC (synthetic answers on real BSDS500 photos)",
    "coco": "MS-COCO 2014 (real, the study's)",
    "bsds500": "BSDS500 (real; stand-in for MS-COCO)",
    "mass_roads": "Massachusetts Roads (real)",
    "svhn": "SVHN (real, the study's)",
    "stl10": "STL-10 (real, the study's)",
    "cifar10": "CIFAR-10 (real; stand-in for SVHN/STL-10)",
}


def provenance(table: pd.DataFrame, benchmark: str | None = None) -> str:
    """One line: weights, data, budget and seeds behind a table or figure."""
    sub = table if benchmark is None else table[table["benchmark"] == benchmark]
    if sub.empty:
        return "no results"
    weights = ", ".join(sorted(w for w in sub["weights"].dropna().unique()))
    data = ", ".join(DATA_KIND.get(d, d) for d in sorted(sub["dataset"].dropna().unique()))
    budget = ", ".join(sorted(sub["budget"].dropna().unique()))
    seeds = sorted(int(s) for s in sub["seed"].dropna().unique())
    return f"weights: {weights} | data: {data} | budget: {budget} | seeds: {seeds}"


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


# --------------------------------------------------------------------------- the run summary


def run_summary(ranking: pd.DataFrame, accuracy: pd.DataFrame, depth: pd.DataFrame, shares: pd.DataFrame,
                pretrained: pd.DataFrame) -> list[str]:
    """One sentence per finding of the conventions chapter (Markdown), from its tables: ``ranks``,
    ``spearman`` on top1 and on depth, ``variance_shares`` and ``pretrained_vs_random``."""

    def interval(r) -> str:
        if pd.isna(r["ci_low"]):
            return f"(no interval: {r['networks']} networks are too few for a cluster bootstrap)"
        return f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] ({r['networks']} networks)"

    lines = []
    if not ranking.empty:
        lines.append(f"Best average rank: **{ranking.iloc[0]['network']}** ({ranking.iloc[0]['average_rank']:.2f}).")
    for name, frame in (("ImageNet top-1", accuracy), ("depth", depth)):
        for _, r in frame.dropna(subset=["rho"]).iterrows():
            lines.append(f"{r['benchmark']}: {name} vs score rho = {r['rho']:.2f} {interval(r)}, p = {r['p']:.2g}.")
    for _, r in shares.dropna(subset=["network"]).iterrows():
        lines.append(f"{r['benchmark']}: the network explains {r['network']:.0%} of the score variation, "
                     f"the point {r['point']:.0%}.")
    for _, r in pretrained.iterrows():
        lines.append(f"{r['benchmark']}: pretrained beats random weights in {r['pretrained_wins']:.0%} of "
                     f"{r['pairs']} pairs (mean difference {r['mean_difference']:.3g} "
                     f"[{r['ci_low']:.3g}, {r['ci_high']:.3g}]).")
    return lines
