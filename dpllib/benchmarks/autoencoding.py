"""Dimensionality reduction (Pihlgren et al. 2020): a deterministic conv autoencoder (z = 64)
trained with a single-point feature MSE (baseline: pixel MSE); the embedding is scored by the
test accuracy of 7 small MLP probes trained on frozen embeddings of the labelled training
images. The same probes on a 64-component PCA of the pixels are recorded as a reference."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..benchmark import (BASELINE, Benchmark, CellConfig, Check, DataSet, Deviation, DplError, Metric, Study, Task,
                         datasets, row, to_uint8, train_and_test)

NAME = "autoencoding"
DATASETS = (DataSet("svhn", "SVHN", "study", "real photos of house numbers"),
            DataSet("stl10", "STL-10", "study", "real photos, 96 px"),
            DataSet("cifar10", "CIFAR-10", "stand-in", "real photos, 32 px; stand-in for SVHN / STL-10"))
# Named budgets (see dpllib.benchmark.Benchmark.budgets): every setting the trainer reads.
BUDGETS = {
    "smoke": {"network_mode": "train", "steps": 20, "epochs": None, "warm_steps": 0, "batch_size": 32, "lr": 1e-3,
              "train_split": "train", "train_limit": 500, "test_limit": 200, "pad": "reflect",
              "normalization": "none", "loss_size": None, "val_fraction": 0.0, "eval_every": 0, "patience": None,
              "probe_epochs": 20, "probe_batch": None, "probe_lr": 1e-2, "probe_patience": 5, "probe_loss": "ce",
              "probe_holdout": 0.1, "probe_input": "raw", "probe_activation": "leaky_relu", "probe_select_by": "loss",
              "pca_reference": True, "lockstep": True, "model": "padded"},
    "offline": {"network_mode": "train", "steps": 60, "epochs": None, "warm_steps": 400, "batch_size": 64, "lr": 1e-3,
                "train_split": "train", "train_limit": None, "test_limit": 3000, "pad": "reflect",
                "normalization": "none", "loss_size": None, "val_fraction": 0.0, "eval_every": 0, "patience": None,
                "probe_epochs": 40, "probe_batch": None, "probe_lr": 1e-2, "probe_patience": 10, "probe_loss": "ce",
                "probe_holdout": 0.1, "probe_input": "raw", "probe_activation": "leaky_relu",
                "probe_select_by": "loss", "pca_reference": True, "lockstep": True, "model": "padded"},
}

# The study's protocol (the authors' code; Study.budget): every setting the trainer reads.
PAPER_BUDGET = {"network_mode": "train", "steps": None, "epochs": 50, "warm_steps": 0, "batch_size": 256, "lr": 1e-3,
                "train_split": "study", "train_limit": None, "test_limit": None, "pad": "reflect",
                "normalization": "none", "loss_size": None, "val_fraction": 0.2, "eval_every": 1, "patience": 10,
                "probe_epochs": 500, "probe_batch": 256, "probe_lr": 1e-3, "probe_patience": 25, "probe_loss": "mse",
                "probe_holdout": 0.2, "probe_input": "raw", "probe_activation": "leaky_relu", "probe_select_by": "loss",
                "pca_reference": True, "lockstep": True, "model": "authors"}

PROTOCOL = (
    Deviation(NAME, "epochs", "<= 50 epochs", "50, early stopping", 50, "same; offline: 60 fine-tuning steps after the warm start"),
    Deviation(NAME, "steps", "-", "-", None, "unused (an epoch budget)"),
    Deviation(NAME, "warm_steps", "-", "-", 0, "same (none); offline: 400 pixel-MSE steps shared by all models of a seed"),
    Deviation(NAME, "batch_size", "256", "256", 256, "same; offline 64"),
    Deviation(NAME, "lr", "Adam", "Adam (default 1e-3)", 1e-3, "same"),
    Deviation(NAME, "train_split", "SVHN / STL-10", "SVHN extra, STL-10 unlabeled (perceptual_autoencoders/experiment.py)", "study",
              "same ('study' = extra / unlabeled); offline: CIFAR-10 train (stand-in)"),
    Deviation(NAME, "train_limit", "-", "all", None, "same"),
    Deviation(NAME, "test_limit", "-", "all", None, "same; offline 3,000 test images"),
    Deviation(NAME, "pad", "32 px padded to 64", "reflect padding by 16", "reflect", "same"),
    Deviation(NAME, "normalization", "-", "normalize_in=False", "none", "same"),
    Deviation(NAME, "loss_size", "-", "as is", None, "same"),
    Deviation(NAME, "val_fraction", "early stopping", "20% of the training set", 0.2, "same; offline none"),
    Deviation(NAME, "eval_every", "-", "every epoch", 1, "same; offline none"),
    Deviation(NAME, "patience", "patience 10", "max(10, epochs / 20)", 10, "same; offline none"),
    Deviation(NAME, "probe_epochs", "-", "<= 500", 500, "same; offline 40, full batch"),
    Deviation(NAME, "probe_batch", "-", "256", 256, "same; offline full batch"),
    Deviation(NAME, "probe_lr", "-", "Adam default 1e-3", 1e-3, "same; offline 1e-2 (full batch)"),
    Deviation(NAME, "probe_patience", "-", "25", 25, "same; offline 10"),
    Deviation(NAME, "probe_loss", "-", "MSE on one-hot labels", "mse", "same; offline cross-entropy"),
    Deviation(NAME, "probe_holdout", "-", "20% random split of train", 0.2, "same, drawn across all classes; offline 10%"),
    Deviation(NAME, "parameters", "-", "4,382,723 (FourLayerCVAE at 64 px, its unused logvar head left out)", None,
              "same; offline: the padded autoencoder at CIFAR-10's 32 px (row 'model')"),
    Deviation(NAME, "probe_input", "MLPs on the embeddings", "raw embeddings (perceptual_autoencoders/experiment.py)",
              "raw", "same (offline too)"),
    Deviation(NAME, "probe_activation", "-", "LeakyReLU hidden layers (experiment.py hidden_func, predictors.py)",
              "leaky_relu", "same (offline too)"),
    Deviation(NAME, "probe_select_by", "-", "early stopping and checkpoint on the validation loss (MSE; experiment.py)",
              "loss", "same; offline: the validation loss is cross-entropy (row 'probe_loss')"),
    Deviation(NAME, "data sets", "SVHN and STL-10", "SVHN (64 px, reflect-padded) or STL-10 (96 px, as is) (experiment.py)",
              None, "same: the paper preset runs both (autoencoding: [svhn, stl10]); each has its own chapter, and the "
              "analyses across benchmarks use SVHN, the first; offline: CIFAR-10 (stand-in)"),
    Deviation(NAME, "network_mode", "-", "training mode: Lightning's model.train() reaches perceptual_net "
              "(perceptual_autoencoders/experiment.py): batch statistics; eval mode while validating", "train",
              "same (offline too); weights frozen"),
    Deviation(NAME, "pca_reference", "-", "-", True, "an addition: the same probes on a 64-component PCA of the pixels, as a reference"),
    Deviation(NAME, "lockstep", "-", "-", True, "how the 4 points train (same numbers either way)"),
    Deviation(NAME, "model", "a 4-layer convolutional autoencoder, z = 64",
              "FourLayerCVAE, variational off (gamma 0): unpadded 4x4 stride-2 convs 3-32-64-128-256 + BN + ReLU, a "
              "linear layer to z; decoder: linear z -> 1024 x g x g + ReLU, transposed convs 5, 5, 6, 6 (1024-128-64-32-3), "
              "BN + ReLU on three, sigmoid (perceptual_autoencoders/encoders.py)", "authors",
              "same (FourLayerAE: 4,382,723 parameters at 64 px, the unused logvar head left out); offline 'padded': "
              "padded 4x4 stride-2 convs with LeakyReLU to 2 x 2 x 256 and back (1,909,891 at 64 px), since the "
              "authors' network takes only 64 + 16n px and the offline stand-in, CIFAR-10, is 32 px (padding it to 64 "
              "costs four times the CPU)"),
)

Z = 64
PROBE_SHAPES: tuple[tuple[int, ...], ...] = ((), (32,), (64,), (32, 32), (64, 32), (64, 64), (128, 128))
# the AE's own training split per data set (the authors': SVHN extra, STL-10 unlabeled)
PCA_REFERENCE = "PCA-64 of the pixels"
STUDY_TRAIN_SPLIT = {"svhn": "extra", "stl10": "unlabeled", "cifar10": "train"}


class ConvAutoencoder(nn.Module):
    """4 stride-2 convs -> z (deterministic) -> 4 stride-2 transposed convs; images in [0, 1]."""

    def __init__(self, size: int, z: int = Z, width: int = 32):
        super().__init__()
        if size % 16:
            raise DplError(f"image size {size} must be a multiple of 16")
        chs = [3, width, width * 2, width * 4, width * 8]
        enc = []
        for a, b in zip(chs[:-1], chs[1:]):
            enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(chs[-1] * (size // 16) ** 2, z))
        self.side = size // 16
        self.expand = nn.Linear(z, chs[-1] * self.side**2)
        dec = []
        rev = chs[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)]
            if i < 3:
                dec += [nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*dec, nn.Sigmoid())
        self.top = chs[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.expand(z).view(-1, self.top, self.side, self.side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class FourLayerAE(nn.Module):
    """The authors' FourLayerCVAE with the variational part off (their setting, gamma 0):
    unpadded 4x4 stride-2 convolutions 3-32-64-128-256, each with batch norm and ReLU, a linear
    layer to z; the decoder maps z linearly to a 1024 x g x g map (g = (size - 64) / 16 + 1),
    ReLU, then transposed convolutions with kernels 5, 5, 6, 6 (stride 2; 1024-128-64-32-3),
    batch norm and ReLU on the first three, sigmoid. Images in [0, 1], size 64 + 16n px."""

    def __init__(self, size: int, z: int = Z):
        super().__init__()
        if size < 64 or (size - 64) % 16:
            raise DplError(f"the authors' autoencoder takes 64 + 16n px images, got {size}: use model 'padded'")
        chs = [3, 32, 64, 128, 256]
        enc = []
        for a, b in zip(chs[:-1], chs[1:]):
            enc += [nn.Conv2d(a, b, 4, stride=2), nn.BatchNorm2d(b), nn.ReLU()]
        side = size
        for _ in range(4):
            side = (side - 4) // 2 + 1
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(chs[-1] * side**2, z))
        self.side = (size - 64) // 16 + 1
        self.expand = nn.Sequential(nn.Linear(z, 1024 * self.side**2), nn.ReLU())
        dec = []
        for i, (a, b, k) in enumerate(zip([1024, 128, 64, 32], [128, 64, 32, 3], [5, 5, 6, 6])):
            dec.append(nn.ConvTranspose2d(a, b, k, stride=2))
            dec += [nn.BatchNorm2d(b), nn.ReLU()] if i < 3 else [nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.expand(z).view(-1, 1024, self.side, self.side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


AUTOENCODERS = {"authors": FourLayerAE, "padded": ConvAutoencoder}  # the "model" setting
IMAGE_SIZE = {"svhn": 64, "stl10": 96, "cifar10": 32}  # px, as the autoencoder sees them (SVHN padded)


def autoencoder(settings: dict, dataset: str) -> nn.Module:
    """The autoencoder the ``model`` setting names, for ``dataset``'s image size."""
    if settings["model"] not in AUTOENCODERS:
        raise DplError(f"autoencoding model must be one of {sorted(AUTOENCODERS)}, got {settings['model']!r}")
    return AUTOENCODERS[settings["model"]](IMAGE_SIZE[dataset])


def stratified_holdout(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A boolean mask of ``fraction`` of the items of every class, drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        take = members[torch.randperm(len(members), generator=generator)[: max(1, round(fraction * len(members)))]]
        held[take] = True
    return held


PROBE_ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU}  # the "probe_activation" setting


def probe_accuracy(train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
                   hidden: tuple[int, ...], settings: dict, seed: int) -> float:
    """Test accuracy in [0, 1] of an MLP (``hidden`` layer sizes, ``probe_activation``
    'leaky_relu' as the study's code, or 'relu') on the embeddings as they are (``probe_input``
    'raw', theirs) or standardised ('standardised'). It trains with Adam (``probe_lr``) for at
    most ``probe_epochs`` epochs, in batches of ``probe_batch`` (None: full batch), on MSE
    against one-hot labels (``probe_loss`` 'mse', theirs) or cross-entropy ('ce'), and keeps
    the epoch with the best score on a stratified ``probe_holdout`` of the training embeddings
    (``probe_select_by`` 'loss': the lowest loss, theirs; 'accuracy': the highest accuracy),
    stopping after ``probe_patience`` epochs without improvement."""
    torch.manual_seed(seed)
    if settings["probe_input"] == "standardised":
        mean, std = train_z.mean(0), train_z.std(0).clamp_min(1e-6)
        tr, te = (train_z - mean) / std, (test_z - mean) / std
    elif settings["probe_input"] == "raw":
        tr, te = train_z, test_z
    else:
        raise DplError(f"probe_input must be 'raw' or 'standardised', got {settings['probe_input']!r}")
    if settings["probe_select_by"] not in ("loss", "accuracy"):
        raise DplError(f"probe_select_by must be 'loss' or 'accuracy', got {settings['probe_select_by']!r}")
    classes = int(max(train_y.max(), test_y.max())) + 1
    layers, width = [], tr.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), PROBE_ACTIVATIONS[settings["probe_activation"]]()]
        width = h
    mlp = nn.Sequential(*layers, nn.Linear(width, classes))
    opt = torch.optim.Adam(mlp.parameters(), lr=settings["probe_lr"])
    held = stratified_holdout(train_y, settings["probe_holdout"], seed)
    fit_x, fit_y, hold_x, hold_y = tr[~held], train_y[~held], tr[held], train_y[held]
    batch = settings["probe_batch"] or len(fit_x)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if settings["probe_loss"] == "mse":
            return F.mse_loss(logits, F.one_hot(y, classes).float())
        return F.cross_entropy(logits, y)

    best, best_state, wait = -math.inf, None, 0
    for _ in range(settings["probe_epochs"]):
        for idx in torch.randperm(len(fit_x), generator=generator).split(batch):
            loss = loss_of(mlp(fit_x[idx]), fit_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = mlp(hold_x)
            score = (-loss_of(logits, hold_y).item() if settings["probe_select_by"] == "loss"
                     else (logits.argmax(1) == hold_y).float().mean().item())
        if score > best:
            best, best_state, wait = score, {k: v.clone() for k, v in mlp.state_dict().items()}, 0
        else:
            wait += 1
            if wait >= settings["probe_patience"]:
                break
    mlp.load_state_dict(best_state)
    with torch.no_grad():
        return (mlp(te).argmax(1) == test_y).float().mean().item()


def probe_rows(point: str | None, alias: str, train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor,
               test_y: torch.Tensor, settings: dict, seed: int) -> list[dict]:
    """One row per probe shape and their mean ('probe_accuracy', split = the shape or 'mean')."""
    accs = [probe_accuracy(train_z, train_y, test_z, test_y, hidden, settings, seed) for hidden in PROBE_SHAPES]
    rows = [row(point, alias, "probe_accuracy", a, "[" + ",".join(map(str, h)) + "]") for h, a in zip(PROBE_SHAPES, accs)]
    return rows + [row(point, alias, "probe_accuracy", float(np.mean(accs)), "mean")]


def pca_embeddings(train_x: torch.Tensor, test_x: torch.Tensor, z: int = Z, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Projections of flattened images on the ``z`` leading principal components of ``train_x``."""
    flat_train, flat_test = train_x.flatten(1).float(), test_x.flatten(1).float()
    mean = flat_train.mean(0)
    torch.manual_seed(seed)
    _, _, v = torch.pca_lowrank(flat_train - mean, q=z, center=False, niter=6)
    return (flat_train - mean) @ v, (flat_test - mean) @ v


def encode(model: nn.Module, x: torch.Tensor, device: torch.device, fn: Callable | None = None) -> torch.Tensor:
    """``fn`` (default: the encoder) over ``x`` in chunks of 512, on the CPU."""
    model.eval()
    fn = fn or model.encode
    with torch.no_grad():
        return torch.cat([fn(x[b:b + 512].to(device)).float().cpu() for b in range(0, len(x), 512)])


def make_task(cfg: CellConfig, settings: dict, device: torch.device) -> tuple[Task, dict]:
    s = settings
    split = STUDY_TRAIN_SPLIT[cfg.dataset] if s["train_split"] == "study" else s["train_split"]
    ae_x = datasets.autoencoder_dataset(cfg.dataset, split, cfg.data_root, s["train_limit"], s["pad"]).tensors[0]
    probe_x, probe_y = datasets.autoencoder_dataset(cfg.dataset, "train", cfg.data_root, s["train_limit"], s["pad"]).tensors
    test_x, test_y = datasets.autoencoder_dataset(cfg.dataset, "test", cfg.data_root, s["test_limit"], s["pad"]).tensors
    held = torch.rand(len(ae_x), generator=torch.Generator().manual_seed(cfg.seed)) < s["val_fraction"]
    train_x, val_x = ae_x[~held].to(device), ae_x[held].to(device)
    size = ae_x.shape[-1]

    def loss_view(images: torch.Tensor) -> torch.Tensor:
        """What the loss network sees: the image, upsampled to ``loss_size`` when set."""
        if s["loss_size"] and images.shape[-1] < s["loss_size"]:
            return F.interpolate(images, size=s["loss_size"], mode="bilinear", align_corners=False)
        return images

    def validate(model: nn.Module, loss: Callable) -> float:
        model.eval()
        with torch.no_grad():
            losses = [loss(model, {"input": val_x[b:b + 512], "target": loss_view(val_x[b:b + 512])})
                      for b in range(0, len(val_x), 512)]
        return -float(torch.stack(losses).mean())

    def test(model: nn.Module, point: str | None, alias: str) -> tuple[list[dict], dict]:
        train_z, test_z = encode(model, probe_x, device), encode(model, test_x, device)
        recon = encode(model, test_x, device, model)
        rows = probe_rows(point, alias, train_z, probe_y, test_z, test_y, s, cfg.seed)
        rows.append(row(point, alias, "reconstruction_mse", F.mse_loss(recon, test_x).item(), "test"))
        return rows, {"reconstruction": to_uint8(recon[:8])}

    references = []
    if s["pca_reference"] and cfg.network == BASELINE:  # once per seed: the baseline cell
        pca_train, pca_test = pca_embeddings(probe_x, test_x, seed=cfg.seed)
        references = [{"method": PCA_REFERENCE, **{k: r[k] for k in ("metric", "split", "value")}}
                      for r in probe_rows(None, "pca", pca_train, probe_y, pca_test, test_y, s, cfg.seed)]
    def sample(order, generator) -> dict:
        x = train_x[order().to(device)]
        return {"input": x, "target": loss_view(x)}

    if size != IMAGE_SIZE[cfg.dataset]:
        raise DplError(f"{cfg.dataset} images are {size} px here, not {IMAGE_SIZE[cfg.dataset]}: check the 'pad' setting")
    task = Task(new_model=lambda: autoencoder(s, cfg.dataset), n_items=len(train_x), sample=sample,
                forward=lambda model, b: [model(b["input"])],
                pixel_loss=lambda outputs, b: F.mse_loss(outputs[0], b["input"]), test=test,
                validate=validate if s["val_fraction"] else None, loss_images=lambda output, b: loss_view(output),
                normalization=s["normalization"])
    fields = {"references": references, "examples": {"reference": {"original": to_uint8(test_x[:8])}},
              "data": {"dataset": cfg.dataset, "autoencoder_split": split, "autoencoder_train": len(train_x),
                       "autoencoder_val": len(val_x), "probe_train": len(probe_x), "test": len(test_x), "size": size,
                       "kind": next(d.label for d in DATASETS if d.name == cfg.dataset)}}
    return task, fields


def run(cfg: CellConfig | dict, progress: bool = True, checkpoint_dir: str | None = None) -> tuple[dict, dict]:
    """Train one autoencoder per point of the cell and score its embedding (resuming from
    ``checkpoint_dir``); returns the result record and the examples ({alias: {reconstruction}},
    the originals)."""
    return train_and_test(cfg, make_task, progress, checkpoint_dir)


# --------------------------------------------------------------------------- what the book shows


def learning_checks(table, references) -> list[Check]:
    """The pixel-MSE control's embedding is at least as useful as PCA-64 of the pixels (- 0.02)."""
    from ..benchmark import learning_check, per_seed, reference_value

    ok = table[(table["status"] == "ok") & (table["network"] == BASELINE) & (table["metric"] == "probe_accuracy")
               & (table["split"] == "mean")]
    pca = reference_value(references, PCA_REFERENCE, "probe_accuracy", "mean")
    return [learning_check(NAME, "pixel baseline probe accuracy >= PCA-64 probes - 0.02", pca - 0.02, per_seed(ok))]


def example_figures(reference: dict, outputs: list[tuple[str, torch.Tensor]]) -> list:
    """The originals, then each output's reconstructions, one row each."""
    from ..benchmark import image_grid

    rows = [image_grid(list(reference["original"]), ["original"] * len(reference["original"]), height=64)]
    return rows + [image_grid(list(o), [t] * len(o), height=64) for t, o in outputs]


BENCHMARK = Benchmark(
    name=NAME, title="Autoencoder embeddings",
    description="Trains a deterministic conv autoencoder (z = 64) with the feature MSE at one extraction point (one "
                "model per point), then scores the embedding by the test accuracy of 7 MLP shapes trained on frozen "
                "training embeddings. The baseline trains with pixel MSE.",
    datasets=DATASETS, default_dataset="cifar10", budgets=BUDGETS, run=run,
    primary=Metric("probe_accuracy", ("mean",), "probe accuracy, mean of 7 MLP shapes"),
    output_key="reconstruction", example_figures=example_figures, learning_checks=learning_checks,
    no_learning="PCA of the pixels, 64 components",
    baseline_label="pixel-MSE training", model=autoencoder,
    study=Study(
        budget=PAPER_BUDGET, authors_script="perceptual_autoencoders/experiment.py", protocol=PROTOCOL,
        training_items=531_131 * 4 // 5,
        # measuring on CIFAR-10 fed to the loss network at 64 px, as SVHN is padded to 64 px
        # (the padded autoencoder: the authors' takes 64 + 16n px; the loss network dominates the step)
        step_cost_overrides={"train_limit": 1024, "test_limit": 64, "probe_epochs": 1, "train_split": "train",
                             "loss_size": 64, "val_fraction": 0.0, "patience": None, "model": "padded"}),
)
