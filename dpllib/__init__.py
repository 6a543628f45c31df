"""dpllib: deep perceptual loss networks, their extraction points, and the study's benchmarks.

    from dpllib import PerceptualLoss
    loss_fn = PerceptualLoss("vgg16", "relu2_2")       # ImageNet weights, inputs in [0, 1]
    loss = loss_fn(prediction, target)                  # N x 3 x H x W each
"""

from .errors import DplError, UnavailableError
from .features import FeatureExtractor
from .loss import PerceptualLoss, feature_distance, feature_distance_map, normalization_constants, perceptual_distance
from .networks import (
    ExtractionPoint,
    NetworkInfo,
    extraction_points,
    list_networks,
    network_info,
    resolve_point,
)
from .weights import load_network

__version__ = "0.1.0"


def __getattr__(name: str):
    """``dpllib.recommend`` (:func:`dpllib.advice.recommend`), imported on first use: it needs
    the analysis stack, which the loss does not."""
    if name == "recommend":
        from .advice import recommend

        return recommend
    raise AttributeError(f"module 'dpllib' has no attribute {name!r}")


__all__ = [
    "DplError",
    "ExtractionPoint",
    "FeatureExtractor",
    "NetworkInfo",
    "PerceptualLoss",
    "UnavailableError",
    "extraction_points",
    "feature_distance",
    "feature_distance_map",
    "list_networks",
    "load_network",
    "network_info",
    "normalization_constants",
    "perceptual_distance",
    "recommend",
    "resolve_point",
]
