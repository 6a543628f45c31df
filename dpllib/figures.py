"""Figures for the notebooks: altair charts (rendered as static SVG, so they work offline) and
image grids."""

from __future__ import annotations

import io

import pandas as pd
import torch


def use_svg() -> None:
    """Render altair charts as inline SVG (no CDN; needs vl-convert-python)."""
    import altair as alt

    alt.renderers.enable("svg")


def image_grid(images: list[torch.Tensor], titles: list[str] | None = None, height: int = 160):
    """A row of 3 x H x W (or 1 x H x W) images (float in [0, 1] or uint8), scaled to ``height``
    px, as an IPython HTML object with captions."""
    import base64

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


def loss_curve(record: dict):
    """Line chart of the training loss per step (one line per point when the cell trained several)."""
    import altair as alt

    curves = record.get("loss_curve") or []
    if not isinstance(curves, dict):
        curves = {"loss": curves}
    frame = pd.DataFrame([{"step": i + 1, "loss": v, "point": alias}
                          for alias, curve in curves.items() for i, v in enumerate(curve)])
    if frame.empty:
        frame = pd.DataFrame({"step": [], "loss": [], "point": []})
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
    """network x extraction point (study index 1-4, early to late) heatmap, the value printed in
    each cell; the point's name is in the tooltip and the tables beside it."""
    import altair as alt

    base = alt.Chart(frame, title=title).encode(
        x=alt.X("study_index:O", title="extraction point (1 = earliest of the study's 4)"),
        y=alt.Y("network:N", title=None))
    rect = base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="viridis")),
                                   tooltip=["network", "alias", alt.Tooltip(f"{value}:Q", format=".4g")])
    text = base.mark_text(fontSize=11).encode(text=alt.Text(f"{value}:Q", format=".3g"),
                                             color=alt.value("white"))
    return (rect + text).properties(width=240)


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


def rows_table(record: dict) -> pd.DataFrame:
    """A record's result rows as a table (point, metric, split, value)."""
    frame = pd.DataFrame(record["rows"])
    return frame[["alias", "metric", "split", "value"]].rename(columns={"alias": "point"}) if not frame.empty else frame


def show_cell(record: dict, examples: dict) -> None:
    """Display one benchmark cell's figures: its example images per point and its loss curves."""
    from IPython.display import display

    use_svg()
    bench = record["config"]["benchmark"]
    network = record["config"]["network"]
    if bench == "similarity":
        metrics = {r["metric"] for r in record["rows"]}
        for metric, title in (("2afc", "uncalibrated"), ("2afc_lin", "lin-calibrated")):
            if metric in metrics:
                display(split_bars(record, metric, f"2AFC per split, {title}"))
    for alias, ex in examples.items():
        if bench == "super_resolution":
            display(image_grid([ex["lr"], ex["bicubic"], ex["sr"], ex["hr"]],
                               ["LR input", "bicubic", f"{network} {alias}", "HR"]))
        elif bench == "segmentation":
            display(image_grid([ex["image"][0], ex["mask"][0], ex["prediction"][0]],
                               ["image", "road mask", f"{network} {alias}: prediction"]))
        elif bench == "autoencoding":
            n = len(ex["original"])
            display(image_grid(list(ex["original"]) + list(ex["reconstruction"]), ["original"] * n + [alias] * n,
                               height=64))
    if record.get("loss_curve"):
        display(loss_curve(record))
