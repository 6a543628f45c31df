"""What the book says: sentences and tables made from the run's own facts (which networks,
weights, data, budget and seeds ran) and from the statistics of :mod:`dpllib.analysis`. No
sentence here is fixed text about a particular run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .analysis import (LEVEL, MIN_NETWORKS, depth_slope, loss_networks, pretrained_vs_random, ranks,
                       variance_shares)
from .benchmark import benchmarks, get_benchmark
from .config import BASELINE
from .networks import STUDY_POINTS


def short_name(network: str) -> str:
    """A network's name for narrow tables and captions: efficientnet_lite0 -> lite0."""
    return network.replace("efficientnet_", "")


def data_label(benchmark: str, dataset: str) -> str:
    """A data set's title and what it is, from its benchmark's descriptor."""
    try:
        return get_benchmark(benchmark).dataset(dataset).label
    except Exception:  # a record of a benchmark or data set no longer registered
        return dataset


def evidence(table: pd.DataFrame, benchmark: str) -> str:
    """What a statement about ``benchmark`` rests on, in a few words: the networks (whether they
    are the study's), the data (the study's or a stand-in), the budget, the seeds."""
    sub = table[table["benchmark"] == benchmark]
    nets = sorted(n for n in sub["network"].dropna().unique() if n != BASELINE)
    study = [n for n in nets if n in STUDY_POINTS]
    if study and len(study) == len(nets):
        who = f"{len(nets)} of the study's networks" if len(nets) < len(STUDY_POINTS) else "the study's networks"
    else:
        who = ", ".join(short_name(n) for n in nets) + (" (stand-ins for the study's networks)" if not study else "")
    descriptor = get_benchmark(benchmark)
    data = []
    for d in sorted(sub["dataset"].dropna().unique()):
        ds = descriptor.dataset(d)
        data.append(ds.title + ("" if ds.role == "study" else f" ({ds.role})"))
    budgets = ", ".join(sorted(sub["budget"].dropna().unique()))
    seeds = sub["seed"].dropna().nunique()
    return f"{who}; {', '.join(data)}; {budgets} budget; {seeds} seed{'s' if seeds != 1 else ''}"


def findings(score_frame: pd.DataFrame, summary: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The statements the data supports, one per test whose interval excludes no effect, each
    with the evidence it rests on; then the study's claims this run cannot speak to, and why."""
    lines = []
    said = {b: evidence(table, b) for b in score_frame["benchmark"].unique()}
    for _, r in variance_shares(score_frame).iterrows():
        if r["p_network"] < 1 - LEVEL:
            lines.append(f"{r['benchmark']}: the network explains {r['network']:.0%} of the score variation "
                         f"(nested ANOVA, network effect p = {r['p_network']:.2g} against the seed noise) "
                         f"[{said[r['benchmark']]}].")
        if r["p_point"] < 1 - LEVEL:
            bigger = "more" if r["point_within_network"] > r["network"] else "less"
            lines.append(f"{r['benchmark']}: the extraction point explains {r['point_within_network']:.0%} of the score "
                         f"variation within networks, {bigger} than the network's {r['network']:.0%} (nested ANOVA, point "
                         f"effect p = {r['p_point']:.2g} against the seed noise) [{said[r['benchmark']]}].")
    for _, r in depth_slope(score_frame).dropna(subset=["slope"]).iterrows():
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            direction = "higher" if r["slope"] > 0 else "lower"
            lines.append(f"{r['benchmark']}: within the {r['networks']} networks run, later points score {direction} "
                         f"(slope {r['slope']:.3g} per unit depth, 95% CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}]) "
                         f"[{said[r['benchmark']]}].")
    for _, r in pretrained_vs_random(score_frame).dropna(subset=["ci_low"]).iterrows():
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            better = "ImageNet" if r["mean_difference"] > 0 else "random"
            lines.append(f"{r['benchmark']}: {better} weights score higher (ImageNet minus random {r['mean_difference']:.3g}, "
                         f"95% CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}], {r['interval']}) [{said[r['benchmark']]}].")
    return lines + unaddressed(summary)


def unaddressed(summary: pd.DataFrame) -> list[str]:
    """The study's claims about networks that this run's networks cannot address, each with the
    fact that keeps it from them."""
    ran = sorted(loss_networks(summary)["network"].unique())
    names = ", ".join(short_name(n) for n in ran) or "none"
    lines = []
    if len(ran) < MIN_NETWORKS:
        lines.append(f"Convention (a), ImageNet accuracy: {len(ran)} networks with ImageNet weights ran ({names}); with "
                     f"fewer than {MIN_NETWORKS} no correlation across networks is tested (the correlations are shown, "
                     "untested).")
    vgg = [n for n in ran if n in STUDY_POINTS and n.startswith("vgg") and not n.endswith("_bn")]
    others = [n for n in ran if n not in vgg]
    claim = "Cannot speak to \"VGG networks without batch norm perform best\""
    if not vgg:
        lines.append(f"{claim}: no VGG network without batch norm ran (networks with ImageNet weights: {names}).")
    elif not others:
        lines.append(f"{claim}: only VGG networks without batch norm ran, nothing to compare them with.")
    else:
        order = ranks(summary)
        best = order[order["network"].isin(vgg)]["average_rank"].min()
        lines.append(f"The study finds VGG networks without batch norm best: here their best average rank is {best:.3g} "
                     f"of {len(order)} networks (architecture ranks below; differences within the seed noise are not "
                     "resolved).")
    study = [n for n in ran if n in STUDY_POINTS]
    if len(study) < len(STUDY_POINTS):
        lines.append(f"Cannot speak to the study's architecture ranking (VGG-11 best on average): {len(study)} of its "
                     f"{len(STUDY_POINTS)} networks ran ({', '.join(study) or 'none'}).")
    return lines


def reference_table(table: pd.DataFrame) -> pd.DataFrame:
    """Figures from elsewhere (each benchmark's ``reference_figures``), each with its source.
    This run's number stands beside one only when it ran the same configuration (network,
    point, weights, data set, budget); otherwise the row says why there is nothing comparable,
    and shows no number of ours."""
    ok = table[table["status"] == "ok"]
    rows = []
    for bench, descriptor in benchmarks().items():
        for f in descriptor.reference_figures:
            same = ok[(ok["benchmark"] == bench) & (ok["metric"] == f.metric) & (ok["split"] == f.split)
                      & (ok["network"] == f.network) & (ok["weights"] == f.weights) & (ok["dataset"] == f.dataset)
                      & (ok["budget"] == f.budget)]
            if f.point is not None:
                same = same[same["point"] == f.point]
            if not same.empty:
                ours, status = float(same["value"].mean()) * f.scale, "same configuration"
            else:
                ran = ok[ok["benchmark"] == bench]
                status = f"not comparable (needs {f.dataset}, {f.budget} budget)" if len(ran) else "not run here"
                ours = np.nan
            rows.append({"benchmark": bench, "network": f.network, "point": f.point or "-",
                         "measure": f"{f.metric} {f.split}", "figure": f.value, "source": f.source, "this run": ours,
                         "status": status})
    return pd.DataFrame(rows, columns=["benchmark", "network", "point", "measure", "figure", "source", "this run",
                                       "status"])


def provenance(table: pd.DataFrame, benchmark: str | None = None) -> str:
    """One line: weights, data, budget, seeds and the dpllib code version(s) behind a table or
    figure; cells from other code than this checkout's are counted."""
    sub = table if benchmark is None else table[table["benchmark"] == benchmark]
    if sub.empty:
        return "no results"
    nets = sorted(n for n in sub["network"].dropna().unique() if n != BASELINE)
    weights = ", ".join(sorted(w for w in sub["weights"].dropna().unique() if w != "none"))
    pairs = sub[["benchmark", "dataset"]].dropna().drop_duplicates().itertuples(index=False)
    data = ", ".join(sorted({data_label(b, d) for b, d in pairs}))
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
        return short_name(str(v))

    body = frame.map(show)
    html = body.to_html(index=False, escape=True, border=0, classes="dpl-table")
    if dash:
        html += '<p class="dpl-note">– : not computed (too few seeds or networks for it, or not run).</p>'
    return HTML(f'<div class="dpl-table-wrap">{html}</div>')


# --------------------------------------------------------------------------- the methods page


def preset_networks(preset: dict) -> pd.DataFrame:
    """The preset's loss networks: one row per network and point with its weights, ImageNet
    top-1, parameters, batch norm, module, alias, depth and channels."""
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
        settings = CellConfig(bench, BASELINE, dataset=dataset, budget=preset["budget"],
                              overrides=preset.get("overrides", {}).get(bench, {})).settings()
        primary = get_benchmark(bench).primary
        rows.append({"benchmark": bench, "data": data_label(bench, dataset),
                     "score": f"{primary.label} ({'higher' if primary.higher_is_better else 'lower'} is better)",
                     "budget settings": ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)})
    return pd.DataFrame(rows)


def records_line(table: pd.DataFrame) -> str:
    """How many cells ran, how many are ok, and their total wall time."""
    cells = table.drop_duplicates("cell_id")
    return (f"Records: {len(cells)} cells, {int((cells['status'] == 'ok').sum())} ok; "
            f"total wall time {cells['wall_time_s'].sum() / 60:.1f} min.")
