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


def training_losses(record: dict) -> dict[str, list[float]]:
    """A record's training loss per step, per model: {alias: [...]} (a similarity cell records
    one list, its lin calibration's)."""
    curves = record.get("loss_curve") or {}
    return curves if isinstance(curves, dict) else {"lin calibration": curves}


def loss_curve(record: dict):
    """Line chart of the training loss per step (one line per point when the cell trained several)."""
    import altair as alt

    frame = pd.DataFrame([{"step": i + 1, "loss": v, "point": alias}
                          for alias, curve in training_losses(record).items() for i, v in enumerate(curve)])
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
    """network x extraction point (study index 1-4, early to late) heatmap with the value in each
    cell; a value marked with * is within seed noise of the benchmark's best loss network."""
    import altair as alt

    frame = frame.copy()
    marked = frame.get("within_noise_of_best", pd.Series(False, index=frame.index)).fillna(False)
    frame["label"] = [f"{v:.3g}" + ("*" if m else "") for v, m in zip(frame[value], marked)]
    frame["network"] = frame["network"].map(short_name)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("study_index:O", title="extraction point (1 = earliest of the study's 4)"),
        y=alt.Y("network:N", title=None))
    rect = base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="viridis"), title=None),
                                   tooltip=["network", "alias", alt.Tooltip(f"{value}:Q", format=".4g")])
    text = base.mark_text(fontSize=12).encode(text="label:N", color=alt.value("white"))
    return (rect + text).properties(width=320, height=32 * max(1, frame["network"].nunique()))


def learning_curves(record: dict, title: str):
    """Validation score (or, without validation, training loss) per step of each model of a cell."""
    import altair as alt

    curves = record.get("val_curve") or {}
    if curves:
        frame = pd.DataFrame([{"step": s, "value": v, "model": a} for a, c in curves.items() for s, v in c])
        y = "validation score"
    else:
        frame = pd.DataFrame([{"step": i + 1, "value": v, "model": a}
                              for a, c in training_losses(record).items() for i, v in enumerate(c)])
        y = "training loss"
    return alt.Chart(frame, title=title).mark_line(point=bool(curves)).encode(
        x="step:Q", y=alt.Y("value:Q", title=y, scale=alt.Scale(zero=False)), color="model:N").properties(width=420, height=180)


def control_curves(records: list[dict], benchmark: str, seed: int = 0, network: str = "efficientnet_lite0") -> list:
    """Learning curves of the control (baseline) cell and of ``network``'s ImageNet cell."""
    return [learning_curves(r, f"{r['config']['network']} ({r['config']['weights']}), seed {seed}") for r in records
            if r["status"] == "ok" and r["config"]["benchmark"] == benchmark and r["config"]["seed"] == seed
            and (r["config"]["network"] == "baseline"
                 or (r["config"]["network"] == network and r["config"]["weights"] == "imagenet"))]


def _example_cells(cells: list[tuple[dict, dict]], benchmark: str, seed: int) -> list[tuple[dict, dict]]:
    return [(c, e) for c, e in cells if c["benchmark"] == benchmark and c["seed"] == seed]


def best_point_examples(cells: list[tuple[dict, dict]], best: pd.DataFrame, benchmark: str, key: str,
                        seed: int = 0) -> tuple[list[torch.Tensor], list[str], dict]:
    """Each network's example (``key``) at its best point (from ``best``: network, alias), in
    the order of ``best``, and the cell's shared reference examples."""
    images, titles, reference = [], [], {}
    chosen = dict(zip(best["network"], best["alias"]))
    for cfg, ex in _example_cells(cells, benchmark, seed):
        reference = reference or ex.get("reference", {})
        if cfg["network"] == "baseline":
            images.append(ex["baseline"][key])
            titles.append("baseline")
        elif cfg["weights"] == "imagenet" and chosen.get(cfg["network"]) in ex:
            images.append(ex[chosen[cfg["network"]]][key])
            titles.append(f"{short_name(cfg['network'])} {chosen[cfg['network']]}")
    return images, titles, reference


def overlay(image: torch.Tensor, mask: torch.Tensor, prediction: torch.Tensor,
            imaged: torch.Tensor | None = None) -> torch.Tensor:
    """An aerial image (3 x H x W uint8) with true roads the prediction found in green, missed
    ones in blue and wrongly predicted ones in red; outside ``imaged`` (the no-data areas, left
    out of the scores) nothing is coloured."""
    out = image.clone()
    m, p = mask[0] > 127, prediction[0] > 127
    inside = imaged[0] > 127 if imaged is not None else torch.ones_like(m)
    m, p = m & inside, p & inside
    for colour, where in (((0, 200, 0), m & p), ((40, 90, 255), m & ~p), ((230, 30, 30), ~m & p)):
        for c, v in enumerate(colour):
            out[c][where] = v
    return out
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


def short_name(network: str) -> str:
    """A network's name for narrow tables and captions: efficientnet_lite0 -> lite0."""
    return network.replace("efficientnet_", "")


def rows_table(record: dict) -> pd.DataFrame:
    """A record's result rows as a table (point, metric, split, value)."""
    frame = pd.DataFrame(record["rows"])
    return frame[["alias", "metric", "split", "value"]].rename(columns={"alias": "point"}) if not frame.empty else frame


# the example a trained point records, per benchmark (the rest is in the cell's "reference")
OUTPUT_KEY = {"super_resolution": "sr", "segmentation": "prediction", "autoencoding": "reconstruction",
              "similarity": "decisions"}


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
    ref = examples.get("reference", {})
    key = OUTPUT_KEY[bench]
    for alias, ex in examples.items():
        if key not in ex:  # the shared reference entry
            continue
        title = f"{short_name(network)} {alias}" if alias != "baseline" else "baseline"
        if bench == "super_resolution":
            display(image_grid([ref["bicubic"], ex["sr"], ref["hr"]], ["bicubic", title, "HR"]))
        elif bench == "segmentation":
            display(image_grid([ref["image"], overlay(ref["image"], ref["mask"], ex["prediction"], ref.get("imaged"))],
                               ["aerial image", title]))
        elif bench == "autoencoding":
            n = len(ref["original"])
            display(image_grid(list(ref["original"]) + list(ex["reconstruction"]), ["original"] * n + [title] * n,
                               height=64))
    if record.get("loss_curve"):
        display(loss_curve(record))


def chapter_images(benchmark: str, cells: list[tuple[dict, dict]], best: pd.DataFrame, seed: int = 0) -> list:
    """What a benchmark chapter shows of the outputs (seed ``seed``), each network at its best
    point: SR crops (LR, bicubic, outputs, HR), road overlays, autoencoder reconstructions, or
    the 2AFC triplets the networks disagree on. Returns displayable objects."""
    from IPython.display import Markdown

    images, titles, ref = best_point_examples(cells, best, benchmark, OUTPUT_KEY[benchmark], seed)
    if not images:
        return [Markdown("No examples were recorded.")]
    if benchmark == "super_resolution":
        lr_big = torch.nn.functional.interpolate(ref["lr"][None].float(), scale_factor=4, mode="nearest")[0].byte()
        return [image_grid([lr_big, ref["bicubic"], *images, ref["hr"]], ["LR (x4 nearest)", "bicubic", *titles, "HR"],
                           height=192),
                Markdown("The centre 128 x 128 pixels of Set5's first image, x4; each network at its best point.")]
    if benchmark == "segmentation":
        shown = [overlay(ref["image"], ref["mask"], p, ref.get("imaged")) for p in images]
        return [image_grid([ref["image"], *shown], ["aerial image", *titles], height=220),
                Markdown("Green: roads found; blue: roads missed; red: predicted where the map has none. "
                         "White areas have no imagery and are not scored.")]
    if benchmark == "autoencoding":
        out = [image_grid(list(ref["original"]), ["original"] * len(ref["original"]), height=64)]
        out += [image_grid(list(r), [t] * len(r), height=64) for r, t in zip(images, titles)]
        return out
    return disagreements(cells, best, seed)


def disagreements(cells: list[tuple[dict, dict]], best: pd.DataFrame, seed: int = 0, limit: int = 3) -> list:
    """Per split, up to ``limit`` 2AFC triplets on which the loss networks (each at its best
    point) disagree, with the choice of each (and of pixel L2) and the answer."""
    from IPython.display import Markdown

    from .datasets import equal_mse_2afc, severity_2afc

    decisions, titles, ref = best_point_examples(cells, best, "similarity", "decisions", seed)
    cfg = next(c for c, _ in _example_cells(cells, "similarity", seed))
    if cfg["dataset"] not in ("equal_mse", "severity"):
        return [Markdown("The triplets are shown for the generated sets only.")]
    from .config import CellConfig

    n = CellConfig.from_dict({**cfg, "points": cfg["points"]}).settings()["synthetic_n"]
    sets = (equal_mse_2afc if cfg["dataset"] == "equal_mse" else severity_2afc)(cfg["data_root"], n, seed=0)
    out = []
    for split in decisions[0]:
        data = sets[split]
        choices = torch.stack([d[split] for d in decisions])  # networks x triplets: True = p0 nearer
        networks = torch.tensor([t != "baseline" for t in titles])
        disputed = (choices[networks].any(0) & ~choices[networks].all(0)).nonzero().flatten()[:limit]
        t = data.tensors()
        for i in disputed.tolist():
            answer = "p1" if ref["judge"][split][i] > 0.5 else "p0"
            picks = {"pixel L2" if name == "baseline" else name: "p0" if c else "p1"
                     for name, c in zip(titles, choices[:, i].tolist())}
            said = ", ".join(f"{name}: {pick} {'✓' if pick == answer else '✗'}" for name, pick in picks.items())
            out.append(image_grid([t["ref"][i], t["p0"][i], t["p1"][i]], ["reference", "p0", "p1"], height=96))
            out.append(Markdown(f"*{split}* triplet {i}: closer by construction **{answer}**; {said}"))
    return out or [Markdown("The networks agree on every triplet.")]
