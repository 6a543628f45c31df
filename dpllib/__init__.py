"""dpllib: deep perceptual loss networks, their extraction points, and the study's benchmarks.

    from dpllib import PerceptualLoss
    loss_fn = PerceptualLoss("vgg16", "relu2_2")       # ImageNet weights, inputs in [0, 1]
    loss = loss_fn(prediction, target)                  # N x 3 x H x W each

The public names are imported on first use (PEP 562): ``import dpllib.benchmark`` or
``import dpllib.results`` loads neither torch nor the analysis stack, so the CLI and a notebook
cell that needs neither start in a fraction of a second.
"""

from __future__ import annotations

import importlib

from .errors import DplError, UnavailableError

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "FeatureExtractor": "features",
    "PerceptualLoss": "loss", "feature_distance": "loss", "feature_distance_map": "loss",
    "LossNetwork": "loss_network", "normalization_constants": "loss_network", "perceptual_distance": "loss",
    "ExtractionPoint": "networks", "NetworkInfo": "networks", "extraction_points": "networks",
    "list_networks": "networks", "network_info": "networks", "resolve_point": "networks",
    "load_network": "weights",
    "recommend": "advice",
}


def __getattr__(name: str):
    """A public name, imported from its module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dpllib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["DplError", "UnavailableError", *_LAZY]
