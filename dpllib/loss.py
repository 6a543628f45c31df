"""Deep perceptual loss: distances between two images' features at chosen extraction points.

    loss = sum_p  w_p * spatial_mean( d(phi_p(x), phi_p(y)) )

with d one of
- ``mse``:   mean over channels of (a - b)^2 (= per-image feature MSE),
- ``l1``:    mean over channels of |a - b|,
- ``lpips``: unit-normalise over channels, squared difference, sum over channels, or a
  non-negative 1x1 weighting of the channels (LPIPS "lin" calibration),
- ``cosine``: 1 - cosine similarity over channels (in [0, 2]); at a vector point (a pooled
  embedding or class token, alias ``embedding`` on timm transformers) this is DreamSim's distance
  (Fu et al., NeurIPS 2023: 1 - cos of the embeddings) for one backbone; uncalibrated LPIPS
  of the same features is twice it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .download import download
from .errors import DplError, check_one_of
from .loss_network import LossNetwork
from .networks import ExtractionPoint
from .paths import cache_dir
from .weights import Weights

DISTANCES = ("mse", "l1", "lpips", "cosine")
REDUCTIONS = ("mean", "sum", "none", "map")
# PerceptualLoss's arguments that build its LossNetwork, at their defaults (a LossNetwork passed in brings its own)
LOSS_NETWORK_DEFAULTS = {"points": None, "weights": "imagenet", "input_range": (0.0, 1.0), "normalization": "network",
                         "seed": 0, "channels_last": True, "network_mode": "eval", "resize": None}
# The layers LPIPS v0.1 reads, as torchvision modules.
LPIPS_POINTS = {
    "alexnet": ("features.1", "features.4", "features.7", "features.9", "features.11"),
    "vgg16": ("features.3", "features.8", "features.15", "features.22", "features.29"),
    "squeezenet1_1": ("features.1", "features.4", "features.7", "features.9", "features.10",
                      "features.11", "features.12"),
}
LPIPS_NET = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
# The published v0.1 lin weights (richzhang/PerceptualSimilarity, BSD-2-Clause).
LPIPS_LIN_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{}.pth"
LPIPS_LIN_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    "squeeze": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
}
# Inputs may overshoot the declared range by this fraction of its span (network outputs do)
# before the range check calls them wrong.
RANGE_MARGIN = 0.1


def lpips_lin_weights(net: str) -> list[torch.Tensor]:
    """LPIPS v0.1 lin weights for ``net`` in {'alex', 'vgg', 'squeeze'}: one non-negative
    1 x C x 1 x 1 tensor per LPIPS layer. Read from the ``lpips`` package when installed,
    else downloaded once (sha256-checked) into :func:`cache_dir`."""
    if net not in LPIPS_LIN_SHA256:
        raise DplError(f"LPIPS lin weights exist for alex, vgg, squeeze, not {net!r}")
    path = cache_dir() / "lpips" / "v0.1" / f"{net}.pth"
    try:
        import lpips

        installed = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        if installed.is_file():
            path = installed
    except ImportError:
        pass
    if not path.is_file():
        download(LPIPS_LIN_URL.format(net), path, LPIPS_LIN_SHA256[net], what=f"LPIPS {net} lin weights")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"] for i in range(len(state))]


def unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each spatial position's feature vector by its L2 norm over channels (dim 1)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def feature_distance_map(a: torch.Tensor, b: torch.Tensor, distance: str,
                         channel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """N x 1 x h x w map of the distance between two N x C x h x w feature tensors."""
    a, b = a.float(), b.float()
    if distance == "mse":
        return (a - b).pow(2).mean(dim=1, keepdim=True)
    if distance == "l1":
        return (a - b).abs().mean(dim=1, keepdim=True)
    if distance == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=1, eps=1e-8)[:, None]
    diff = (unit_normalize(a) - unit_normalize(b)).pow(2)
    if channel_weights is None:
        return diff.sum(dim=1, keepdim=True)
    return (diff * channel_weights).sum(dim=1, keepdim=True)


def feature_distance(features_x: Sequence[torch.Tensor], features_y: Sequence[torch.Tensor], distance: str = "mse",
                     point_weights: Sequence[float] | torch.Tensor | None = None,
                     channel_weights: Sequence[torch.Tensor] | None = None, reduction: str = "mean",
                     size: tuple[int, int] | None = None) -> torch.Tensor:
    """The deep perceptual distance from features: per point i a distance map of
    ``features_x[i]`` and ``features_y[i]`` (N x C x h x w each; see
    :func:`feature_distance_map`), weighted by ``point_weights`` (default 1), averaged over
    space and summed over points.

    reduction: ``"mean"`` (scalar), ``"sum"``, ``"none"`` (N) or ``"map"`` (N x 1 x H x W: each
    point's map upsampled to ``size``, the input's H x W).
    """
    check_one_of("distance", distance, DISTANCES)
    check_one_of("reduction", reduction, REDUCTIONS)
    if len(features_x) != len(features_y):
        raise DplError(f"features of {len(features_x)} and {len(features_y)} points; give both the same points")
    if reduction == "map" and size is None:
        raise DplError("reduction='map' needs the input size (size=(H, W))")
    if point_weights is None:
        point_weights = [1.0] * len(features_x)
    total = None
    for i, (fx, fy) in enumerate(zip(features_x, features_y)):
        lin = channel_weights[i] if channel_weights else None
        dmap = feature_distance_map(fx, fy, distance, lin) * point_weights[i]
        if reduction == "map":
            dmap = F.interpolate(dmap, size=size, mode="bilinear", align_corners=False)
        else:
            dmap = dmap.mean(dim=(1, 2, 3))
        total = dmap if total is None else total + dmap
    if reduction == "mean":
        return total.mean()
    if reduction == "sum":
        return total.sum()
    return total


def perceptual_distance(x: torch.Tensor, y: torch.Tensor, features: Callable[[torch.Tensor], list[torch.Tensor]],
                        distance: str = "mse", point_weights: Sequence[float] | torch.Tensor | None = None,
                        channel_weights: Sequence[torch.Tensor] | None = None,
                        reduction: str = "mean", separately: bool = False) -> torch.Tensor:
    """The deep perceptual distance of two N x 3 x H x W batches, already in the network's input
    convention: ``features(images)`` returns each point's N x C x h x w features, and
    :func:`feature_distance` compares them (same ``distance``, ``point_weights``,
    ``channel_weights`` and ``reduction``). The two batches go through the network separately
    when ``separately`` (a network in training mode: each batch its own batch statistics) or
    when only one needs gradients (backpropagation then skips the other); else together in
    one pass.
    """
    if separately or x.requires_grad or y.requires_grad:
        fx, fy = features(x), features(y)
    else:
        n = x.shape[0]
        both = features(torch.cat([x, y]))
        fx, fy = [f[:n] for f in both], [f[n:] for f in both]
    return feature_distance(fx, fy, distance, point_weights, channel_weights, reduction, tuple(x.shape[-2:]))


class PerceptualLoss(nn.Module):
    """Deep perceptual loss between two image batches.

    Args:
        network: a name from :func:`dpllib.list_networks` (any torchvision/timm model works), or
            a :class:`~dpllib.LossNetwork` already built (several losses can share one; its
            points, weights, input range, normalisation, mode, seed, memory format and resize
            come with it, and passing them here too is an error).
        points: one extraction point or several (module name, alias or fx node).
        weights: ``"imagenet"``, ``"random"``, a file path or a state dict.
        distance: ``"mse"``, ``"l1"``, ``"lpips"`` or ``"cosine"`` (see the module docstring).
        point_weights: one factor per point (default 1 each).
        calibration: LPIPS linear channel weights for ``distance="lpips"``: ``"lpips"`` (the
            published v0.1 weights; LPIPS's own network and points), a list of 1 x C x 1 x 1
            tensors, or a path to a file of them.
        input_range: ``(0, 1)`` or ``(-1, 1)``: the range the images are in.
        normalization: ``"network"`` (what the weights were trained with), ``"imagenet"``,
            ``"lpips"`` (LPIPS's scaling layer) or ``"none"`` (images fed as they are).
        reduction: ``"mean"`` (scalar), ``"sum"``, ``"none"`` (shape N) or ``"map"``
            (N x 1 x H x W, each point's map upsampled to the input size).
        grayscale: ``"error"`` or ``"rgb"`` (1-channel images are repeated to 3 channels).
        check_inputs: validate shapes, values and range on every call (skipped under
            torch.compile); costs one device sync.
        seed: initialisation seed for ``weights="random"``.
        network_mode: ``"eval"`` (default): the loss network always runs in eval mode (batch
            norm's running statistics, no dropout). ``"train"``: it follows this module's
            ``train()`` / ``eval()`` like any submodule, as in the study's segmentation,
            autoencoder and lin-calibration code (batch statistics, each input in its own
            pass; running statistics updated; dropout and stochastic depth active). Weights
            stay frozen either way; a new loss starts in eval mode.
        channels_last: run the network in channels-last memory format (faster convolutions
            on CPU and on CUDA tensor cores; same numbers to float precision).
        resize: resize the images to ``resize`` x ``resize`` px (bilinear, antialiased) before the
            network: for a network that takes one size only (``dpllib.networks.fixed_input_size``:
            Swin, distilled DeiT), as DreamSim feeds its backbones 224 px. None: as they are.

    Inputs: two float tensors N x 3 x H x W in ``input_range``. The loss network is frozen
    (and in eval mode unless ``network_mode="train"``); gradients flow to both inputs.
    """

    def __init__(
        self,
        network: str | LossNetwork,
        points: str | ExtractionPoint | Sequence[str | ExtractionPoint] | None = None,
        weights: Weights = "imagenet",
        distance: str = "mse",
        point_weights: Sequence[float] | None = None,
        calibration: str | os.PathLike | Sequence[torch.Tensor] | None = None,
        input_range: tuple[float, float] = (0.0, 1.0),
        normalization: str = "network",
        reduction: str = "mean",
        grayscale: str = "error",
        check_inputs: bool = True,
        seed: int = 0,
        channels_last: bool = True,
        network_mode: str = "eval",
        resize: int | None = None,
    ):
        super().__init__()
        check_one_of("distance", distance, DISTANCES)
        check_one_of("reduction", reduction, REDUCTIONS)
        check_one_of("grayscale", grayscale, ("error", "rgb"))
        if isinstance(network, LossNetwork):
            given = {k: v for k, v in (("points", points), ("weights", weights), ("input_range", input_range),
                                       ("normalization", normalization), ("seed", seed),
                                       ("channels_last", channels_last), ("network_mode", network_mode),
                                       ("resize", resize)) if v != LOSS_NETWORK_DEFAULTS[k]}
            if given:
                raise DplError(f"{', '.join(given)} belong to the LossNetwork passed in; set them when building it")
            self.net = network
        else:
            self.net = LossNetwork(network, points, weights, normalization, input_range, network_mode, seed,
                                   channels_last, resize)
        if point_weights is not None and len(point_weights) != len(self.net.points):
            raise DplError(f"point_weights has {len(point_weights)} entries for {len(self.net.points)} points")
        self.distance, self.reduction, self.grayscale, self.check_inputs = distance, reduction, grayscale, check_inputs
        self.register_buffer("point_weights", torch.tensor(point_weights or [1.0] * len(self.net.points)),
                             persistent=False)
        self.channel_weights = nn.ParameterList(
            self._calibration(calibration) if calibration is not None else [])
        self.train(False)

    # what the loss network holds, read through the loss (``net`` is the LossNetwork)
    network = property(lambda self: self.net.network)
    points = property(lambda self: self.net.points)
    extractor = property(lambda self: self.net.extractor)
    input_range = property(lambda self: self.net.input_range)
    normalization = property(lambda self: self.net.normalization)
    network_mode = property(lambda self: self.net.network_mode)
    weights_label = property(lambda self: self.net.weights_label)

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def lpips(cls, net: str = "alex", lin: bool = True, **kwargs) -> PerceptualLoss:
        """LPIPS v0.1 (Zhang et al. 2018): ``net`` in {'alex', 'vgg', 'squeeze'}, inputs in
        [-1, 1] unless ``input_range`` says otherwise, lin-calibrated when ``lin``."""
        if net not in LPIPS_NET:
            raise DplError(f"LPIPS net must be one of {sorted(LPIPS_NET)}, got {net!r}")
        network = LPIPS_NET[net]
        kwargs.setdefault("input_range", (-1.0, 1.0))
        return cls(network, LPIPS_POINTS[network], distance="lpips", normalization="lpips",
                   calibration="lpips" if lin else None, **kwargs)

    def _calibration(self, calibration) -> list[nn.Parameter]:
        if self.distance != "lpips":
            raise DplError("calibration (lin weights) applies to distance='lpips' only")
        if isinstance(calibration, str) and calibration == "lpips":
            net = {v: k for k, v in LPIPS_NET.items()}.get(self.network)
            if net is None or [p.module for p in self.points] != list(LPIPS_POINTS[self.network]):
                raise DplError("calibration='lpips' needs LPIPS's own network and points: use "
                               "PerceptualLoss.lpips(net) or pass your own lin weights")
            tensors = lpips_lin_weights(net)
        elif isinstance(calibration, (str, os.PathLike)):
            state = torch.load(calibration, map_location="cpu", weights_only=True)
            tensors = list(state.values()) if isinstance(state, dict) else list(state)
        else:
            tensors = list(calibration)
        if len(tensors) != len(self.points):
            raise DplError(f"calibration has {len(tensors)} weight tensors for {len(self.points)} points")
        params = []
        for point, w in zip(self.points, tensors):
            w = torch.as_tensor(w, dtype=torch.float32).reshape(1, -1, 1, 1)
            if point.channels is not None and w.shape[1] != point.channels:
                raise DplError(f"calibration weights for {point.module} have {w.shape[1]} "
                               f"channels, the point has {point.channels}")
            if (w < 0).any():
                raise DplError(f"calibration weights for {point.module} must be non-negative")
            params.append(nn.Parameter(w, requires_grad=False))
        return params

    # ------------------------------------------------------------------ forward

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in ``input_range`` -> the network's input convention."""
        return self.net.normalize(images)

    def features(self, images: torch.Tensor, points: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Features at each point (or at ``points``, some of this loss's points by module name or
        alias, computing only what they need) for a batch in ``input_range``: one truncated pass."""
        return self.net.features(images, points)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._checked(x, y)
        return perceptual_distance(self.normalize(x), self.normalize(y), self.net.normalized_features, self.distance,
                                   self.point_weights, list(self.channel_weights) or None, self.reduction,
                                   separately=self.extractor.training)

    # ------------------------------------------------------------------ checks

    def _checked(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        checked = []
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor):
                raise DplError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.dim() != 4:
                hint = " (add a batch dimension: img[None])" if t.dim() == 3 else ""
                raise DplError(f"{name} must be N x 3 x H x W, got shape {tuple(t.shape)}{hint}")
            if not t.is_floating_point():
                raise DplError(f"{name} must be a float tensor in {self.input_range}, got {t.dtype} "
                               "(convert uint8 images with img.float() / 255)")
            if t.shape[1] == 1 and self.grayscale == "rgb":
                t = t.expand(-1, 3, -1, -1)
            elif t.shape[1] != 3:
                hint = " (grayscale: pass grayscale='rgb' to repeat it to RGB)" if t.shape[1] == 1 else ""
                raise DplError(f"{name} must have 3 channels (RGB), got {t.shape[1]}{hint}")
            checked.append(t)
        x, y = checked
        if x.shape != y.shape:
            raise DplError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        if self.check_inputs and not torch.compiler.is_compiling():
            lo, hi = self.input_range
            margin = RANGE_MARGIN * (hi - lo)
            # one pass and one device sync for both; NaN propagates into min/max
            stats = torch.stack([torch.stack(torch.aminmax(t.detach().float())) for t in (x, y)]).tolist()
            for name, t, (tmin, tmax) in (("x", x, stats[0]), ("y", y, stats[1])):
                if not (math.isfinite(tmin) and math.isfinite(tmax)):
                    raise DplError(f"{name} contains NaN or inf values")
                if tmin < lo - margin or tmax > hi + margin:
                    other = (-1.0, 1.0) if self.input_range == (0.0, 1.0) else (0.0, 1.0)
                    raise DplError(
                        f"{name} has values in [{tmin:.3g}, {tmax:.3g}], outside the declared "
                        f"input_range {self.input_range}. If your images are in {other}, pass "
                        f"input_range={other}; else rescale them (check_inputs=False skips this).")
                if self.input_range == (-1.0, 1.0) and tmin >= 0 and t.numel() > 3 * 64 * 64:
                    warnings.warn(f"{name} has no negative values although input_range is (-1, 1); "
                                  "if your images are in [0, 1], pass input_range=(0, 1)", stacklevel=3)
        return x, y

    def min_input_size(self) -> int:
        """Smallest square input (pixels) for which every point has a non-empty feature map."""
        return self.net.min_input_size()

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, reduction={self.reduction!r}"
