"""Truncated, in-place-safe multi-point extraction."""

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
