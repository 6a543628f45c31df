"""Training the points of a cell: one model per extraction point of the loss network (the
baseline: one model without it), all from the same seed, initialisation and batches.

With ``lockstep`` (the default) all points train in one fit: each step draws one batch, the
target's features for every point come from one truncated pass to the deepest point, and every
model takes its step on them. Without it the points train one after another; both give the same
numbers. With ``warm_steps`` every model starts from one model trained that long with the
baseline loss (shared by the cells of a seed, made once). Each benchmark describes itself as a
:class:`Task`; :func:`train_and_test` is the whole cell.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from filelock import FileLock
from torch import nn

from ..config import BASELINE, CellConfig, evaluation_interval, training_steps
from ..files import atomic_write
from ..loss import feature_distance
from ..paths import cache_dir
from ..results import code_version, make_record, row
from .common import CellCheckpoint, NetworkBuffers, alias_of, autocast, cell_loss_network, pick_device, seed_everything
from .loop import BatchOrder, FitCheckpoint, Trainee, fit

# settings that only change what happens after the warm start
FINE_TUNE_KEYS = ("steps", "epochs", "eval_every", "test_limit", "lockstep", "patience")


class PointLosses:
    """The feature MSE of one loss network at several points (the cell's
    :class:`~dpllib.LossNetwork` and :func:`~dpllib.loss.feature_distance`): one traced network;
    a target's features for all points from one truncated pass (to the deepest point), an
    output's from a pass to its own point only. Inputs are images in [0, 1] (masks as
    1-channel images). ``network_mode`` 'train': the loss network runs in training mode while
    the models train (``training=True``) and in eval mode when they are validated, as the
    study's code runs it."""

    def __init__(self, cfg: CellConfig, points: list[str], normalization: str, device: torch.device,
                 network_mode: str = "eval"):
        self.points = list(points)
        self.net = cell_loss_network(cfg, self.points, normalization, network_mode, device)

    def target_features(self, images: torch.Tensor, training: bool = False) -> dict[str, torch.Tensor]:
        self.net.train(training)
        with torch.no_grad():
            feats = self.net.features(images.expand(-1, 3, -1, -1).float())
        return dict(zip(self.points, feats))

    def __call__(self, point: str, output: torch.Tensor, target: torch.Tensor, training: bool = False) -> torch.Tensor:
        """The feature MSE at ``point`` between ``output`` images and a target's features."""
        self.net.train(training)
        features = self.net.features(output.expand(-1, 3, -1, -1).float(), [point])
        return feature_distance(features, [target], "mse")


@dataclass
class Task:
    """What a benchmark tells :func:`train_points`.

    ``sample(order, generator)`` draws a batch (a dict); ``forward(model, batch)`` returns the
    model's outputs (a list: segmentation's refinement passes, else one); ``pixel_loss(outputs,
    batch)`` is the baseline's loss (pixel MSE, BCE); ``loss_images(output, batch)`` what the
    loss network sees of an output, ``batch["target"]`` what it sees of the target;
    ``validate(model, loss) -> score`` (higher is better; ``loss(model, batch)`` is the model's
    own training loss on a batch) picks the best checkpoint; ``test(model, point, alias) ->
    (rows, examples)``.
    """

    new_model: Callable[[], nn.Module]
    n_items: int
    sample: Callable[[BatchOrder, torch.Generator], dict]
    forward: Callable[[nn.Module, dict], list[torch.Tensor]]
    pixel_loss: Callable[[list[torch.Tensor], dict], torch.Tensor]
    test: Callable[[nn.Module, str | None, str], tuple[list[dict], dict]]
    loss_images: Callable[[torch.Tensor, dict], torch.Tensor] = lambda output, batch: output
    validate: Callable[[nn.Module, Callable], float] | None = None
    normalization: str = "none"  # what the loss network's inputs get (see PerceptualLoss)
    pixel_weight: float = 0.0  # weight of pixel_loss beside the feature loss (segmentation: BCE 1)
    feature_weight: float = 1.0
    resumables: list = field(default_factory=list)  # what sample draws on besides the order


def _loss(task: Task, losses: PointLosses | None, point: str | None, outputs: list[torch.Tensor],
          batch: dict, training: bool) -> torch.Tensor:
    """The training loss of one model: the baseline's pixel loss, or the weighted sum of the
    pixel loss and the feature MSE at ``point`` (averaged over the outputs; ``training``: while
    the model trains, not validates)."""
    if point is None:
        return task.pixel_loss(outputs, batch)
    feature = sum(losses(point, task.loss_images(o, batch), batch["features"][point], training)
                  for o in outputs) / len(outputs)
    loss = task.feature_weight * feature
    return loss + task.pixel_weight * task.pixel_loss(outputs, batch) if task.pixel_weight else loss


def _trainee(task: Task, losses: PointLosses | None, point: str | None, alias: str, seed: int, lr: float,
             initial: dict | None, device: torch.device) -> Trainee:
    torch.manual_seed(seed)
    model = task.new_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=device.type == "cuda")
    if initial is not None:  # the warm start's weights and optimiser state: training continues smoothly
        model.load_state_dict(initial["model"])
        optimizer.load_state_dict(initial["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = lr

    def train_step(batch: dict) -> float:
        model.train()
        with autocast(device):
            outputs = task.forward(model, batch)
        loss = _loss(task, losses, point, [o.float() for o in outputs], batch, training=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    def batch_loss(net: nn.Module, batch: dict) -> torch.Tensor:
        if losses is not None and point is not None:
            batch = {**batch, "features": losses.target_features(batch["target"])}
        return _loss(task, losses, point, [o.float() for o in task.forward(net, batch)], batch, training=False)

    validate = (lambda: task.validate(model, batch_loss)) if task.validate is not None else None
    return Trainee(alias, model, optimizer, train_step, validate)


def _sampler(task: Task, losses: PointLosses | None, settings: dict, seed: int) -> tuple[Callable, list]:
    """The batch of each step (with every point's target features) and what it draws on."""
    generator = torch.Generator().manual_seed(seed)
    order = BatchOrder(task.n_items, settings["batch_size"], generator)

    def batch_at(_step: int) -> dict:
        batch = task.sample(order, generator)
        if losses is not None:
            batch["features"] = losses.target_features(batch["target"], training=True)
        return batch

    return batch_at, [order, *task.resumables] + ([NetworkBuffers(losses.net)] if losses is not None else [])


def warm_start(cfg: CellConfig, settings: dict, task: Task, device: torch.device, progress: bool) -> dict | None:
    """The state every model of the cell starts from: None, or (``warm_steps`` > 0) a model
    trained that many steps with the baseline loss, with its optimiser state ({model,
    optimizer}). It is made once per benchmark, data set, seed and settings (under a lock, kept
    in ``DPL_CACHE/warm_start``), so the cells of a seed share it and the baseline continues
    from it like every loss network."""
    steps = settings.get("warm_steps") or 0
    if not steps:
        return None
    key = {"benchmark": cfg.benchmark, "dataset": cfg.dataset, "data_root": str(cfg.data_root), "seed": cfg.seed,
           "settings": {k: v for k, v in settings.items() if k not in FINE_TUNE_KEYS}, "code": code_version()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache_dir() / "warm_start" / f"{cfg.benchmark}-{digest}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_suffix(".lock")):
        if not path.is_file():
            batch_at, resumables = _sampler(task, None, settings, cfg.seed + 1_000_003)
            trainee = _trainee(task, None, None, "warm start", cfg.seed + 1_000_003, settings["lr"], None, device)
            fit([trainee], batch_at, steps, f"{cfg.benchmark} warm start", progress=progress,
                checkpoint=FitCheckpoint(path.with_suffix(".fit.pt")), resumables=resumables)
            state = {"model": trainee.model.state_dict(), "optimizer": trainee.optimizer.state_dict()}
            atomic_write(path, lambda tmp: torch.save(state, tmp))
            path.with_suffix(".fit.pt").unlink(missing_ok=True)
    return torch.load(path, map_location=device, weights_only=True)


def train_points(cfg: CellConfig, settings: dict, task: Task, device: torch.device, progress: bool = True,
                 checkpoint: CellCheckpoint | None = None) -> dict:
    """Train and test one model per point of the cell (see the module docstring); returns rows,
    curves per alias, examples per alias, and where a resumed fit restarted."""
    points = list(cfg.points) or [None]
    aliases = [alias_of(cfg.network, p) for p in points]
    lockstep = settings.get("lockstep", True)
    groups = [list(zip(points, aliases))] if lockstep else [[pa] for pa in zip(points, aliases)]
    steps, eval_every = training_steps(settings, task.n_items), evaluation_interval(settings, task.n_items)
    initial = warm_start(cfg, settings, task, device, progress)
    out: dict = {"rows": [], "loss_curve": {}, "val_curve": {}, "best_step": {}, "seconds_per_step": {},
                 "stopped_at": {}, "resumed_at": {}, "examples": {}}
    for group in groups:
        done = {alias: checkpoint.finished(alias) for _, alias in group} if checkpoint is not None else {}
        todo = [(p, a) for p, a in group if done.get(a) is None]
        if todo:
            seed_everything(cfg.seed)
            real = [p for p, _ in todo if p is not None]
            losses = (PointLosses(cfg, real, task.normalization, device, settings.get("network_mode", "eval"))
                      if real else None)
            batch_at, resumables = _sampler(task, losses, settings, cfg.seed)
            trainees = [_trainee(task, losses, p, a, cfg.seed, settings["lr"], initial, device) for p, a in todo]
            name = "+".join(a for _, a in todo)
            reports = fit(trainees, batch_at, steps, f"{cfg.benchmark} {cfg.network} {name}", eval_every, progress,
                          checkpoint.fit(name) if checkpoint is not None else None, resumables, settings.get("patience"),
                          validate_start=initial is not None)
            for (point, alias), trainee in zip(todo, trainees):
                rows, examples = task.test(trainee.model, point, alias)
                rows += validation_rows(reports[alias].get("val_curve", []), point, alias)
                done[alias] = {"rows": rows, "examples": examples, **reports[alias]}
                if checkpoint is not None:
                    checkpoint.finish(alias, done[alias])
        for _, alias in group:
            result = done[alias]
            out["rows"] += result["rows"]
            out["examples"][alias] = result["examples"]
            for key in ("loss_curve", "val_curve", "best_step", "seconds_per_step", "stopped_at", "resumed_at"):
                if key in result:
                    out[key][alias] = result[key]
    return {k: v for k, v in out.items() if v or k in ("rows", "examples", "loss_curve")}


def validation_rows(val_curve: list[list[float]], point: str | None, alias: str) -> list[dict]:
    """A warm-started model's validation score (the benchmark's, e.g. road quality) at the warm
    start (split "warm_start"), and the mean and standard deviation of the fine-tuning's
    validations (splits "fine_tuning_mean", "fine_tuning_sd"), metric "validation": whether
    fine-tuning made the model worse beyond how much its validation score moves from one
    validation to the next."""
    if len(val_curve) < 2 or val_curve[0][0] != 0:
        return []
    after = [score for _, score in val_curve[1:]]
    mean = sum(after) / len(after)
    sd = (sum((v - mean) ** 2 for v in after) / (len(after) - 1)) ** 0.5 if len(after) > 1 else float("nan")
    return [row(point, alias, "validation", val_curve[0][1], "warm_start"),
            row(point, alias, "validation", mean, "fine_tuning_mean"),
            row(point, alias, "validation", sd, "fine_tuning_sd")]


def train_and_test(cfg: CellConfig | dict, make_task: Callable[[CellConfig, dict, torch.device], tuple[Task, dict]],
                   progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """A benchmark cell: ``make_task(cfg, settings, device) -> (task, record fields)`` loads the
    data once (the fields describe it and hold the references: bicubic, all-road, PCA, ...;
    ``fields["examples"]`` joins the examples); then :func:`train_points`. With
    ``checkpoint_dir`` progress is saved there and resumed from. Returns (record, examples)."""
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(cfg)

    def body() -> dict:
        settings = cfg.settings()
        device = pick_device(cfg.device)
        task, fields = make_task(cfg, settings, device)
        checkpoint = CellCheckpoint(checkpoint_dir, cfg) if checkpoint_dir else None
        out = train_points(cfg, settings, task, device, progress, checkpoint)
        out["examples"].update(fields.pop("examples", {}))
        return {**out, **fields}

    return make_record(cfg, body)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """An image in [0, 1] as uint8 on the CPU (examples are stored small)."""
    return (image.detach().float().clamp(0, 1) * 255).round().byte().cpu()


__all__ = ["BASELINE", "PointLosses", "Task", "to_uint8", "train_and_test", "train_points", "warm_start"]
