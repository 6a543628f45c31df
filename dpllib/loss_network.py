"""A loss network: one network with its weights, read at chosen extraction points, with the input
normalisation and the mode it runs in, built once. :class:`~dpllib.PerceptualLoss` compares images
through one; the trainers and the cost measurement take one too."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DplError, check_one_of
from .features import FeatureExtractor
from .networks import ExtractionPoint, feature_shapes, network_info, resolve, resolve_point
from .weights import Weights, load_network, weights_label

NORMALIZATIONS = ("network", "imagenet", "lpips", "none")
INPUT_RANGES = ((0.0, 1.0), (-1.0, 1.0))
NETWORK_MODES = ("eval", "train")  # the loss network's mode (see LossNetwork)
# LPIPS's ScalingLayer, applied to inputs in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


def normalization_constants(normalization: str, network_mean: Sequence[float], network_std: Sequence[float],
                            input_range: tuple[float, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (shift, scale) so that ``(x - shift) / scale`` is what the network expects
    for images ``x`` in ``input_range``, with the range conversion folded in.

    normalization: ``"network"`` (``network_mean``/``network_std``, for inputs in [0, 1]),
    ``"imagenet"``, ``"lpips"`` (LPIPS's scaling layer, for inputs in [-1, 1]) or ``"none"``.
    """
    check_one_of("normalization", normalization, NORMALIZATIONS)
    if normalization == "none":
        return (0.0,) * 3, (1.0,) * 3
    if normalization == "lpips":
        shift, scale = LPIPS_SHIFT, LPIPS_SCALE
        if input_range == (0.0, 1.0):  # x11 = 2 x - 1: (x11 - sh) / sc = (x - (sh + 1) / 2) / (sc / 2)
            shift, scale = tuple((m + 1) / 2 for m in shift), tuple(sc / 2 for sc in scale)
        return tuple(shift), tuple(scale)
    from .catalog import IMAGENET_MEAN, IMAGENET_STD

    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalization == "imagenet" else (network_mean, network_std)
    if input_range == (-1.0, 1.0):  # x01 = (x + 1) / 2: (x01 - m) / s = (x - (2m - 1)) / (2s)
        return tuple(2 * m - 1 for m in mean), tuple(2 * sd for sd in std)
    return tuple(mean), tuple(std)


class LossNetwork(nn.Module):
    """One loss network, built once: ``network`` with ``weights``, traced to its ``points``,
    frozen, and run in eval mode (``network_mode="eval"``) or following ``train()`` / ``eval()``
    (``"train"``: batch statistics, dropout; as the study's segmentation, autoencoder and lin
    calibration run it).

    ``features(images, points=None)`` -> one feature tensor per point (N x C x h x w maps, or
    the point's own layout) for images N x 3 x H x W in ``input_range``, normalised as
    ``normalization`` says (``"network"``: what the weights were trained with; ``"imagenet"``,
    ``"lpips"``, ``"none"``), resized to ``resize`` x ``resize`` px first when given (networks
    that take one size only). ``points`` picks some of its points (module names or aliases)
    and runs the network only as far as they need.

    Args: ``weights``: ``"imagenet"``, ``"random"`` (initialised under ``seed``), a file path, a
    state dict or a loaded module; ``channels_last``: run in channels-last memory format (same
    numbers to float precision).
    """

    def __init__(self, network: str, points: str | ExtractionPoint | Sequence[str | ExtractionPoint],
                 weights: Weights = "imagenet", normalization: str = "network",
                 input_range: tuple[float, float] = (0.0, 1.0), network_mode: str = "eval", seed: int = 0,
                 channels_last: bool = True, resize: int | None = None):
        super().__init__()
        points = [points] if isinstance(points, (str, ExtractionPoint)) else list(points or [])
        if not points:
            raise DplError("a loss network needs at least one extraction point")
        check_one_of("network_mode", network_mode, NETWORK_MODES)
        input_range = tuple(float(v) for v in input_range)
        if input_range not in INPUT_RANGES:
            raise DplError(f"input_range must be (0, 1) or (-1, 1), got {input_range}")
        self.network = network
        self.points = [resolve_point(network, p) for p in points]
        check_maps(network, self.points)
        self.input_range, self.normalization, self.network_mode, self.resize = (input_range, normalization,
                                                                               network_mode, resize)
        info = network_info(network)
        shift, scale = normalization_constants(normalization, info.mean, info.std, input_range)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = load_network(network, weights, seed=seed).to(memory_format=self.memory_format)
        self.weights_label = weights_label(weights)
        self.extractor = FeatureExtractor(model, [p.module for p in self.points], resolve(network)[0],
                                          follows_mode=network_mode == "train",
                                          layouts=[(p.layout, p.prefix_tokens) for p in self.points])
        self._min_size: int | None = None
        self._truncated: dict[tuple, FeatureExtractor] = {}
        self.train(False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in ``input_range`` -> the network's input convention."""
        return (images - self.shift) / self.scale

    def features(self, images: torch.Tensor, points: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Features at each point (or at ``points``) of a batch in ``input_range``: one truncated pass."""
        return self.normalized_features(self.normalize(images), points)

    def normalized_features(self, images: torch.Tensor, points: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Features of images already in the network's input convention (resized first with ``resize``)."""
        if self.resize is not None and tuple(images.shape[-2:]) != (self.resize, self.resize):
            images = F.interpolate(images, size=(self.resize, self.resize), mode="bilinear", antialias=True,
                                   align_corners=False)
        try:
            feats = self.extractor_of(points, images.device)(images.contiguous(memory_format=self.memory_format))
        except AssertionError as err:  # timm's fixed-size models assert the input size
            size = network_info(self.network).input_size
            raise DplError(f"{self.network} takes {size}x{size} px images only (its position embeddings or "
                           f"attention windows have a fixed size), got {images.shape[-2]}x{images.shape[-1]}; resize "
                           f"the images to {size}x{size} px (resize={size} does it)") from err
        except (RuntimeError, ValueError) as err:
            self._raise_if_too_small(images, err)
            raise
        if any(f.dim() == 4 and f.shape[-1] * f.shape[-2] == 0 for f in feats):
            self._raise_if_too_small(images, None)
        return feats

    def extractor_of(self, points: Sequence[str] | None, device: torch.device) -> FeatureExtractor:
        """The extractor of all points, or a view of it truncated to ``points`` (cached per
        device: a view made before ``.to(device)`` would keep the old device's tensors)."""
        if points is None:
            return self.extractor
        key = (tuple(resolve_point(self.network, p).module for p in points), str(device))
        if key not in self._truncated:
            self._truncated[key] = self.extractor.truncated(list(key[0]))
        return self._truncated[key]

    def min_input_size(self) -> int:
        """Smallest square input (pixels) for which every point has a non-empty feature map."""
        if self._min_size is None:
            import copy

            probe = copy.deepcopy(self.extractor).to("meta").train(False)

            def fits(size: int) -> bool:
                try:
                    with torch.no_grad():
                        feats = probe(torch.empty(1, 3, size, size, device="meta"))
                except (RuntimeError, ValueError, AssertionError):
                    return False
                return all(f.dim() != 4 or f.shape[-1] * f.shape[-2] > 0 for f in feats)

            lo, hi = 1, 2048
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
            self._min_size = lo
        return self._min_size

    def _raise_if_too_small(self, images: torch.Tensor, err: Exception | None) -> None:
        need = self.min_input_size()
        h, w = images.shape[-2:]
        if min(h, w) < need:
            deepest = max(self.points, key=lambda p: p.depth)
            raise DplError(f"images of {h}x{w} px are too small for {self.network} up to "
                           f"{deepest.module}: it needs at least {need}x{need} px. Upsample the "
                           "images or choose an earlier extraction point.") from err

    def extra_repr(self) -> str:
        pts = ", ".join(p.alias for p in self.points)
        return (f"network={self.network!r}, points=[{pts}], weights={self.weights_label!r}, "
                f"input_range={self.input_range}, normalization={self.normalization!r}, "
                f"network_mode={self.network_mode!r}")


def check_maps(network: str, points: list[ExtractionPoint]) -> None:
    """Refuse points whose features cannot be read as maps (:data:`dpllib.networks.LAYOUTS`)."""
    for point in points:
        if point.layout is None:
            shape = feature_shapes(network, (point.module,))[0]
            raise DplError(
                f"{network} point {point.module!r} gives features of shape {shape}, which are no feature map "
                "(N x C x H x W), vector (N x C), transformer tokens on a patch grid or channels-last map; "
                f"choose another point (dpl networks {network} --all lists them with their channels).")
