"""Truncated, in-place-safe multi-point extraction."""

import pytest
import torch

from dpllib import FeatureExtractor, load_network


def test_conv_output_is_not_rectified_by_a_later_inplace_relu():
    net = load_network("vgg16", "random")
    x = torch.randn(2, 3, 32, 32)
    alone = FeatureExtractor(net, ["features.2"])(x)[0]
    together = FeatureExtractor(net, ["features.2", "features.3", "features.29"])(x)
    assert (alone < 0).any()  # a conv output has negative values
    assert torch.equal(alone, together[0])
    assert torch.equal(together[1], alone.clamp(min=0))


def test_residual_inplace_add_does_not_leak():
    net = load_network("resnet18", "random")
    x = torch.randn(2, 3, 64, 64)
    alone = FeatureExtractor(net, ["layer1.0.bn2"])(x)[0]
    together = FeatureExtractor(net, ["layer1.0.bn2", "layer1"])(x)[0]
    assert torch.equal(alone, together)


def test_nothing_past_the_deepest_point_is_computed():
    net = load_network("vgg16", "random")
    extractor = FeatureExtractor(net, ["features.8", "features.3"])
    names = {n for n, _ in extractor.graph_module.named_modules()}
    assert "features.8" in names and "features.9" not in names and "classifier" not in names
    calls = []
    net.features[9].register_forward_hook(lambda *a: calls.append(1))
    extractor(torch.randn(1, 3, 32, 32))
    assert not calls


def test_points_come_back_in_the_order_asked():
    net = load_network("alexnet", "random")
    x = torch.randn(1, 3, 64, 64)
    a, b, c = FeatureExtractor(net, ["features.4", "features.1", "features.4"])(x)
    assert a.shape[1] == 192 and b.shape[1] == 64 and torch.equal(a, c)
    assert torch.equal(b, net.features[:2](x))


def test_a_truncated_view_computes_only_its_points_and_shares_the_weights():
    from dpllib import PerceptualLoss

    loss = PerceptualLoss("efficientnet_lite0", ["stem", "stage1", "stage4", "stage7"], weights="random")
    x = torch.rand(2, 3, 64, 64)
    every = loss.features(x)
    for i, point in enumerate(["stem", "stage1", "stage4", "stage7"]):
        assert torch.equal(loss.features(x, [point])[0], every[i])
    stem = loss.net.extractor_of(["stem"], x.device)
    assert len(stem.graph_module.graph.nodes) < len(loss.extractor.graph_module.graph.nodes) / 10
    shared = dict(loss.extractor.graph_module.named_parameters())
    assert all(p is shared[name] for name, p in stem.graph_module.named_parameters())
    with pytest.raises(ValueError, match="some of this extractor's points"):
        loss.extractor.truncated(["blocks.5"])


def test_feature_distance_is_the_core_of_perceptual_distance():
    from dpllib import DplError, feature_distance, perceptual_distance

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    features = lambda t: [net(t), net(t).relu()]  # noqa: E731
    for reduction in ("mean", "sum", "none", "map"):
        expected = perceptual_distance(x, y, features, "mse", [1.0, 0.5], reduction=reduction)
        got = feature_distance(features(x), features(y), "mse", [1.0, 0.5], reduction=reduction, size=(16, 16))
        assert torch.allclose(got, expected)
    by_hand = (net(x) - net(y)).pow(2).mean()
    assert torch.allclose(feature_distance([net(x)], [net(y)], "mse"), by_hand)
    with pytest.raises(DplError, match="needs the input size"):
        feature_distance([net(x)], [net(y)], reduction="map")
