"""Perceptual similarity (Zhang et al. 2018, LPIPS) as the study evaluates loss networks.

Distance per point: unit-normalise features over channels, squared difference, sum over
channels (uncalibrated) or learned non-negative 1x1 weights ("lin", trained with LPIPS's
ranking network), spatial mean. Scores: 2AFC per split and their unweighted mean; JND mAP.
All points of one network come from one pass of feature computation over each batch.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ..config import BASELINE, CellConfig, training_steps
from ..datasets import JND_VAL, TWOAFC_TRAIN, TWOAFC_VAL, TwoAFC, bapps_2afc, bapps_jnd, severity_2afc
from ..loss import PerceptualLoss, feature_distance_map
from ..metrics import jnd_map, twoafc_score
from ..results import make_record, row
from .common import alias_of, pick_device, seed_everything
from .loop import Trainee, fit


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


def _data(cfg: CellConfig, settings: dict) -> tuple[dict, dict, list[TwoAFC]]:
    """(val 2AFC by split, JND by split, train 2AFC sets)."""
    if cfg.dataset == "bapps":
        val = {s: bapps_2afc("val", s, cfg.data_root) for s in TWOAFC_VAL}
        jnd = {s: bapps_jnd(s, cfg.data_root) for s in JND_VAL}
        train = [bapps_2afc("train", s, cfg.data_root) for s in TWOAFC_TRAIN]
    else:  # "severity" (CellConfig checked the name)
        n = settings["severity_n"]
        val = severity_2afc(cfg.data_root, n_per_distortion=n, seed=0)
        jnd = {}
        train = list(severity_2afc(cfg.data_root, n_per_distortion=n, seed=1).values())
    return val, jnd, train


class Distances:
    """Per-point distances of image pairs from one feature pass per batch."""

    def __init__(self, cfg: CellConfig, device: torch.device):
        self.baseline = cfg.network == BASELINE
        self.device = device
        if not self.baseline:
            self.loss = PerceptualLoss(cfg.network, cfg.points, weights=cfg.weights, distance="lpips",
                                       normalization="imagenet", seed=cfg.seed).to(device)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        images = images.to(self.device).float() / 255
        if self.baseline:
            return [images]
        with torch.no_grad():
            return self.loss.features(images)

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


def _score_2afc(dist: Distances, data: TwoAFC, n_points: int, variants: dict, batch: int,
                limit: int | None) -> dict[str, list[float]]:
    """{variant: 2AFC score per point} of one 2AFC split."""
    t = data.tensors()
    n = len(data) if limit is None else min(limit, len(data))
    d = _pair_distances(dist, [t["ref"], t["p0"], t["p1"]], [(0, 1), (0, 2)], variants, batch, n)
    return {v: [twoafc_score(d[v, i, 0], d[v, i, 1], t["judge"][:n]) for i in range(n_points)] for v in variants}


def _score_jnd(dist: Distances, data, n_points: int, variants: dict, batch: int,
               limit: int | None) -> dict[str, list[float]]:
    """{variant: JND mAP per point} of one JND split."""
    t = data.tensors()
    n = len(data) if limit is None else min(limit, len(data))
    d = _pair_distances(dist, [t["p0"], t["p1"]], [(0, 1)], variants, batch, n)
    return {v: [jnd_map(d[v, i, 0], t["same"][:n]) for i in range(n_points)] for v in variants}


def _split_rows(metric: str, per_split: dict[str, list[float]], points: list[str], aliases: list[str]) -> list[dict]:
    """Rows of each split's score per point, and their unweighted mean over splits."""
    rows = []
    for i, (p, a) in enumerate(zip(points, aliases)):
        rows += [row(p, a, metric, scores[i], split) for split, scores in per_split.items()]
        rows.append(row(p, a, metric, sum(v[i] for v in per_split.values()) / len(per_split), "mean"))
    return rows


class LinCalibration(nn.Module):
    """LPIPS 'lin' for several points: non-negative channel weights per point, each scored by
    its own ranking network."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.lins = nn.ParameterList(nn.Parameter(torch.ones(1, c, 1, 1)) for c in channels)
        self.rankers = nn.ModuleList(RankingNet() for _ in channels)


class TripletSampler:
    """Random triplet batches (with replacement) drawn across several 2AFC sets."""

    def __init__(self, sets: list[TwoAFC], batch: int, generator: torch.Generator):
        self.tensors = [d.tensors() for d in sets]
        sizes = torch.tensor([len(d) for d in sets])
        self.total, self.batch, self.generator = int(sizes.sum()), batch, generator
        self.offsets = torch.cumsum(sizes, 0) - sizes

    def __call__(self, _step: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.total, (self.batch,), generator=self.generator)
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("ref", "p0", "p1", "judge")}
        for j in idx.tolist():
            d = int(torch.searchsorted(self.offsets, torch.tensor(j), right=True)) - 1
            local = j - int(self.offsets[d])
            for k in parts:
                parts[k].append(self.tensors[d][k][local])
        return {k: torch.stack(v) for k, v in parts.items()}


def train_lin(dist: Distances, train: list[TwoAFC], settings: dict, gen: torch.Generator,
              progress: bool = True) -> tuple[list[torch.Tensor], dict]:
    """LPIPS 'lin': non-negative channel weights per point, trained through a ranking net
    (BCE against judge), Adam(lr, betas=(0.5, 0.999)), weights clamped >= 0 after each step,
    constant learning rate for half the steps, then linear decay to 0 (as LPIPS).
    Returns the weights per point and the fit report."""
    device = dist.device
    calibration = LinCalibration([p.channels for p in dist.loss.points]).to(device)
    opt = torch.optim.Adam(calibration.parameters(), lr=settings["lr"], betas=(0.5, 0.999))
    sampler = TripletSampler(train, settings["batch_size"], gen)
    steps = training_steps(settings, sampler.total)
    decay_from = steps // 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < decay_from else max(0.0, (steps - s) / (steps - decay_from)))
    bce = nn.BCELoss()

    def train_step(b: dict[str, torch.Tensor]) -> float:
        k = len(b["judge"])
        feats = dist.features(torch.cat([b["ref"], b["p0"], b["p1"]]))
        judge = b["judge"].to(device).float()
        loss = 0.0
        for f, lin, ranker in zip(feats, calibration.lins, calibration.rankers):
            d0 = dist.distance(f[:k], f[k:2 * k], lin)
            d1 = dist.distance(f[:k], f[2 * k:], lin)
            loss = loss + bce(ranker(d0, d1).clamp(1e-6, 1 - 1e-6), judge)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            for w in calibration.lins:
                w.clamp_(min=0)
        return loss.item() / len(feats)

    report = fit([Trainee("lin", calibration, opt, train_step)], sampler, steps, "lin calibration",
                 progress=progress)["lin"]
    return [w.detach() for w in calibration.lins], report


def evaluate(cfg: CellConfig, settings: dict, gen: torch.Generator, device: torch.device,
             progress: bool = True) -> dict:
    """Score one network's points (uncalibrated, and lin after calibrating it) on every
    validation split; returns rows, the calibration's curve and data sizes."""
    val, jnd, train = _data(cfg, settings)
    dist = Distances(cfg, device)
    points = cfg.points if not dist.baseline else [BASELINE]
    n = len(points)
    aliases = [alias_of(cfg.network, p) for p in points]
    variants = {"2afc": None}
    report = {"loss_curve": [], "seconds_per_step": 0.0}
    if not dist.baseline:
        variants["2afc_lin"], report = train_lin(dist, train, settings, gen, progress)
    batch, limit = settings["batch_size"], settings["eval_limit"]
    twoafc = {s: _score_2afc(dist, d, n, variants, batch, limit) for s, d in val.items()}
    jnd_scores = {s: _score_jnd(dist, d, n, variants, batch, limit) for s, d in jnd.items()}
    rows = []
    for variant in variants:
        rows += _split_rows(variant, {s: v[variant] for s, v in twoafc.items()}, points, aliases)
        if jnd_scores:  # jnd_map, jnd_map_lin
            rows += _split_rows("jnd_map" + variant[4:], {s: v[variant] for s, v in jnd_scores.items()},
                                points, aliases)
    return {"rows": rows, **report,
            "data": {"val_splits": {s: len(d) for s, d in val.items()},
                     "jnd_splits": {s: len(d) for s, d in jnd.items()},
                     "train_items": sum(len(d) for d in train),
                     "kind": "BAPPS (human judgements)" if cfg.dataset == "bapps"
                     else "severity 2AFC (synthetic, known answers)"}}


def run(cfg: CellConfig | dict, progress: bool = True) -> tuple[dict, dict]:
    """Evaluate one network's points (uncalibrated and lin); returns the result record and
    (no) examples."""
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(cfg)
    return make_record(cfg, lambda: evaluate(cfg, cfg.settings(), seed_everything(cfg.seed),
                                             pick_device(cfg.device), progress))
