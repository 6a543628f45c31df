"""The one fit loop of the four benchmarks.

``fit`` trains one or several models on the same batches: each step draws one batch with
``batch_at(step)`` and hands it to every :class:`Trainee`'s ``train_step``. It validates every
``eval_every`` steps and after the last, keeps each model's best checkpoint (highest
validation score), stops on a NaN or inf loss, shows a progress bar, and measures seconds per
step. With a :class:`FitCheckpoint` it saves its whole state every few minutes and resumes from
it, ending exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..files import atomic_write

CHECKPOINT_SECONDS_ENV = "DPL_CHECKPOINT_SECONDS"  # seconds between fit checkpoints (default 300)


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or inf."""


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state dict (on its device)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class Trainee:
    """One model in training.

    ``train_step(batch) -> loss`` runs one optimizer step; ``validate() -> score`` (optional;
    higher is better) scores the model on held-out data; the model with the best score is
    restored when the fit ends.
    """

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_step: Callable[[Any], float]
    validate: Callable[[], float] | None = None
    loss_curve: list[float] = field(default_factory=list)
    val_curve: list[list[float]] = field(default_factory=list)  # [step, score]
    best_score: float = -math.inf
    best_step: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    seconds: list[float] = field(default_factory=list)
    scheduler: Any = None  # a learning-rate scheduler stepped by train_step, saved with the rest
    stopped_at: int | None = None  # the step early stopping ended this training at

    def state_dict(self) -> dict:
        """Everything needed to continue this training exactly."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "loss_curve": self.loss_curve, "val_curve": self.val_curve, "best_score": self.best_score,
                "best_step": self.best_step, "best_state": self.best_state, "seconds": self.seconds,
                "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.loss_curve, self.val_curve, self.seconds = state["loss_curve"], state["val_curve"], state["seconds"]
        self.best_score, self.best_step, self.best_state = state["best_score"], state["best_step"], state["best_state"]
        self.stopped_at = state["stopped_at"]

    def evaluate(self, step: int) -> None:
        """Validate now; keep a copy of the weights when the score is the best so far."""
        score = float(self.validate())
        self.val_curve.append([step, score])
        if score > self.best_score:
            self.best_score, self.best_step, self.best_state = score, step, snapshot(self.model)

    def finish(self) -> dict:
        """Restore the best checkpoint (when validated) and report the training."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        out = {"loss_curve": self.loss_curve,
               "seconds_per_step": float(np.median(self.seconds)) if self.seconds else 0.0}
        if self.validate is not None:
            out.update(val_curve=self.val_curve, best_step=self.best_step)
        if self.stopped_at is not None:
            out["stopped_at"] = self.stopped_at
        return out


class Resumable(Protocol):
    """Something a training step draws on (a batch order, a data set's random crops)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class BatchOrder:
    """Endless random index batches over range(n), reshuffled each epoch with ``generator``
    (a fresh ``torch.randperm`` per epoch); resumable."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.order: torch.Tensor | None = None
        self.start = 0

    def __call__(self) -> torch.Tensor:
        last = self.n - self.batch_size + 1 if self.n >= self.batch_size else 1
        if self.order is None or self.start >= last:
            self.order, self.start = torch.randperm(self.n, generator=self.generator), 0
        batch = self.order[self.start:self.start + self.batch_size]
        self.start += self.batch_size
        return batch

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.start = state["order"], state["start"]


class FitCheckpoint:
    """One fit's state on disk (``path``, written atomically), saved at most every ``every_s``
    seconds (``$DPL_CHECKPOINT_SECONDS``, default 300; 0 saves after every step)."""

    def __init__(self, path: str | os.PathLike, every_s: float | None = None):
        self.path = Path(path)
        self.every_s = float(os.environ.get(CHECKPOINT_SECONDS_ENV, 300)) if every_s is None else every_s
        self.last = time.monotonic()

    def load(self) -> dict | None:
        return torch.load(self.path, weights_only=False) if self.path.is_file() else None

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def save(self, state: dict) -> None:
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))
        self.last = time.monotonic()


def _rng_states() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _resume(checkpoint: FitCheckpoint | None, trainees: list[Trainee], resumables: Sequence[Resumable]) -> int:
    """Restore the trainees, the resumables and the random number generators from the saved state
    of ``checkpoint``, if any; returns the step to go on from (0: nothing saved)."""
    state = checkpoint.load() if checkpoint is not None else None
    if state is None:
        return 0
    for trainee in trainees:
        trainee.load_state_dict(state["trainees"][trainee.name])
    for resumable, saved in zip(resumables, state["resumables"]):
        resumable.load_state_dict(saved)
    _restore_rng(state["rng"])
    return state["step"]


def fit(trainees: list[Trainee], batch_at: Callable[[int], Any], steps: int, desc: str,
        eval_every: int = 0, progress: bool = True, checkpoint: FitCheckpoint | None = None,
        resumables: Sequence[Resumable] = (), patience: int | None = None,
        validate_start: bool = False) -> dict[str, dict]:
    """Train ``trainees`` for ``steps`` steps on the batches ``batch_at(step)``; returns
    {name: {loss_curve, seconds_per_step[, val_curve, best_step][, stopped_at][, resumed_at]}}
    with the best checkpoints restored. Seconds per step: the median step time (validation
    excluded) divided by the number of trainees still training. A NaN or inf loss raises
    NonFiniteLoss. With ``patience``, a trainee stops after that many validations without a
    better score (early stopping); the others go on. With ``validate_start`` (a warm-started fit)
    the starting weights are validated too, as step 0 of the validation curve; checkpoints are
    still chosen among the steps trained.

    With ``checkpoint``, the trainees, the ``resumables`` (what ``batch_at`` draws on) and the
    random number generators are saved every few minutes, and a saved state is resumed from."""
    start = _resume(checkpoint, trainees, resumables)
    if validate_start and eval_every and start == 0:
        for trainee in trainees:
            if trainee.validate is not None:
                trainee.val_curve.append([0, float(trainee.validate())])
    bar = tqdm(range(start, steps), desc=desc, disable=not progress, mininterval=2)
    for i in bar:
        active = [t for t in trainees if t.stopped_at is None]
        if not active:
            break
        begin = time.perf_counter()
        batch = batch_at(i)
        for trainee in active:
            loss = float(trainee.train_step(batch))
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"the training loss of {trainee.name} became {loss} at step {i + 1}; "
                                    "the run was stopped (lower the learning rate or check the inputs)")
            trainee.loss_curve.append(loss)
        seconds = (time.perf_counter() - begin) / len(active)
        for trainee in active:
            trainee.seconds.append(seconds)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{active[0].loss_curve[-1]:.4g}")
        if eval_every and ((i + 1) % eval_every == 0 or i + 1 == steps):
            for trainee in active:
                if trainee.validate is not None:
                    trainee.evaluate(i + 1)
                    waited = (i + 1 - trainee.best_step) // eval_every
                    if patience and waited >= patience and i + 1 < steps:
                        trainee.stopped_at = i + 1
        if checkpoint is not None and checkpoint.due() and i + 1 < steps:
            checkpoint.save({"step": i + 1, "trainees": {t.name: t.state_dict() for t in trainees},
                             "resumables": [r.state_dict() for r in resumables], "rng": _rng_states()})
    reports = {t.name: t.finish() for t in trainees}
    if start:
        for report in reports.values():
            report["resumed_at"] = start
    return reports
