"""Figures for the notebooks: altair charts (rendered as static SVG, so they work offline) and
image grids."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pandas as pd

from .config import BASELINE
from .names import short_name, shown_names
from .registry import get_benchmark

if TYPE_CHECKING:
    import torch


def use_svg() -> None:
    """Render altair charts as inline SVG (no CDN; needs vl-convert-python)."""
    import altair as alt

    alt.renderers.enable("svg")


def image_grid(images: list[torch.Tensor], titles: list[str] | None = None, height: int = 160):
    """A row of 3 x H x W (or 1 x H x W) images (float in [0, 1] or uint8), scaled to ``height``
    px, as an IPython HTML object with captions."""
    import base64

    import torch
    from IPython.display import HTML
    from PIL import Image

    cells = []
    for i, img in enumerate(images):
        img = img.detach().cpu()
        img = (img.float() / 255 if img.dtype == torch.uint8 else img.float()).clamp(0, 1)
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        arr = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
        pil = Image.fromarray(arr)
        pil = pil.resize((max(1, round(pil.width * height / pil.height)), height), Image.NEAREST)
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        src = base64.b64encode(buf.getvalue()).decode()
        title = titles[i] if titles else ""
        cells.append(f'<figure style="display:inline-block;margin:4px"><img src="data:image/png;base64,{src}"/>'
                     f'<figcaption style="text-align:center">{title}</figcaption></figure>')
    return HTML("<div>" + "".join(cells) + "</div>")


def training_losses(record: dict) -> dict[str, list[float]]:
    """A record's training loss per step, per trained model: {name: [...]} (empty where the cell
    trained nothing)."""
    return {name: curve for name, curve in (record.get("loss_curve") or {}).items() if curve}


def loss_curve(record: dict):
    """Line chart of the training loss per step (one line per trained model), or None when the
    cell trained nothing."""
    import altair as alt

    frame = pd.DataFrame([{"step": i + 1, "loss": v, "point": alias}
                          for alias, curve in training_losses(record).items() for i, v in enumerate(curve)])
    if frame.empty:
        return None
    return alt.Chart(frame, title="training loss").mark_line().encode(
        x="step:Q", y=alt.Y("loss:Q", scale=alt.Scale(type="log")), color="point:N")


def split_bars(record: dict, metric: str, title: str | None = None):
    """Grouped bars of ``metric`` per split and point (the 2AFC per-split figure)."""
    import altair as alt

    frame = pd.DataFrame(record["rows"])
    frame = frame[frame["metric"] == metric]
    return alt.Chart(frame, title=title or metric).mark_bar().encode(
        x=alt.X("alias:N", title="point"), y=alt.Y("value:Q", scale=alt.Scale(zero=False)),
        color="alias:N", column=alt.Column("split:N", title=None))


def heatmap(frame: pd.DataFrame, title: str, value: str = "score"):
    """network x extraction point (study index 1-4, early to late) heatmap with the value in each
    cell; a value marked with * is within seed noise of the benchmark's best loss network; the
    user's networks are marked by name."""
    import altair as alt

    frame = frame.copy()
    marked = frame.get("within_noise_of_best", pd.Series(False, index=frame.index)).fillna(False)
    frame["label"] = [f"{v:.3g}" + ("*" if m else "") for v, m in zip(frame[value], marked)]
    frame["network"] = shown_names(frame)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("study_index:O", title="extraction point (1 = earliest of the study's 4)"),
        y=alt.Y("network:N", title=None))
    rect = base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="viridis"), title=None),
                                   tooltip=["network", "alias", alt.Tooltip(f"{value}:Q", format=".4g")])
    text = base.mark_text(fontSize=12).encode(text="label:N", color=alt.value("white"))
    return (rect + text).properties(width=320, height=32 * max(1, frame["network"].nunique()))


def learning_curves(record: dict, title: str):
    """Validation score (or, without validation, training loss) per step of each model of a
    cell; None when the cell trained nothing."""
    import altair as alt

    curves = record.get("val_curve") or {}
    if curves:
        frame = pd.DataFrame([{"step": s, "value": v, "model": a} for a, c in curves.items() for s, v in c])
        y = "validation score"
    else:
        frame = pd.DataFrame([{"step": i + 1, "value": v, "model": a}
                              for a, c in training_losses(record).items() for i, v in enumerate(c)])
        y = "training loss"
    if frame.empty:
        return None
    return alt.Chart(frame, title=title).mark_line(point=bool(curves)).encode(
        x="step:Q", y=alt.Y("value:Q", title=y, scale=alt.Scale(zero=False)), color="model:N").properties(width=420, height=180)


def control_curves(records: list[dict], benchmark: str, network: str | None, seed: int = 0) -> list:
    """Learning curves of the control (baseline) cell and of ``network``'s ImageNet cell (charts
    of cells that trained nothing are left out)."""
    charts = [learning_curves(r, f"{r['config']['network']} ({r['config']['weights']}), seed {seed}") for r in records
              if r["status"] == "ok" and r["config"]["benchmark"] == benchmark and r["config"]["seed"] == seed
              and (r["config"]["network"] == BASELINE
                   or (r["config"]["network"] == network and r["config"]["weights"] == "imagenet"))]
    return [c for c in charts if c is not None]


def _example_cells(cells: list[tuple[dict, dict]], benchmark: str, seed: int) -> list[tuple[dict, dict]]:
    return [(c, e) for c, e in cells if c["benchmark"] == benchmark and c["seed"] == seed]


def best_point_examples(cells: list[tuple[dict, dict]], best: pd.DataFrame, benchmark: str, key: str,
                        seed: int = 0) -> tuple[list[torch.Tensor], list[str], dict]:
    """Each loss network's example (``key``) at its best point (from ``best``: network, weights,
    alias; the user's marked), and the cell's shared reference examples."""
    images, titles, reference = [], [], {}
    shown = dict(zip(zip(best["network"], best["weights"]), zip(best["alias"], shown_names(best))))
    for cfg, ex in _example_cells(cells, benchmark, seed):
        reference = reference or ex.get("reference", {})
        alias, name = shown.get((cfg["network"], cfg["weights"]), (None, None))
        if cfg["network"] == BASELINE:
            images.append(ex[BASELINE][key])
            titles.append(BASELINE)
        elif alias in ex:
            images.append(ex[alias][key])
            titles.append(f"{name} {alias}")
    return images, titles, reference


def scatter_trend(frame: pd.DataFrame, x: str, title: str):
    """score against ``x`` per benchmark, coloured by network, with a least-squares line."""
    import altair as alt

    base = alt.Chart(frame, title=title).encode(x=alt.X(f"{x}:Q", scale=alt.Scale(zero=False)),
                                               y=alt.Y("score:Q", scale=alt.Scale(zero=False)))
    points = base.mark_point(filled=True).encode(color="network:N", tooltip=["network", "alias", "score"])
    line = base.transform_regression(x, "score").mark_line(color="gray")
    return (points + line).properties(width=180, height=150).facet(column="benchmark:N").resolve_scale(y="independent")


def paired(frame: pd.DataFrame, title: str):
    """Pretrained minus random-init score per (network, point), one panel per benchmark; bars
    above zero favour ImageNet pretraining."""
    import altair as alt

    frame = frame.assign(difference=frame["imagenet"] - frame["random"],
                         point=frame["study_index"].astype("Int64").astype(str) + " " + frame["alias"])
    return alt.Chart(frame, title=title).mark_bar().encode(
        x=alt.X("point:N", sort=None), xOffset="network:N", y=alt.Y("difference:Q", title="pretrained - random"),
        color="network:N").properties(width=160, height=150).facet(
        column="benchmark:N").resolve_scale(y="independent")


def cost_front(candidates: pd.DataFrame, title: str, y_title: str):
    """Score against measured cost (ms per image, log scale) of each loss network, coloured by
    network, the Pareto front as a line through its points, the recommended one circled
    (``candidates`` as :class:`dpllib.advice.Recommendation` holds them, with ``chosen``)."""
    import altair as alt

    frame = candidates.assign(network=shown_names(candidates),
                              label=shown_names(candidates) + " " + candidates["alias"])
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("ms_per_image:Q", scale=alt.Scale(type="log"), title="ms per image (loss, forward + backward)"),
        y=alt.Y("score:Q", scale=alt.Scale(zero=False), title=y_title))
    points = base.mark_point(filled=True, size=60).encode(
        color=alt.Color("network:N"), tooltip=["label", alt.Tooltip("score:Q", format=".4g"),
                                               alt.Tooltip("ms_per_image:Q", format=".3g"), "memory_mb", "gmacs"])
    front = base.transform_filter(alt.datum.on_front).mark_line(color="gray", strokeDash=[4, 3]).encode(
        order="ms_per_image:Q")
    chosen = base.transform_filter(alt.datum.chosen).mark_point(size=400, color="black", strokeWidth=2)
    return (front + points + chosen).properties(width=420, height=260)


def rows_table(record: dict) -> pd.DataFrame:
    """A record's result rows as a table (point, metric, split, value)."""
    frame = pd.DataFrame(record["rows"])
    return frame[["alias", "metric", "split", "value"]].rename(columns={"alias": "point"}) if not frame.empty else frame


def show_cell(record: dict, examples: dict) -> None:
    """Display one benchmark cell's figures: its primary metric (and variants of it, such as
    2afc_lin) per split and point, its example outputs per point, and its loss curves. Altair
    is loaded only for a cell that has a chart to draw."""
    from IPython.display import display

    bench = get_benchmark(record["config"]["benchmark"])
    network = record["config"]["network"]
    primary = bench.primary.metric
    for metric in dict.fromkeys(r["metric"] for r in record["rows"]):  # the primary metric and its variants
        splits = {r["split"] for r in record["rows"] if r["metric"] == metric}
        if (metric == primary or metric.startswith(primary + "_")) and len(splits) > 1:
            use_svg()
            display(split_bars(record, metric, f"{metric} per split"))
    outputs = [(f"{short_name(network)} {alias}" if alias != BASELINE else BASELINE, ex[bench.output_key])
               for alias, ex in examples.items() if bench.output_key in ex]
    if outputs:
        use_svg()
        for shown in bench.example_figures(examples.get("reference", {}), outputs):
            display(shown)
    if training_losses(record):
        use_svg()
        display(loss_curve(record))


def chapter_images(benchmark: str, cells: list[tuple[dict, dict]], best: pd.DataFrame, seed: int = 0) -> list:
    """What a benchmark chapter shows of the outputs (seed ``seed``): each network at its best
    point (from ``best``), drawn by the benchmark's ``example_figures``. Returns displayables."""
    from IPython.display import Markdown

    bench = get_benchmark(benchmark)
    images, titles, reference = best_point_examples(cells, best, benchmark, bench.output_key, seed)
    if not images:
        return [Markdown("No examples were recorded.")]
    return bench.example_figures(reference, list(zip(titles, images)))
