"""What the book says: sentences and tables made from the run's own facts (which networks,
weights, data, budget and seeds ran) and from the statistics of :mod:`dpllib.analysis`. No
sentence here is fixed text about a particular run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .analysis import MIN_NETWORKS, exclusions, loss_networks, ranks
from .catalog import STUDY_POINTS
from .config import BASELINE, CellConfig, entry_weights, preset_datasets
from .errors import DplError
from .names import YOURS_MARK, short_name, shown_names, shown_weights
from .protocol import deviations_table
from .registry import benchmarks, get_benchmark


def data_label(benchmark: str, dataset: str) -> str:
    """A data set's title and what it is, from its benchmark's descriptor."""
    try:
        return get_benchmark(benchmark).dataset(dataset).label
    except DplError:  # a record of a benchmark or data set no longer registered
        return dataset


def evidence(table: pd.DataFrame, benchmark: str) -> str:
    """What a statement about ``benchmark`` rests on, in a few words: the networks (whether they
    are the study's), the data (the study's or a stand-in), the budget, the seeds."""
    sub = table[table["benchmark"] == benchmark]
    nets = sorted(n for n in sub["network"].dropna().unique() if n != BASELINE)
    study = [n for n in nets if n in STUDY_POINTS]
    descriptor = get_benchmark(benchmark)
    if study and len(study) == len(nets):
        who = f"{len(nets)} of the study's networks" if len(nets) < len(STUDY_POINTS) else "the study's networks"
    else:  # stand-ins only where the use case is the study's; the user's networks marked
        stand_ins = not study and descriptor.study is not None
        shown = sub[sub["network"] != BASELINE].drop_duplicates("network").sort_values("network")
        who = ", ".join(shown_names(shown)) + (" (stand-ins for the study's networks)" if stand_ins else "")
    data = []
    for d in sorted(sub["dataset"].dropna().unique()):
        ds = descriptor.dataset(d)
        data.append(ds.title + ("" if ds.role == "study" else f" ({ds.role})"))
    budgets = ", ".join(sorted(sub["budget"].dropna().unique()))
    seeds = sub["seed"].dropna().nunique()
    return f"{who}; {', '.join(data)}; {budgets} budget; {seeds} seed{'s' if seeds != 1 else ''}"


def _interval(lo: float, hi: float) -> str:
    def show(v: float) -> str:
        return ("∞" if v > 0 else "-∞") if np.isinf(v) else f"{v:.3g}"

    return f"95% interval [{show(lo)}, {show(hi)}]" if not (np.isnan(lo) or np.isnan(hi)) else "no interval"


def answer(row, descriptor) -> str:
    """One plain sentence for one row of :func:`dpllib.analysis.claims`."""
    q, est, iv = row["question"], row["estimate"], _interval(row["ci_low"], row["ci_high"])
    sign = 1 if descriptor.primary.higher_is_better else -1
    tested = np.isfinite(row["p"])
    holm = f"Holm-adjusted p = {row['p_holm']:.2g}" if tested else ""
    if q == "point vs network":
        text = (f"the network's variance is estimated at 0 and the extraction point's is not (ratio point / network: {iv})"
                if np.isinf(est) else f"the extraction point's variance is {est:.3g} times the network's ({iv})")
        if row["claim"]:
            return text + (": the point matters more than the architecture." if row["ci_low"] > 1
                           else ": the architecture matters more than the point.")
        return text + ": no evidence that either matters more." if np.isfinite(est) else \
            "the variance of neither the network nor the point could be estimated apart from zero."
    if q in ("network", "point"):
        against = "the spread of its points" if q == "network" else "the seed noise"
        what = "the network" if q == "network" else "the extraction point (within a network)"
        if row["claim"]:
            return f"{what} matters: variance {est:.3g} ({iv}), tested against {against}, {holm}."
        if tested:
            return f"no evidence that {what} matters beyond {against} (variance {est:.3g}, {iv}, {holm})."
        why = ("the seeds agree exactly (a measure without training): no noise to test against" if q == "point"
               else "fewer than 2 networks, or points that agree exactly")
        return f"{what}: not tested ({why})."
    if q == "depth":
        if row["claim"]:
            better = "better" if sign * est > 0 else "worse"
            return (f"later points score {better} within networks (slope {est:.3g} per unit depth, {iv}, "
                    f"points as units, {holm}).")
        if tested:
            return f"no evidence that later points score better or worse (slope {est:.3g} per unit depth, {iv}, {holm})."
        return "depth: not tested (too few points per network, or they agree exactly)."
    if q == "accuracy":
        if row["claim"]:
            better = "better" if sign * est > 0 else "worse"
            return (f"networks with higher ImageNet top-1 make {better} loss networks (Spearman {est:.2f} over "
                    f"{row['networks']} networks, {iv}, {holm}).")
        if tested:
            return (f"no evidence that ImageNet accuracy predicts the score (Spearman {est:.2f} over "
                    f"{row['networks']} networks, {iv}, {holm}).")
        return (f"ImageNet accuracy: not tested ({row['networks']} networks; a correlation across networks needs "
                f"{MIN_NETWORKS} or more).")
    if q == "pretraining":
        scope = f" ({row['interval']})" if isinstance(row.get("interval"), str) else ""
        if row["claim"]:
            better = "better" if sign * est > 0 else "worse"
            return f"ImageNet weights score {better} than random weights (ImageNet minus random {est:.3g}, {iv}{scope}, {holm})."
        if tested:
            return f"no evidence that ImageNet pretraining changes the score (ImageNet minus random {est:.3g}, {iv}{scope}, {holm})."
        return "ImageNet against random weights: not tested (one seed)."
    raise ValueError(f"unknown question {q!r}")


QUESTIONS = {"point vs network": "Does the point matter as much as the architecture?",
             "network": "Does the point matter as much as the architecture?",
             "point": "Does the point matter as much as the architecture?",
             "depth": "Convention (b): do later points make better losses?",
             "accuracy": "Convention (a): does ImageNet accuracy predict a good loss network?",
             "pretraining": "ImageNet pretraining against random weights"}


def answers(claim_rows: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark and question, the plain sentence of each answer and what it rests on."""
    rows = []
    for r in claim_rows.to_dict("records"):
        descriptor = get_benchmark(r["benchmark"])
        rows.append({"benchmark": r["benchmark"], "question": QUESTIONS[r["question"]], "answer": answer(r, descriptor),
                     "rests on": evidence(table, r["benchmark"]), "claim": bool(r["claim"])})
    return pd.DataFrame(rows, columns=["benchmark", "question", "answer", "rests on", "claim"])


def findings(claim_rows: pd.DataFrame, summary: pd.DataFrame, table: pd.DataFrame,
             score_frame: pd.DataFrame | None = None) -> list[str]:
    """Every answer the run gives to the study's three questions (claims first, then the
    answers that found no evidence, each with its interval), with what it rests on; then what
    the statistics left out, and the study's claims the run cannot address, and why."""
    said = answers(claim_rows, table)
    lines = [f"{r['benchmark']}: {r['answer']} [{r['rests on']}]"
             for _, r in pd.concat([said[said["claim"]], said[~said["claim"]]]).iterrows()]
    if score_frame is not None:
        lines += exclusions(score_frame, table)
    return lines + unaddressed(summary)


def unaddressed(summary: pd.DataFrame, ranked: list[str] | None = None) -> list[str]:
    """The study's claims about networks that this run's networks cannot address, each with the
    fact that keeps it from them; ``ranked``: the benchmarks whose seeds agree on an order
    (:func:`dpllib.analysis.ranked_benchmarks`; None: all)."""
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
    elif ranked is not None and not ranked:
        lines.append(f"{claim}: no benchmark of this run ranks its loss networks (the seeds disagree on their order).")
    else:
        order = ranks(summary, benchmarks=ranked)
        best = order[order["network"].isin(vgg)]["average_rank"].min()
        lines.append(f"The study finds VGG networks without batch norm best: here their best average rank is {best:.3g} "
                     f"of {len(order)} networks (architecture ranks below; differences within the seed noise are not "
                     "resolved).")
    study = [n for n in ran if n in STUDY_POINTS]
    if len(study) < len(STUDY_POINTS):
        lines.append(f"Cannot speak to the study's architecture ranking (VGG-11 best on average): {len(study)} of its "
                     f"{len(STUDY_POINTS)} networks ran ({', '.join(study) or 'none'}).")
    return lines


def no_ranking(agreement: pd.DataFrame, benchmark: str) -> str | None:
    """The sentence a benchmark's chapter shows instead of a ranking when its seeds do not agree
    on the loss networks' order (``agreement``: :func:`dpllib.analysis.seed_agreement`); None
    when they do."""
    row = agreement[agreement["benchmark"] == benchmark]
    if row.empty or bool(row["ranks"].iloc[0]):
        return None
    r = row.iloc[0]
    if not np.isfinite(r["spearman"]):
        measured = f"with {r['seeds']} seed(s) and {r['loss_networks']} loss networks the seeds' agreement cannot be measured"
    else:
        measured = (f"two seeds order its {r['loss_networks']} loss networks alike only to a mean Spearman correlation of "
                    f"{r['spearman']:.2f} (Kendall's W {r['kendall_w']:.2f} over {r['seeds']} seeds), below the "
                    f"{r['required']:.2f} this book requires before it ranks")
    return (f"**No ranking: at this budget this benchmark cannot tell the loss networks apart.** {measured[0].upper()}"
            f"{measured[1:]}. Its scores are shown below, but no network or point is named better than another, "
            "and it is left out of the architecture ranks.")


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
            if not same.empty and not f.differs:
                ours, status = float(same["value"].mean()) * f.scale, "same configuration"
            else:
                ran = ok[ok["benchmark"] == bench]
                status = (f"not comparable: {f.differs}" if f.differs else
                          f"not comparable (needs {f.dataset}, {f.budget} budget)" if len(ran) else "not run here")
                ours = np.nan
            rows.append({"benchmark": bench, "network": f.network, "point": f.point or "-",
                         "measure": f"{f.metric} {f.split}", "figure": f.value, "source": f.source, "this run": ours,
                         "status": status})
    return pd.DataFrame(rows, columns=["benchmark", "network", "point", "measure", "figure", "source", "this run",
                                       "status"])


def other_datasets(table: pd.DataFrame, chosen: dict[str, str]) -> str | None:
    """A sentence naming the (benchmark, data set) pairs of ``table`` left out of an analysis
    that uses only ``chosen`` ({benchmark: data set}); None when nothing is left out."""
    left = [(b, d) for b, d in dict.fromkeys(zip(table["benchmark"], table["dataset"])) if chosen.get(b, d) != d]
    if not left:
        return None
    used = ", ".join(f"{get_benchmark(b).title}: {data_label(b, d)}" for b, d in chosen.items()
                     if b in {x for x, _ in left})
    return ("Across benchmarks each benchmark counts once, on its first data set (" + used + "); also run, each in "
            "its own chapter: " + ", ".join(f"{get_benchmark(b).title} on {data_label(b, d)}" for b, d in left) + ".")


def recommendation_line(answer) -> str:
    """A :class:`dpllib.advice.Recommendation` in one sentence, with the score's interval and
    the cost."""
    c = answer.choice
    if c is None:
        return "Nothing fits the budget: allow more milliseconds or memory per image."
    what = f"{c['network']}{YOURS_MARK if c.get('yours') else ''} {c['alias']} ({shown_weights(c['weights'])})"
    score = f"score {c['score']:.4g} (95% CI {c['ci_low']:.4g} to {c['ci_high']:.4g}, {int(c['n_seeds'])} seeds)"
    cost = f"{c['ms_per_image']:.3g} ms and {c['memory_mb']:.3g} MB per image, {c['gmacs']:.3g} GMACs"
    if not answer.ranked:
        return (f"Any of these: the seeds do not agree on an order of the loss networks, so none is measurably "
                f"better; the cheapest is {what}: {score}; {cost}.")
    tied = int(answer.candidates["tied_with_best"].sum())
    return (f"Use {what}: {score}; {cost}. It is the cheapest of {tied} loss network(s) within seed noise (least "
            f"significant difference {answer.lsd:.3g}) of the best one within the budget.")


def yours_line(table: pd.DataFrame) -> str | None:
    """What the book says of the user's networks in ``table`` (None when it has none)."""
    if "yours" not in table:
        return None
    mine = table[table["yours"].eq(True)][["network", "weights"]].drop_duplicates()
    if mine.empty:
        return None
    names = ", ".join(f"{n} ({shown_weights(w)})" for n, w in mine.itertuples(index=False))
    return (f"Your network{'s' if len(mine) > 1 else ''}, evaluated beside this preset with `dpl evaluate`: {names}; "
            f"marked '{YOURS_MARK.strip()}' in the tables and figures. They are shown and ranked with the preset's loss "
            "networks (the heat maps beside the ImageNet ones), but the statistics (seed noise and agreement, the "
            "conventions) use the preset's loss networks only, so the run's conclusions do not change with them.")


def about(benchmark: str, table: pd.DataFrame) -> str:
    """A chapter's opening, from the use case's descriptor: what is trained and scored, the score
    and its direction, where the numbers come from, and, for a use case the study did not have,
    that it is outside the study."""
    descriptor = get_benchmark(benchmark)
    better = "higher" if descriptor.primary.higher_is_better else "lower"
    lines = [descriptor.description, f"**Score**: {descriptor.primary.label}; {better} is better.",
             f"**Provenance**: {provenance(table)}."]
    if descriptor.study is None:
        lines.append(f"**Outside the study**: {OUTSIDE_STUDY}")
    return "  \n".join(lines)


OUTSIDE_STUDY = ("the study has no such use case, so it has no paper budget, no rows in the protocol table and "
                 "no published figures to stand beside; its numbers are this project's own.")


def learning_intro(benchmark: str) -> str:
    """What a chapter's learning checks compare with: the use case's answers that need no learning."""
    answers = get_benchmark(benchmark).no_learning
    return ("A comparison of loss networks means something only if the models trained with them learned the task. "
            f"These checks compare the controls with answers that need no learning{f' ({answers})' if answers else ''}; "
            "the worst seed must pass.")


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
    made readable (``columns`` renames), network names short (lite0 for efficientnet_lite0) and
    the user's marked (a ``yours`` column), weights files by their name."""
    from IPython.display import HTML

    if "yours" in frame and "network" in frame:  # the user's networks marked by name
        frame = frame.assign(network=shown_names(frame)).drop(columns="yours")
    if "weights" in frame:
        frame = frame.assign(weights=frame["weights"].map(lambda w: w if not isinstance(w, str) else shown_weights(w)))
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
    """The preset's loss networks (and the user's, marked): one row per network and point with
    its weights, ImageNet top-1, parameters, batch norm, module, alias, depth and channels."""
    from .networks import network_info, resolve_point

    rows = []
    for entry in preset["networks"]:
        info = network_info(entry["network"])
        weights = entry_weights(entry)
        files = [w for w in weights if w not in ("imagenet", "random")]
        for p in [resolve_point(info.name, p) for p in entry.get("points") or info.study_points]:
            rows.append({"network": info.name, "yours": bool(entry.get("yours")),
                         "weights": ", ".join(map(shown_weights, weights)),
                         "top1": info.top1 if not files else None,
                         "params (M)": round(info.params / 1e6, 1), "batch norm": info.has_batchnorm,
                         "point": p.study_index, "module": p.module, "alias": p.alias, "depth": round(p.depth, 3),
                         "channels": p.channels, "kind": info.kind,
                         "trained on": "your file" if files else info.training,
                         "weights from": "your file" if files else info.weights_origin.split(" (")[0],
                         "benchmarks": ", ".join(entry.get("benchmarks", [])) or "all"})
    return pd.DataFrame(rows)


def preset_benchmarks(preset: dict) -> pd.DataFrame:
    """The preset's benchmarks: data, score, whether the study had the use case, and the budget
    settings each cell ran with."""

    rows = []
    for bench, dataset in preset_datasets(preset):
        settings = CellConfig(bench, BASELINE, dataset=dataset, budget=preset["budget"],
                              overrides=preset.get("overrides", {}).get(bench, {})).settings()
        descriptor = get_benchmark(bench)
        primary = descriptor.primary
        rows.append({"benchmark": bench, "data": data_label(bench, dataset),
                     "score": f"{primary.label} ({'higher' if primary.higher_is_better else 'lower'} is better)",
                     "in the study": "yes" if descriptor.study else "no: outside the study",
                     "budget settings": ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)})
    return pd.DataFrame(rows)


def outside_the_study(preset: dict) -> str | None:
    """A line naming the preset's use cases the study did not have (they have no protocol rows);
    None when it has none."""
    outside = [get_benchmark(b).title for b, _ in preset_datasets(preset) if get_benchmark(b).study is None]
    if not outside:
        return None
    return f"Outside the study, so without rows here: {', '.join(dict.fromkeys(outside))} ({OUTSIDE_STUDY})"


def protocol_sections(preset: dict) -> list[tuple[str, pd.DataFrame]]:
    """The protocol table (:func:`dpllib.protocol.deviations_table`) in sections, one per use case
    of the study the preset runs, then the rows common to all of them (none when it runs no use
    case of the study)."""
    ran = {b for b, _ in preset_datasets(preset) if get_benchmark(b).study is not None}
    if not ran:
        return []
    table = deviations_table()
    return [(bench, rows.drop(columns="benchmark")) for bench, rows in table.groupby("benchmark", sort=False)
            if bench in ran or bench == "all"]


def records_line(table: pd.DataFrame) -> str:
    """How many cells ran, how many are ok, and their total wall time."""
    cells = table.drop_duplicates("cell_id")
    return (f"Records: {len(cells)} cells, {int((cells['status'] == 'ok').sum())} ok; "
            f"total wall time {cells['wall_time_s'].sum() / 60:.1f} min.")
