"""Multi-point, truncated, in-place-safe feature extraction.

The network is traced with torch.fx (torchvision's feature-extraction tracer, or timm's for
timm models); the graph keeps only what the requested points need, so nothing past the
deepest point is computed. In-place ops (``ReLU(inplace=True)``, ``out += identity``) are
rewritten out of place, so a point's tensor is never changed by a later op.
"""

from __future__ import annotations

import copy
import math
import operator

import torch
from torch import fx, nn

_INPLACE_FUNCTIONS = {
    operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}


def tracer_module(source: str):
    """The torch.fx feature-extraction helpers of ``source`` ('timm' or 'torchvision')."""
    if source == "timm":
        from timm.models import _features_fx as module
    else:
        from torchvision.models import feature_extraction as module
    return module


def graph_node_names(model: nn.Module, source: str) -> list[str]:
    """Names of the eval-mode fx graph nodes of ``model`` (usable as extraction points)."""
    return list(tracer_module(source).get_graph_node_names(model)[1])


def _protect_outputs(gm: fx.GraphModule, outputs: set[str]) -> None:
    """Make every in-place op that consumes a returned node's tensor work out of place.

    Other in-place ops stay in place (they save memory and time, as in the original network).
    """
    protected = {n for n in gm.graph.nodes if n.name in outputs}
    for node in list(gm.graph.nodes):
        if not any(a in protected for a in node.all_input_nodes):
            continue
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            if getattr(module, "inplace", False) is True:
                copy_ = copy.deepcopy(module)
                copy_.inplace = False
                name = node.target.replace(".", "_") + "_out_of_place"
                gm.add_submodule(name, copy_)
                node.target = name
        elif node.op == "call_function" and node.target in _INPLACE_FUNCTIONS:
            node.target = _INPLACE_FUNCTIONS[node.target]
        elif node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            node.target = node.target[:-1]  # relu_ -> relu, add_ -> add
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    gm.recompile()


class FeatureExtractor(nn.Module):
    """Features of a frozen network at several points from one truncated forward pass.

    ``forward(x)`` takes an already normalised N x 3 x H x W batch and returns a list of
    tensors, one per point, in the order given: N x C x h x w maps, vectors (a global pool,
    a classifier) as N x C x 1 x 1, transformer tokens and channels-last maps as maps
    (``layouts``: (layout, prefix tokens) per point, see :func:`as_map`; default: maps).

    ``follows_mode`` False (default): the network stays in eval mode whatever ``train()`` says
    (batch norm uses its running statistics; no dropout). True: ``train()`` reaches it as any
    submodule (batch statistics, running statistics updated, dropout and stochastic depth
    active), as in the study's segmentation, autoencoder and lin-calibration code. Its weights
    are frozen either way.
    """

    def __init__(self, model: nn.Module, modules: list[str], source: str = "torchvision", follows_mode: bool = False,
                 layouts: list[tuple[str, int]] | None = None):
        super().__init__()
        if not modules:
            raise ValueError("FeatureExtractor needs at least one point")
        self.follows_mode = follows_mode
        self.modules_ = list(modules)
        self.layouts = list(layouts) if layouts is not None else [("map", 0)] * len(modules)
        keys = {m: f"p{i}" for i, m in enumerate(dict.fromkeys(modules))}
        self.keys = [keys[m] for m in modules]
        gm = tracer_module(source).create_feature_extractor(model.eval(), return_nodes=keys)
        output_node = next(n for n in gm.graph.nodes if n.op == "output")
        _protect_outputs(gm, {n.name for n in output_node.all_input_nodes})
        self.graph_module = gm.requires_grad_(False)
        self.train(False)

    def truncated(self, modules: list[str]) -> FeatureExtractor:
        """An extractor of some of these points that computes only what they need (up to the
        deepest of them), sharing this one's weights; no new trace."""
        missing = [m for m in modules if m not in self.modules_]
        if missing or not modules:
            raise ValueError(f"truncated() takes some of this extractor's points {self.modules_}, got {modules}")
        keep = {self.keys[self.modules_.index(m)] for m in modules}
        gm = fx.GraphModule(self.graph_module, copy.deepcopy(self.graph_module.graph))  # same submodules: shared weights
        output_node = next(n for n in gm.graph.nodes if n.op == "output")
        output_node.args = ({k: v for k, v in output_node.args[0].items() if k in keep},)
        gm.graph.eliminate_dead_code()
        gm.delete_all_unused_submodules()
        gm.recompile()
        view = FeatureExtractor.__new__(FeatureExtractor)
        nn.Module.__init__(view)
        view.follows_mode = self.follows_mode
        view.modules_ = list(modules)
        view.layouts = [self.layouts[self.modules_.index(m)] for m in modules]
        view.keys = [self.keys[self.modules_.index(m)] for m in modules]
        view.graph_module = gm
        return view.train(self.training)

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Eval mode unless ``follows_mode`` (see the class docstring)."""
        return super().train(mode and self.follows_mode)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.graph_module(x)
        return [as_map(out[k], layout, prefix, tuple(x.shape[-2:])) for k, (layout, prefix) in zip(self.keys, self.layouts)]


def as_map(features: torch.Tensor, layout: str, prefix_tokens: int = 0, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A point's output as N x C x h x w (``layout``: see :data:`dpllib.networks.LAYOUTS`): a
    vector as C x 1 x 1; tokens without the ``prefix_tokens`` (class, register, distillation),
    the patch tokens on their grid (its aspect that of the input ``size``, H x W); channels-last
    permuted."""
    if features.dim() == 2:
        return features[:, :, None, None]
    if layout == "channels_last":
        return features.permute(0, 3, 1, 2)
    if layout == "tokens":
        patches = features[:, prefix_tokens:, :]
        n, cells, c = patches.shape
        h = max(1, round(math.sqrt(cells * size[0] / size[1])))
        if h * (cells // h) != cells:
            raise ValueError(f"{cells} patch tokens do not fill a grid of the input's aspect {size[0]} x {size[1]}")
        return patches.transpose(1, 2).reshape(n, c, h, cells // h)
    return features
