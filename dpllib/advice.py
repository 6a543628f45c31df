"""Which loss network to use for a task and a compute budget: the results table's scores (with
their seed noise) beside each loss network's measured cost (:mod:`dpllib.costs`).

:func:`recommend` keeps the loss networks within the budget, draws the Pareto front of score
against cost, and recommends the cheapest loss network whose score is within seed noise of the
best one within the budget; where the benchmark's seeds do not agree on an order
(:func:`dpllib.analysis.seed_agreement`), every loss network within the budget is as good as any
other and the cheapest is named as such.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import analysis
from .costs import load_point_costs
from .errors import DplError
from .narrative import YOURS_MARK, evidence, recommendation_line
from .registry import get_benchmark


def pareto_front(frame: pd.DataFrame, score: str, cost: str, higher_is_better: bool = True) -> pd.Series:
    """True for each row that no other row beats: none scores at least as well at no more cost,
    better in one of the two."""
    signed = frame[score].to_numpy(float) * (1 if higher_is_better else -1)
    spent = frame[cost].to_numpy(float)
    on = []
    for s, c in zip(signed, spent):
        dominated = ((signed >= s) & (spent <= c) & ((signed > s) | (spent < c))).any()
        on.append(not dominated)
    return pd.Series(on, index=frame.index)


@dataclass
class Recommendation:
    """The answer of :func:`recommend`. ``candidates``: every loss network with its score
    interval, cost, ``within_budget``, ``on_front`` and ``tied_with_best`` (within seed noise of
    the best one within the budget); ``choice``: the recommended row (None: nothing fits the
    budget)."""

    benchmark: str
    candidates: pd.DataFrame
    choice: pd.Series | None
    lsd: float  # least significant difference of two loss networks' means (NaN: one seed)
    ranked: bool  # whether the seeds agree on an order (else every candidate is as good)
    evidence: str
    costs_from: str

    def __str__(self) -> str:
        descriptor = get_benchmark(self.benchmark)
        lines = [f"{descriptor.title}: {descriptor.primary.label} "
                 f"({'higher' if descriptor.primary.higher_is_better else 'lower'} is better)",
                 recommendation_line(self), f"evidence: {self.evidence}", f"cost: {self.costs_from}"]
        shown = self.candidates.sort_values("ms_per_image")
        cols = ["network", "alias", "weights", "yours", "score", "ci_low", "ci_high", "ms_per_image", "memory_mb", "gmacs",
                "within_budget", "on_front", "tied_with_best"]
        lines.append(shown[[c for c in cols if c in shown]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)

    def within(self, max_ms: float | None = None, max_memory: float | None = None) -> Recommendation:
        """The same candidates decided for another budget (None: no limit): which fit it, which
        are tied with the best that fits, and the cheapest of those."""
        out = self.candidates.copy()
        out["within_budget"] = ((out["ms_per_image"] <= (np.inf if max_ms is None else max_ms))
                                & (out["memory_mb"] <= (np.inf if max_memory is None else max_memory)))
        fits = out[out["within_budget"]]
        out["tied_with_best"] = False
        choice = None
        if len(fits):
            signed = fits["score"] * (1 if get_benchmark(self.benchmark).primary.higher_is_better else -1)
            if not self.ranked:
                tied = pd.Series(True, index=fits.index)
            else:
                tied = signed.max() - signed < self.lsd if np.isfinite(self.lsd) else signed == signed.max()
            out.loc[tied[tied].index, "tied_with_best"] = True
            choice = out.loc[tied[tied].index].sort_values(["ms_per_image", "memory_mb"]).iloc[0]
        out["chosen"] = out.index == (choice.name if choice is not None else None)
        return dataclasses.replace(self, candidates=out, choice=choice)


def brackets(table: pd.DataFrame, benchmark: str, weights: str | None = "imagenet",
             costs: pd.DataFrame | str | dict | None = None) -> tuple[pd.DataFrame, Recommendation]:
    """The recommendation per cost bracket: within the cheapest third of the loss networks'
    costs, within two thirds, and without a limit (one row each: the bracket with its limit in
    ms, the choice, its score and cost, how many loss networks are as good); and the unlimited
    :class:`Recommendation` (for its candidates and evidence)."""
    unlimited = recommend(table, benchmark, weights=weights, costs=costs)
    ms = unlimited.candidates["ms_per_image"]
    limits = [(f"cheapest third: under {ms.quantile(1 / 3):.3g} ms", ms.quantile(1 / 3)),
              (f"two thirds: under {ms.quantile(2 / 3):.3g} ms", ms.quantile(2 / 3)), ("no limit", None)]
    rows = []
    for bracket, limit in limits:
        answer = unlimited.within(limit)
        c = answer.choice
        rows.append({"budget per image": bracket,
                     "use": None if c is None else f"{c['network']}{YOURS_MARK if c.get('yours') else ''} {c['alias']}",
                     "score": None if c is None else c["score"],
                     "ms per image": None if c is None else c["ms_per_image"],
                     "as good (within seed noise)": int(answer.candidates["tied_with_best"].sum())})
    return pd.DataFrame(rows), unlimited


def recommend(table: pd.DataFrame, benchmark: str, max_ms: float | None = None, max_memory: float | None = None,
              weights: str | None = "imagenet", costs: pd.DataFrame | str | dict | None = None) -> Recommendation:
    """The loss network to use for ``benchmark`` (a results table of one data set per
    benchmark, e.g. a run's ``on_datasets``), within ``max_ms`` milliseconds and ``max_memory``
    MB per image of the cost measurement (None: no limit), among loss networks of ``weights``
    (None: all) and the user's networks (``dpl evaluate``). ``costs``: a table like :func:`dpllib.costs.load_point_costs`'s, a measurement
    or its file; None: the shipped one for this machine's device kind. A loss network without a
    measured cost is an error naming the command that measures it."""
    sub = table[table["benchmark"] == benchmark]
    if sub.empty:
        raise DplError(f"the table has no {benchmark!r} results; it has {sorted(table['benchmark'].unique())}")
    score_frame = analysis.scores(sub)
    summary = analysis.loss_networks(analysis.seed_summary(score_frame), weights, yours=True)
    if summary.empty:
        raise DplError(f"no {weights or 'any'}-weight loss network has {benchmark} scores in the table")
    cost_table, costs_from = (costs, "given") if isinstance(costs, pd.DataFrame) else load_point_costs(costs)
    merged = summary.merge(cost_table, on=["network", "point"], how="left")
    unmeasured = merged.loc[merged["ms_per_image"].isna(), ["network", "point"]].drop_duplicates()
    if len(unmeasured):
        names = sorted(unmeasured["network"].unique())
        raise DplError(f"no measured cost for {', '.join(n + '/' + p for n, p in unmeasured.itertuples(index=False))}; "
                       f"measure them with: dpl bench point_cost --networks {' '.join(names)}")
    merged["on_front"] = pareto_front(merged, "score", "ms_per_image", get_benchmark(benchmark).primary.higher_is_better)
    lsd = float(analysis.seed_noise(score_frame)["lsd"].iloc[0])
    ranked = benchmark in analysis.ranked_benchmarks(score_frame)
    return Recommendation(benchmark, merged, None, lsd, ranked, evidence(sub, benchmark),
                          costs_from).within(max_ms, max_memory)
