"""Perceptual similarity (Zhang et al. 2018, LPIPS) as the study evaluates loss networks, on
BAPPS or on a generated 2AFC set with known answers (equal-MSE; severity as a sanity check).

Distance per point: unit-normalise features over channels, squared difference, sum over
channels (uncalibrated) or learned non-negative 1x1 weights ("lin", trained with LPIPS's
ranking network), spatial mean. Scores: 2AFC per split and their unweighted mean; JND mAP.
All points of one network come from one pass of feature computation over each batch.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ..benchmark import (BASELINE, BatchOrder, Benchmark, CellCheckpoint, CellConfig, Check, DataSet, Deviation,
                         FitCheckpoint, Metric, NetworkBuffers, ReferenceFigure, Study, Trainee, alias_of,
                         cell_loss_network, datasets, feature_distance_map, fit, make_record, metrics, pick_device,
                         row, seed_everything, steps_per_epoch, training_steps, unit_normalize)


NAME = "similarity"
DATASETS = (DataSet("bapps", "BAPPS", "study", "real images, human judgements"),
            DataSet("nights", "NIGHTS", "beyond", "generated images, human judgements of holistic similarity "
                    "(DreamSim); splits val and test, lin calibrated on train"),
            DataSet("equal_mse", "equal-MSE 2AFC", "stand-in", "synthetic answers on real BSDS500 photos, four grades of difficulty; pixel distance scores 0.5; stands in for BAPPS"),
            DataSet("severity", "severity 2AFC", "sanity", "synthetic answers on real BSDS500 photos; a sanity check"))
# Named budgets (see dpllib.benchmark.Benchmark.budgets): every setting the trainer reads.
BUDGETS = {
    "smoke": {"network_mode": "train", "steps": 20, "epochs": None, "batch_size": 50, "lr": 1e-2, "eval_limit": None,
              "synthetic_n": 30},
    "offline": {"network_mode": "train", "steps": 60, "epochs": None, "batch_size": 50, "lr": 1e-2,
                "eval_limit": None, "synthetic_n": 200},
}

# The study's protocol (the authors' code; Study.budget): every setting the trainer reads.
PAPER_BUDGET = {"network_mode": "train", "steps": None, "epochs": 10, "batch_size": 256, "lr": 1e-3, "eval_limit": None,
                "synthetic_n": 500}

PROTOCOL = (
    Deviation(NAME, "epochs", "10 epochs (5 constant + 5 linear decay)", "max_epochs=10, constant then linear decay (perceptual_metric/experiment.py)",
              10, "same; offline: 60 steps on the generated set"),
    Deviation(NAME, "steps", "-", "-", None, "offline only: a step budget (60) for the lin calibration"),
    Deviation(NAME, "batch_size", "-", "256", 256, "same as the authors; LPIPS used 50"),
    Deviation(NAME, "lr", "Adam", "Adam lr 1e-3, betas (0.5, 0.999)", 1e-3, "same; offline 1e-2 for 60 steps"),
    Deviation(NAME, "eval_limit", "all validation triplets", "all", None, "same (None: all)"),
    Deviation(NAME, "synthetic_n", "-", "-", 500, "only for the generated 2AFC sets (equal-MSE, severity): triplets per split; offline 200"),
    Deviation(NAME, "variants", "baseline, lin, tune, scratch", "baseline (default), lin, tune, scratch",
              None, "uncalibrated (= baseline) and lin are run; tune and scratch retrain the network itself and are not implemented"),
    Deviation(NAME, "network_mode", "-", "training mode while lin calibrates: Lightning's train() reaches the loss "
              "network (batch statistics, running statistics updated and used by the lin scores; dropout); the "
              "uncalibrated variant never trains (perceptual_metric/experiment.py)", "train",
              "same (offline too); weights frozen"),
    Deviation(NAME, "lin calibration", "LPIPS lin", "dropout before the 1x1 conv, default initialisation clamped to >= 0, "
              "per-epoch schedule 1, ..., 1, .8, .6, .4, .2, batches shuffled without replacement (perceptual_metric/experiment.py)",
              None, "same (LinCalibration, epoch_schedule; LPIPS's own lin is built alike); offline: the schedule's "
              "epochs are passes over the generated set's 800 training triplets (60 steps of 50: 4 epochs, "
              "factors 1, 1, 1, .5)"),
    Deviation(NAME, "JND", "JND mAP", "one mAP over both JND val splits pooled (perceptual_metric/experiment.py score_jnd)",
              None, "both reported: the authors' pooled mAP (split 'pooled') and LPIPS's mAP per split with their mean "
              "(split 'mean')"),
    Deviation(NAME, "offline data", "BAPPS", "BAPPS", None,
              "offline: BAPPS is not on this machine; the equal-MSE 2AFC set (BSDS500 patches, answers known, pixel L2 = 0.5, graded so ImageNet features score 0.6-0.95) stands in; it is not human judgement"),
)

SHOWN_TRIPLETS = 8  # triplets per split whose images a record keeps (the book shows disagreements among them)


class RankingNet(nn.Module):
    """LPIPS's small network mapping (d0, d1) to P(p1 judged closer)."""

    def __init__(self, hidden: int = 32, eps: float = 0.1):
        super().__init__()
        self.eps = eps
        self.net = nn.Sequential(nn.Conv2d(5, hidden, 1), nn.LeakyReLU(0.2), nn.Conv2d(hidden, hidden, 1),
                                 nn.LeakyReLU(0.2), nn.Conv2d(hidden, 1, 1), nn.Sigmoid())

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        d0, d1 = d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1)
        x = torch.cat([d0, d1, d0 - d1, d0 / (d1 + self.eps), d1 / (d0 + self.eps)], dim=1)
        return self.net(x).view(-1)


def _data(cfg: CellConfig, settings: dict) -> tuple[dict, dict, list[datasets.TwoAFC]]:
    """(val 2AFC by split, JND by split, train 2AFC sets)."""
    if cfg.dataset == "bapps":
        val = {s: datasets.bapps_2afc("val", s, cfg.data_root) for s in datasets.TWOAFC_VAL}
        jnd = {s: datasets.bapps_jnd(s, cfg.data_root) for s in datasets.JND_VAL}
        train = [datasets.bapps_2afc("train", s, cfg.data_root) for s in datasets.TWOAFC_TRAIN]
    elif cfg.dataset == "nights":  # DreamSim's 2AFC on its val and test splits; lin learns from train
        val, jnd = {s: datasets.nights_2afc(s, cfg.data_root) for s in ("val", "test")}, {}
        train = [datasets.nights_2afc("train", cfg.data_root)]
    else:  # the generated sets (CellConfig checked the name): seed 0 to score, seed 1 to calibrate
        make = {"severity": datasets.severity_2afc, "equal_mse": datasets.equal_mse_2afc}[cfg.dataset]
        n = settings["synthetic_n"]
        val, jnd = make(cfg.data_root, n, seed=0), {}
        train = list(make(cfg.data_root, n, seed=1).values())
    return val, jnd, train


class Distances:
    """Per-point distances of image pairs from one feature pass per batch."""

    def __init__(self, cfg: CellConfig, device: torch.device, network_mode: str = "eval"):
        self.baseline = cfg.network == BASELINE
        self.device = device
        if not self.baseline:
            self.net = cell_loss_network(cfg, cfg.points, "imagenet", network_mode, device)

    def features(self, images: torch.Tensor, training: bool = False) -> list[torch.Tensor]:
        """Each point's features of uint8 images; ``training``: the loss network in training
        mode when its ``network_mode`` is 'train' (the lin calibration), else eval mode."""
        images = images.to(self.device).float() / 255
        if self.baseline:
            return [images]
        self.net.train(training)
        with torch.no_grad():
            return self.net.features(images)

    def distance(self, a: torch.Tensor, b: torch.Tensor, lin: torch.Tensor | None = None) -> torch.Tensor:
        if self.baseline:
            return (a - b).pow(2).mean(dim=(1, 2, 3))
        return feature_distance_map(a, b, "lpips", lin).mean(dim=(1, 2, 3))


def _pair_distances(dist: Distances, stacks: list[torch.Tensor], pairs: list[tuple[int, int]],
                    variants: dict, batch: int, n: int) -> dict[tuple[str, int, int], torch.Tensor]:
    """Distances of image pairs, {(variant, point index, pair index): n distances}. The
    ``stacks`` (uint8 image batches) go through the network together, once per batch, and
    every variant (uncalibrated, lin) is scored from those same features."""
    parts: dict[tuple[str, int, int], list[torch.Tensor]] = defaultdict(list)
    for start in range(0, n, batch):
        k = min(n, start + batch) - start
        feats = dist.features(torch.cat([t[start:start + k] for t in stacks]))
        with torch.no_grad():
            for variant, lins in variants.items():
                for i, f in enumerate(feats):
                    for j, (a, b) in enumerate(pairs):
                        d = dist.distance(f[a * k:(a + 1) * k], f[b * k:(b + 1) * k], lins[i] if lins else None)
                        parts[variant, i, j].append(d.cpu())
    return {key: torch.cat(v) for key, v in parts.items()}


def _score_2afc(dist: Distances, data: datasets.TwoAFC, n_points: int, variants: dict, batch: int,
                limit: int | None) -> tuple[dict[str, list[float]], list[torch.Tensor]]:
    """({variant: 2AFC score per point}, per point the uncalibrated choice of each triplet:
    True where p0 is nearer) of one 2AFC split."""
    t = data.tensors()
    n = len(data) if limit is None else min(limit, len(data))
    d = _pair_distances(dist, [t["ref"], t["p0"], t["p1"]], [(0, 1), (0, 2)], variants, batch, n)
    scores = {v: [metrics.twoafc_score(d[v, i, 0], d[v, i, 1], t["judge"][:n]) for i in range(n_points)] for v in variants}
    return scores, [d["2afc", i, 0] < d["2afc", i, 1] for i in range(n_points)] if "2afc" in variants else []


def ssim_2afc(data: datasets.TwoAFC) -> float:
    """The 2AFC score of SSIM (scikit-image, Gaussian window, on each channel) as a distance
    (1 - SSIM): the classical reference."""
    from skimage.metrics import structural_similarity

    t = data.tensors()
    ref, p0, p1 = (t[k].permute(0, 2, 3, 1).numpy() for k in ("ref", "p0", "p1"))

    def distance(a, b):
        return torch.tensor([1 - structural_similarity(x, y, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                                       use_sample_covariance=False, data_range=255)
                             for x, y in zip(a, b)])

    return metrics.twoafc_score(distance(ref, p0), distance(ref, p1), t["judge"])


def _score_jnd(dist: Distances, jnd: dict, n_points: int, variants: dict, batch: int,
               limit: int | None) -> dict[str, dict[str, list[float]]]:
    """{split: {variant: JND mAP per point}} of each JND split, and of all splits pooled
    (split "pooled": one mAP over every pair, as the authors' code scores JND)."""
    distances, same = {}, {}
    for split, data in jnd.items():
        t = data.tensors()
        n = len(data) if limit is None else min(limit, len(data))
        d = _pair_distances(dist, [t["p0"], t["p1"]], [(0, 1)], variants, batch, n)
        distances[split] = {(v, i): torch.as_tensor(d[v, i, 0]).reshape(-1) for v in variants for i in range(n_points)}
        same[split] = torch.as_tensor(t["same"][:n]).reshape(-1)
    if len(jnd) > 1:
        distances["pooled"] = {k: torch.cat([distances[s][k] for s in jnd]) for k in distances[next(iter(jnd))]}
        same["pooled"] = torch.cat([same[s] for s in jnd])
    return {split: {v: [metrics.jnd_map(distances[split][v, i], same[split]) for i in range(n_points)] for v in variants}
            for split in distances}


def _split_rows(metric: str, per_split: dict[str, list[float]], points: list[str], aliases: list[str]) -> list[dict]:
    """Rows of each split's score per point, and their unweighted mean over splits."""
    rows = []
    for i, (p, a) in enumerate(zip(points, aliases)):
        rows += [row(p, a, metric, scores[i], split) for split, scores in per_split.items()]
        rows.append(row(p, a, metric, sum(v[i] for v in per_split.values()) / len(per_split), "mean"))
    return rows


class LinCalibration(nn.Module):
    """LPIPS 'lin' for several points, built as LPIPS and the study's code build it: per point,
    dropout (p = 0.5) on the squared differences of unit-normalised features, then channel
    weights (a bias-free 1 x 1 convolution with PyTorch's default initialisation, clamped to
    >= 0 during training), a spatial mean; each point scored by its own ranking network."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.lins = nn.ParameterList(nn.Conv2d(c, 1, 1, bias=False).weight for c in channels)  # 1 x C x 1 x 1
        self.dropout = nn.Dropout(0.5)
        self.rankers = nn.ModuleList(RankingNet() for _ in channels)

    def distance(self, point: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """N distances of two N x C x h x w feature batches at ``point`` (dropout in training)."""
        diff = (unit_normalize(a.float()) - unit_normalize(b.float())).pow(2)
        return (self.dropout(diff) * self.lins[point]).sum(dim=1).mean(dim=(1, 2))

    def clamp_(self) -> None:
        """Channel weights to >= 0 (through ``.data``, as the study's Lightning hook does)."""
        for w in self.lins:
            w.data = w.data.clamp(min=0)


class TripletSampler:
    """Triplet batches across several 2AFC sets, shuffled each epoch and drawn without
    replacement (the last incomplete batch of an epoch is skipped); resumable."""

    def __init__(self, sets: list[datasets.TwoAFC], batch: int, generator: torch.Generator):
        self.tensors = [d.tensors() for d in sets]
        sizes = torch.tensor([len(d) for d in sets])
        self.total, self.batch = int(sizes.sum()), batch
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.order = BatchOrder(self.total, batch, generator)

    def __call__(self, _step: int) -> dict[str, torch.Tensor]:
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("ref", "p0", "p1", "judge")}
        for j in self.order().tolist():
            d = int(torch.searchsorted(self.offsets, torch.tensor(j), right=True)) - 1
            local = j - int(self.offsets[d])
            for k in parts:
                parts[k].append(self.tensors[d][k][local])
        return {k: torch.stack(v) for k, v in parts.items()}

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.order.load_state_dict(state)


def epoch_schedule(epoch: int, epochs: int) -> float:
    """The study's learning-rate factor of ``epoch`` (0-based) of ``epochs``: 1 for the first
    half, then down by 1 / (the second half's epochs) per epoch: 1, 1, 1, 1, 1, 1, .8, .6, .4,
    .2 for 10 epochs (Lightning's ConstantLR then LinearLR, stepped per epoch)."""
    half = epochs // 2
    return 1.0 if epoch < half else 1.0 - (epoch - half) / max(1, epochs - half)


def train_lin(dist: Distances, train: list[datasets.TwoAFC], settings: dict, gen: torch.Generator,
              progress: bool = True, checkpoint: FitCheckpoint | None = None) -> tuple[list[torch.Tensor], dict]:
    """LPIPS 'lin' as the study's code trains it (:class:`LinCalibration`): a ranking net per
    point on BCE against the judgement, Adam(lr, betas=(0.5, 0.999)), the learning-rate factor
    of :func:`epoch_schedule`, triplets shuffled without replacement; the channel weights are
    clamped to >= 0 after each forward pass and before its backward pass (where Lightning's
    ``on_before_zero_grad`` clamps them), so the last step's weights are kept as they are. In
    training mode (``network_mode`` 'train') each distance's two images go through the loss
    network in passes of their own (the reference twice), as in their code. Returns the
    weights per point and the fit report."""
    device = dist.device
    calibration = LinCalibration([p.channels for p in dist.net.points]).to(device)
    opt = torch.optim.Adam(calibration.parameters(), lr=settings["lr"], betas=(0.5, 0.999))
    sampler = TripletSampler(train, settings["batch_size"], gen)
    steps, per_epoch = training_steps(settings, sampler.total), steps_per_epoch(settings, sampler.total)
    epochs = -(-steps // per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: epoch_schedule(s // per_epoch, epochs))
    bce = nn.BCELoss()
    separately = dist.net.network_mode == "train"

    def train_step(b: dict[str, torch.Tensor]) -> float:
        calibration.train()
        k = len(b["judge"])
        if separately:
            pairs = [(dist.features(b["ref"], True), dist.features(b["p0"], True)),
                     (dist.features(b["ref"], True), dist.features(b["p1"], True))]
        else:
            feats = dist.features(torch.cat([b["ref"], b["p0"], b["p1"]]))
            pairs = [([f[:k] for f in feats], [f[k:2 * k] for f in feats]),
                     ([f[:k] for f in feats], [f[2 * k:] for f in feats])]
        judge = b["judge"].to(device).float()
        loss = 0.0
        for i, ranker in enumerate(calibration.rankers):
            d0, d1 = (calibration.distance(i, x[i], y[i]) for x, y in pairs)
            loss = loss + bce(ranker(d0, d1).clamp(1e-6, 1 - 1e-6), judge)
        calibration.clamp_()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return loss.item() / len(calibration.rankers)

    report = fit([Trainee("lin", calibration, opt, train_step, scheduler=sched)], sampler, steps, "lin calibration",
                 progress=progress, checkpoint=checkpoint, resumables=[sampler, NetworkBuffers(dist.net)])["lin"]
    calibration.eval()
    return [w.detach() for w in calibration.lins], report


def evaluate(cfg: CellConfig, settings: dict, gen: torch.Generator, device: torch.device,
             progress: bool = True, checkpoint: CellCheckpoint | None = None) -> dict:
    """Score one network's points (uncalibrated, and lin after calibrating it) on every
    validation split; returns rows, the calibration's curve and data sizes."""
    val, jnd, train = _data(cfg, settings)
    dist = Distances(cfg, device, settings["network_mode"])
    points = cfg.points if not dist.baseline else [BASELINE]
    n = len(points)
    aliases = [alias_of(cfg.network, p) for p in points]
    variants = {"2afc": None}
    batch, limit = settings["batch_size"], settings["eval_limit"]
    # uncalibrated first, with the network as loaded; lin after calibrating it (a training-mode
    # calibration updates the network's running statistics, which the lin scores then use, as
    # in the study's code, while its uncalibrated metric never trains)
    scored = {s: _score_2afc(dist, d, n, variants, batch, limit) for s, d in val.items()}
    jnd_scores = _score_jnd(dist, jnd, n, variants, batch, limit) if jnd else {}
    report: dict = {"loss_curve": {}}
    if not dist.baseline:
        lin = {"2afc_lin": None}
        lin["2afc_lin"], fitted = train_lin(dist, train, settings, gen, progress,
                                            checkpoint.fit("lin") if checkpoint is not None else None)
        report = {key: {"lin": value} for key, value in fitted.items()}  # one record shape: per trained model
        for split, data in val.items():
            scored[split][0].update(_score_2afc(dist, data, n, lin, batch, limit)[0])
        for split, per_variant in (_score_jnd(dist, jnd, n, lin, batch, limit) if jnd else {}).items():
            jnd_scores[split].update(per_variant)
        variants.update(lin)
    twoafc = {s: v[0] for s, v in scored.items()}
    jnd_pooled = jnd_scores.pop("pooled", None)
    examples = {alias: {"decisions": {s: v[1][i] for s, v in scored.items()}} for i, alias in enumerate(aliases)}
    examples["reference"] = {"judge": {s: d.tensors()["judge"] for s, d in val.items()},
                             "triplets": {s: {k: d.tensors()[k][:SHOWN_TRIPLETS] for k in ("ref", "p0", "p1")}
                                          for s, d in val.items()}}
    references = []
    if dist.baseline:  # the classical reference beside pixel L2
        ssim = {s: ssim_2afc(d) for s, d in val.items()}
        references = [{"method": "SSIM", "metric": "2afc", "split": s, "value": v} for s, v in ssim.items()]
        references.append({"method": "SSIM", "metric": "2afc", "split": "mean", "value": sum(ssim.values()) / len(ssim)})
    rows = []
    for variant in variants:
        rows += _split_rows(variant, {s: v[variant] for s, v in twoafc.items()}, points, aliases)
        if jnd_scores:  # jnd_map, jnd_map_lin: per split, their mean (LPIPS's), and pooled (the authors')
            rows += _split_rows("jnd_map" + variant[4:], {s: v[variant] for s, v in jnd_scores.items()},
                                points, aliases)
        if jnd_pooled:
            rows += [row(p, a, "jnd_map" + variant[4:], jnd_pooled[variant][i], "pooled")
                     for i, (p, a) in enumerate(zip(points, aliases))]
    return {"rows": rows, **report, "references": references, "examples": examples,
            "data": {"val_splits": {s: len(d) for s, d in val.items()},
                     "jnd_splits": {s: len(d) for s, d in jnd.items()},
                     "train_items": sum(len(d) for d in train),
                     "kind": next(d.label for d in DATASETS if d.name == cfg.dataset)}}


def run(cfg: CellConfig | dict, progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """Evaluate one network's points (uncalibrated and lin, the calibration resuming from
    ``checkpoint_dir``); returns the result record and the examples ({alias: {decisions}},
    the judgements)."""
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(cfg)
    checkpoint = CellCheckpoint(checkpoint_dir, cfg) if checkpoint_dir else None
    return make_record(cfg, lambda: evaluate(cfg, cfg.settings(), seed_everything(cfg.seed),
                                             pick_device(cfg.device), progress, checkpoint))


# --------------------------------------------------------------------------- what the book shows


GRADED_RANGE = (0.6, 0.95)  # the equal-MSE set is graded so that ImageNet features score inside this


def learning_checks(table, references) -> list[Check]:
    """On the equal-MSE set: pixel L2 scores 0.5 +- 0.05 (it cannot know the answer, by
    construction), and every ImageNet loss network scores inside ``GRADED_RANGE`` (the set is
    neither saturated nor impossible, so points can be told apart). Checks of the set, not of a
    training."""
    from ..benchmark import learning_check, per_seed

    ok = table[(table["status"] == "ok") & (table["metric"] == "2afc") & (table["split"] == "mean")
               & (table["dataset"] == "equal_mse")]
    pixel = ok[ok["network"] == BASELINE]
    checks = []
    if not pixel.empty:
        distance = (per_seed(pixel) - 0.5).abs()
        checks.append(learning_check(NAME, "pixel L2 2AFC within 0.5 +- 0.05 (pixel distance cannot know the answer)",
                                     0.05, distance, lambda v, r: abs(v) <= r, worst=distance.max()))
    imagenet = ok[(ok["network"] != BASELINE) & (ok["weights"] == "imagenet")]
    if not imagenet.empty:
        by_model = imagenet.groupby(["network", "alias"])["value"].mean()
        low, high = GRADED_RANGE
        name = by_model.index.map(lambda k: f"{k[0]} {k[1]}")
        checks += [
            learning_check(NAME, f"every ImageNet loss network's 2AFC >= {low} (the hardest triplets are not impossible)",
                           low, by_model, failing=", ".join(name[by_model < low])),
            learning_check(NAME, f"every ImageNet loss network's 2AFC <= {high} (the set is not saturated)", high,
                           by_model, lambda v, r: v <= r, worst=by_model.max(), failing=", ".join(name[by_model > high]))]
    return checks


def example_figures(reference: dict, outputs: list[tuple[str, dict]], limit: int = 3) -> list:
    """Per split, up to ``limit`` of the recorded triplets on which the loss networks (``outputs``:
    each network's choices, True where p0 is nearer) disagree, with each one's choice (the
    baseline's is pixel L2's) and the answer."""
    from IPython.display import Markdown

    from ..benchmark import image_grid

    triplets = reference.get("triplets", {})
    out = []
    for split, shown in triplets.items():
        k = len(shown["ref"])
        choices = torch.stack([o[split][:k] for _, o in outputs])  # networks x triplets
        networks = torch.tensor([t != BASELINE for t, _ in outputs])
        if not networks.any():
            continue
        disputed = (choices[networks].any(0) & ~choices[networks].all(0)).nonzero().flatten()[:limit]
        for i in disputed.tolist():
            answer = "p1" if reference["judge"][split][i] > 0.5 else "p0"
            picks = {"pixel L2" if name == BASELINE else name: "p0" if c else "p1"
                     for (name, _), c in zip(outputs, choices[:, i].tolist())}
            said = ", ".join(f"{name}: {pick} {'✓' if pick == answer else '✗'}" for name, pick in picks.items())
            out.append(image_grid([shown["ref"][i], shown["p0"][i], shown["p1"][i]], ["reference", "p0", "p1"],
                                  height=96))
            out.append(Markdown(f"*{split}* triplet {i}: closer by construction **{answer}**; {said}"))
    return out or [Markdown(f"The networks agree on each of the first {SHOWN_TRIPLETS} triplets of every split.")]


# Published figures (../shared/paper/NOTES.md and the sources named), comparable only for the same configuration
REFERENCE_FIGURES = tuple(
    ReferenceFigure("2afc", split, network, point, "imagenet", "bapps", "paper", value,
                    "third-party BAPPS 2AFC, uncalibrated", scale=100)
    for network, point, figures in (("vgg11", "features.19", {"cnn": 81.4, "color": 62.0, "traditional": 76.1}),
                                    ("vgg16", "features.29", {"cnn": 80.3, "color": 60.8, "traditional": 75.0}))
    for split, value in figures.items()) + tuple(
    ReferenceFigure("2afc_lin", split, "alexnet", None, "imagenet", "bapps", "paper", value,
                    "LPIPS alex-lin, Zhang et al. 2018 (second-hand, ../shared/paper/NOTES.md)", scale=100,
                    differs="LPIPS's 5 AlexNet layers in one distance; cells here score one point at a time")
    for split, value in {"cnn": 82.1, "traditional": 73.2, "color": 61.5, "deblur": 59.4, "frameinterp": 62.2,
                         "superres": 69.5}.items()) + tuple(
    ReferenceFigure("2afc", split, f"DreamSim {model}", None, "nights", "nights", "paper", value,
                    "DreamSim README, NIGHTS performance table (github.com/ssundaram21/dreamsim)", scale=100,
                    differs="DreamSim's model fine-tuned on NIGHTS's train split (1 - cosine of its embedding), "
                            "not a frozen backbone")
    for model, figures in (("ensemble", {"val": 96.9, "test": 96.2}), ("dino_vitb16", {"val": 95.6, "test": 94.8}),
                           ("open_clip_vitb32", {"val": 95.6, "test": 95.3}),
                           ("clip_vitb32", {"val": 94.9, "test": 93.6}),
                           ("dinov2_vitb14", {"val": 94.9, "test": 95.0}))
    for split, value in figures.items())

BENCHMARK = Benchmark(
    name=NAME, title="Perceptual similarity",
    description="Scores one loss network's extraction points as perceptual distances: uncalibrated (unit-normalised "
                "features, squared difference summed over channels, spatial mean) and LPIPS's lin variant "
                "(non-negative channel weights learned through LPIPS's ranking network). 2AFC per split and their "
                "unweighted mean; JND mAP where the data has JND pairs. The baseline is the pixel L2 distance.",
    datasets=DATASETS, default_dataset="equal_mse", budgets=BUDGETS, run=run,
    primary=Metric("2afc", ("mean",), "2AFC score (uncalibrated), mean over splits"),
    output_key="decisions", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="SSIM and the pixel L2 distance",
    trains_per_point=False, baseline_label="pixel L2 distance",
    study=Study(budget=PAPER_BUDGET, authors_script="perceptual_metric/experiment.py", protocol=PROTOCOL,
                reference_figures=REFERENCE_FIGURES, training_items=151_400,
                step_cost_overrides={"synthetic_n": 100, "eval_limit": 20}),
)
