"""PerceptualLoss: equality with the lpips package, distances, reductions, checks, dtypes."""

import pytest
import torch
import torch.nn.functional as F

from dpllib import DplError, PerceptualLoss, load_network, normalization_constants, perceptual_distance
from dpllib.loss import LPIPS_NET

lpips = pytest.importorskip("lpips")


@pytest.mark.parametrize(("net", "lin"), [(net, lin) for net in LPIPS_NET for lin in (False, True)
                                          if lin or net != "vgg"])
@pytest.mark.slow
def test_equals_the_lpips_package(net, lin, photos):
    """The reference LPIPS with a random backbone, and dpllib's LPIPS with that backbone loaded
    from its state dict (one loaded network shared by the [-1, 1] and the [0, 1] loss). Without
    lin on AlexNet and SqueezeNet: the uncalibrated distance is one code path for every network,
    and VGG's layers are checked with lin (VGG-16 is the slowest to build)."""
    ref = lpips.LPIPS(net=net, pnet_rand=True, lpips=lin, verbose=False).eval()
    # lpips keeps torchvision's module indices inside its slices: net.sliceK.<idx>.<param>
    backbone = load_network(LPIPS_NET[net], {"features." + k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()})
    ours = PerceptualLoss.lpips(net, lin=lin, weights=backbone, reduction="none")
    x, y = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    real = torch.cat([photos["chelsea"], photos["coffee"]]) * 2 - 1
    other = torch.cat([photos["china"], photos["chelsea"].flip(-1)]) * 2 - 1
    with torch.no_grad():
        for a, b in ((x, y), (real, other)):
            expected = ref(a, b).flatten()
            got = ours(a, b)
            assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got, expected)
            assert (got > 0).all()
    # the same on [0, 1] inputs with lpips' normalize=True
    ours01 = PerceptualLoss.lpips(net, lin=lin, weights=backbone, input_range=(0, 1), reduction="none")
    with torch.no_grad():
        assert torch.allclose(ours01(real * 0.5 + 0.5, other * 0.5 + 0.5),
                              ref(real * 0.5 + 0.5, other * 0.5 + 0.5, normalize=True).flatten(), atol=1e-5)


def test_spatial_map_equals_lpips_spatial(photos):
    ref = lpips.LPIPS(net="alex", pnet_rand=True, spatial=True, verbose=False).eval()
    state = {"features." + k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()}
    ours = PerceptualLoss.lpips("alex", weights=state, reduction="map")
    a, b = photos["chelsea"] * 2 - 1, photos["coffee"] * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(a, b), ref(a, b), atol=1e-5)


@pytest.mark.slow
def test_mse_is_the_feature_mse():
    loss = PerceptualLoss("vgg11", "relu2_1", weights="random", normalization="none")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    head = load_network("vgg11", "random").features[:5]  # same seed: the same weights
    fx, fy = head(x), head(y)
    assert torch.allclose(loss(x, y), F.mse_loss(fx, fy), rtol=1e-5)
    l1 = PerceptualLoss("vgg11", "relu2_1", weights="random", normalization="none", distance="l1")
    assert torch.allclose(l1(x, y), F.l1_loss(fx, fy), rtol=1e-5)


def test_reductions_and_point_weights():
    x, y = torch.rand(4, 3, 48, 48), torch.rand(4, 3, 48, 48)
    per_image = PerceptualLoss("resnet18", ["relu", "layer1"], weights="random", reduction="none")(x, y)
    assert per_image.shape == (4,)
    mean = PerceptualLoss("resnet18", ["relu", "layer1"], weights="random")(x, y)
    assert torch.allclose(mean, per_image.mean())
    weighted = PerceptualLoss("resnet18", ["relu", "layer1"], weights="random", point_weights=[2.0, 0.0],
                              reduction="sum")(x, y)
    relu_only = PerceptualLoss("resnet18", "relu", weights="random", reduction="sum")(x, y)
    assert torch.allclose(weighted, 2 * relu_only)
    assert PerceptualLoss("resnet18", "layer1", weights="random", reduction="map")(x, y).shape == (4, 1, 48, 48)


def test_gradients_reach_the_images_not_the_network():
    loss = PerceptualLoss("squeezenet1_1", "fire5", weights="random")
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    loss(x, torch.rand(2, 3, 64, 64)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training and not loss.extractor.graph_module.training


@pytest.mark.parametrize("network, point, has_batchnorm", [
    ("resnet18", "layer2", True), ("efficientnet_lite0", "stage4", True), ("vgg11", "relu3_2", False),
    ("alexnet", "relu5", False)])
def test_training_mode_changes_the_loss_of_batch_norm_networks_only(network, point, has_batchnorm):
    """network_mode='train' (the study's segmentation, autoencoder and lin calibration): batch
    statistics instead of running ones, so the loss of a batch-norm network differs from eval
    mode's; a network without batch norm (or dropout before the point) gives the same loss.
    The weights stay frozen either way; eval() brings running statistics back."""
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    eval_mode = PerceptualLoss(network, point, weights="random")
    train_mode = PerceptualLoss(network, point, weights="random", network_mode="train")
    assert not train_mode.extractor.training  # a new loss starts in eval mode
    with torch.no_grad():
        eval_loss = eval_mode.train()(x, y)  # 'eval' ignores train()
        assert not eval_mode.extractor.training
        assert torch.equal(train_mode(x, y), eval_loss)
        before = {k: v.clone() for k, v in train_mode.state_dict().items()}
        train_loss = train_mode.train()(x, y)
    assert train_mode.extractor.training and all(not p.requires_grad for p in train_mode.parameters())
    changed = [k for k, v in train_mode.state_dict().items() if not torch.equal(v, before[k])]
    if has_batchnorm:
        assert not torch.allclose(train_loss, eval_loss, rtol=1e-3)
        assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    else:
        assert torch.allclose(train_loss, eval_loss, rtol=1e-6) and not changed
    with torch.no_grad():
        assert torch.equal(train_mode.eval()(x, y), train_mode(x, y)) and not train_mode.extractor.training


def test_identical_images_have_zero_distance(photos):
    loss = PerceptualLoss("efficientnet_lite0", ["stem", "stage4"], distance="lpips")
    assert loss(photos["coffee"], photos["coffee"]).item() == pytest.approx(0, abs=1e-7)
    assert loss(photos["coffee"], photos["china"]).item() > 0.01


def test_functional_core_by_hand():
    """With the identity as the 'network', mse distance is pixel MSE and l1 is pixel MAE."""
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    identity = lambda images: [images]  # noqa: E731
    assert torch.allclose(perceptual_distance(x, y, identity), ((x - y) ** 2).mean())
    assert torch.allclose(perceptual_distance(x, y, identity, "l1", reduction="none"), (x - y).abs().mean((1, 2, 3)))
    two = lambda images: [images, images[:, :, ::2, ::2]]  # noqa: E731
    per_image = perceptual_distance(x, y, two, point_weights=[1.0, 0.5], reduction="none")
    expected = ((x - y) ** 2).mean((1, 2, 3)) + 0.5 * ((x - y)[:, :, ::2, ::2] ** 2).mean((1, 2, 3))
    assert torch.allclose(per_image, expected)
    assert perceptual_distance(x, y, two, reduction="map").shape == (2, 1, 8, 8)


def test_module_wraps_the_functional_core():
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    module = PerceptualLoss("alexnet", ["relu2", "relu5"], weights="random", point_weights=[1.0, 2.0])
    core = perceptual_distance(module.normalize(x), module.normalize(y), module.extractor, "mse", [1.0, 2.0])
    assert torch.allclose(module(x, y), core)


def test_a_loss_network_is_built_once_and_shared():
    """A LossNetwork (network, weights, points, normalisation, mode) built once gives the losses
    made on it the numbers of losses built from the same arguments; two losses share its one
    copy; the network's own settings are refused beside it; the cost measurement takes it."""
    from dpllib import LossNetwork
    from dpllib.costs import measure_point_costs

    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    net = LossNetwork("alexnet", ["relu2", "relu5"], weights="random", seed=3, input_range=(-1.0, 1.0))
    plain = PerceptualLoss("alexnet", ["relu2", "relu5"], weights="random", seed=3, input_range=(-1.0, 1.0),
                           distance="lpips")
    shared = [PerceptualLoss(net, distance="lpips"), PerceptualLoss(net, distance="l1", reduction="none")]
    assert torch.equal(shared[0](x, y), plain(x, y))
    assert all(torch.equal(a, b) for a, b in zip(net.features(x), plain.features(x)))
    assert shared[0].net is shared[1].net and shared[0].points == net.points and shared[1](x, y).shape == (2,)
    with pytest.raises(DplError, match="weights, network_mode belong to the LossNetwork passed in"):
        PerceptualLoss(net, weights="imagenet2", network_mode="train")
    rows = measure_point_costs(net, size=64, batch=2, repeats=1, min_seconds=0)
    assert [r["point"] for r in rows] == ["features.4", "features.11"] and rows[0]["network"] == "alexnet"


@pytest.mark.parametrize("normalization, input_range", [("imagenet", (-1.0, 1.0)), ("network", (0.0, 1.0)),
                                                        ("lpips", (0.0, 1.0)), ("lpips", (-1.0, 1.0))])
def test_normalization_folding(normalization, input_range):
    """(x - shift) / scale equals converting the range first and normalising after."""
    from dpllib.catalog import IMAGENET_MEAN, IMAGENET_STD
    from dpllib.loss_network import LPIPS_SCALE, LPIPS_SHIFT

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    shift, scale = normalization_constants(normalization, mean, std, input_range)
    x = torch.rand(1, 3, 4, 4) * (input_range[1] - input_range[0]) + input_range[0]
    view = lambda t: torch.tensor(t).view(1, 3, 1, 1)  # noqa: E731
    if normalization == "lpips":
        x11 = x if input_range == (-1.0, 1.0) else 2 * x - 1
        expected = (x11 - view(LPIPS_SHIFT)) / view(LPIPS_SCALE)
    else:
        m, s = (IMAGENET_MEAN, IMAGENET_STD) if normalization == "imagenet" else (mean, std)
        x01 = (x + 1) / 2 if input_range == (-1.0, 1.0) else x
        expected = (x01 - view(m)) / view(s)
    assert torch.allclose((x - view(shift)) / view(scale), expected, atol=1e-6)
    assert normalization_constants("none", mean, std, input_range) == ((0.0,) * 3, (1.0,) * 3)


def test_bf16_autocast_close_to_fp32(photos):
    loss = PerceptualLoss("efficientnet_lite0", "stage4")
    a, b = photos["chelsea"], photos["china"]
    full = loss(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = loss(a, b)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert half.item() == pytest.approx(full.item(), rel=0.1)


def test_works_under_torch_compile():
    loss = PerceptualLoss("alexnet", ["relu1", "relu2"], weights="random")
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    y = torch.rand(2, 3, 64, 64)
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    out = compiled(x, y)
    assert torch.allclose(out, loss(x, y), rtol=1e-5)
    out.backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    loss = PerceptualLoss("vgg11", "relu3_2", weights="random")
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert torch.allclose(loss.cuda()(x.cuda(), y.cuda()).cpu(), loss.cpu()(x, y), rtol=1e-3)


BAD_INPUTS = [
    (lambda: (torch.rand(3, 32, 32), torch.rand(3, 32, 32)), "batch dimension"),
    (lambda: (torch.rand(1, 4, 32, 32), torch.rand(1, 4, 32, 32)), "3 channels"),
    (lambda: (torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)), "grayscale='rgb'"),
    (lambda: (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 40, 32)), "same shape"),
    (lambda: (torch.full((1, 3, 32, 32), float("nan")), torch.rand(1, 3, 32, 32)), "NaN"),
    (lambda: (torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32)), r"input_range=\(-1.0, 1.0\)"),
    (lambda: ((torch.rand(1, 3, 32, 32) * 255).to(torch.uint8),) * 2, "float"),
]


@pytest.mark.parametrize("make, message", BAD_INPUTS)
def test_bad_inputs_have_clear_errors(make, message):
    loss = PerceptualLoss("resnet18", "layer1", weights="random")
    with pytest.raises(DplError, match=message):
        loss(*make())


def test_grayscale_as_an_explicit_option():
    loss = PerceptualLoss("resnet18", "layer1", weights="random", grayscale="rgb")
    g = torch.rand(1, 1, 32, 32)
    assert torch.allclose(loss(g, g * 0.5), loss(g.expand(-1, 3, -1, -1), g.expand(-1, 3, -1, -1) * 0.5))


def test_too_small_for_the_deepest_point():
    loss = PerceptualLoss("alexnet", "relu5", weights="random")
    with pytest.raises(DplError, match=r"16x16 px are too small .* at least 31x31"):
        loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert loss(torch.rand(1, 3, 31, 31), torch.rand(1, 3, 31, 31)) >= 0


def test_bad_configuration():
    with pytest.raises(DplError, match="distance must be one of"):
        PerceptualLoss("alexnet", "relu1", weights="random", distance="ssim")
    with pytest.raises(DplError, match="input_range"):
        PerceptualLoss("alexnet", "relu1", weights="random", input_range=(0, 255))
    with pytest.raises(DplError, match="network_mode must be one of"):
        PerceptualLoss("alexnet", "relu1", weights="random", network_mode="training")
    with pytest.raises(DplError, match="LPIPS's own network"):
        PerceptualLoss("alexnet", "relu1", weights="random", distance="lpips", calibration="lpips")
    with pytest.raises(DplError, match="64 channels"):
        PerceptualLoss("alexnet", "relu2", weights="random", distance="lpips", calibration=[torch.ones(1, 64, 1, 1)])


def test_lin_weights_download_path(tmp_path, monkeypatch, http_server):
    """Without the lpips package the lin weights are downloaded, checked, cached."""
    import dpllib.loss as loss_module
    from pathlib import Path

    server, base = http_server
    src = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    server.files["/alex.pth"] = src.read_bytes()
    monkeypatch.setattr(loss_module, "LPIPS_LIN_URL", base + "/{}.pth")
    monkeypatch.setenv("DPL_CACHE", str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "lpips", None)  # as if not installed
    weights = loss_module.lpips_lin_weights("alex")
    assert (tmp_path / "lpips" / "v0.1" / "alex.pth").is_file()
    assert [w.shape[1] for w in weights] == [64, 192, 384, 256, 256]


def test_a_fixed_size_model_names_the_size_it_takes():
    """timm's Swin asserts its input size inside the traced graph (its attention windows): a
    DplError names the size."""
    loss = PerceptualLoss("timm:swin_tiny_patch4_window7_224", "layers.0", weights="random")
    with pytest.raises(DplError, match="takes 224x224 px images only .* got 160x160; resize the images to 224x224"):
        loss(torch.rand(1, 3, 160, 160), torch.rand(1, 3, 160, 160))
    assert torch.isfinite(loss(torch.rand(1, 3, 224, 224), torch.rand(1, 3, 224, 224)))
