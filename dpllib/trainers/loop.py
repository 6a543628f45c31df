"""The one fit loop of the four benchmarks.

``fit`` trains one or several models on the same batches: each step draws one batch with
``batch_at(step)`` and hands it to every :class:`Trainee`'s ``train_step``. It validates every
``eval_every`` steps and after the last, keeps each model's best checkpoint (highest
validation score), stops on a NaN or inf loss, shows a progress bar, and measures seconds per
step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


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
        return out


def fit(trainees: list[Trainee], batch_at: Callable[[int], Any], steps: int, desc: str,
        eval_every: int = 0, progress: bool = True) -> dict[str, dict]:
    """Train ``trainees`` for ``steps`` steps on the batches ``batch_at(step)``; returns
    {name: {loss_curve, seconds_per_step[, val_curve, best_step]}} with the best checkpoints
    restored. Seconds per step: the median step time (validation excluded) divided by the number
    of trainees. A NaN or inf loss raises NonFiniteLoss."""
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=2)
    for i in bar:
        start = time.perf_counter()
        batch = batch_at(i)
        for trainee in trainees:
            loss = float(trainee.train_step(batch))
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"the training loss of {trainee.name} became {loss} at step {i + 1}; "
                                    "the run was stopped (lower the learning rate or check the inputs)")
            trainee.loss_curve.append(loss)
        seconds = (time.perf_counter() - start) / len(trainees)
        for trainee in trainees:
            trainee.seconds.append(seconds)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{trainees[0].loss_curve[-1]:.4g}")
        if eval_every and ((i + 1) % eval_every == 0 or i + 1 == steps):
            for trainee in trainees:
                if trainee.validate is not None:
                    trainee.evaluate(i + 1)
    return {t.name: t.finish() for t in trainees}
