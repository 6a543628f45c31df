"""Transformer and channels-last points (issue 20, items 1-2): tokens read as maps the way timm's
``forward_intermediates(output_fmt="NCHW")`` reads them, other input sizes where the model takes
them, study-style points for any network, and the cosine distance."""

import pytest
import torch

from dpllib import DplError, PerceptualLoss, extraction_points, feature_distance, load_network
from dpllib.features import as_map
from dpllib.networks import takes_any_size

VIT = "timm:vit_small_patch16_224"
DINOV2_REG = "timm:vit_small_patch14_reg4_dinov2"  # 4 register tokens and a class token
SWIN = "timm:swin_tiny_patch4_window7_224"


def test_prefix_tokens_are_dropped_and_patches_laid_on_their_grid():
    """2 prefix tokens, then a 2 x 3 grid of patch tokens numbered row by row (input 32 x 48)."""
    grid = torch.arange(6.0).view(1, 6, 1).expand(1, 6, 4)  # token i carries the value i in each channel
    tokens = torch.cat([torch.full((1, 2, 4), -1.0), grid], dim=1)
    out = as_map(tokens, "tokens", prefix_tokens=2, size=(32, 48))
    assert out.shape == (1, 4, 2, 3) and out[0, 0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert as_map(torch.rand(2, 5, 7, 3), "channels_last").shape == (2, 3, 5, 7)
    assert as_map(torch.rand(2, 9), "vector").shape == (2, 9, 1, 1)
    with pytest.raises(ValueError, match="do not fill a grid"):
        as_map(torch.rand(1, 7, 4), "tokens", prefix_tokens=0, size=(32, 32))


@pytest.mark.parametrize("network, point, index, layout, prefix", [
    (VIT, "blocks.5", 5, "tokens", 1), (DINOV2_REG, "blocks.3", 3, "tokens", 5), (SWIN, "layers.1", 1, "channels_last", 0)])
@pytest.mark.slow
def test_points_equal_timms_forward_intermediates(network, point, index, layout, prefix):
    """The reference: timm's own NCHW intermediates of the same block, same weights, same input."""
    loss = PerceptualLoss(network, point, weights="random", normalization="none")
    assert (loss.points[0].layout, loss.points[0].prefix_tokens) == (layout, prefix)
    reference = load_network(network, "random", seed=0)  # the loss's weights (seed 0)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        theirs = reference.forward_intermediates(x, indices=[index], norm=False, output_fmt="NCHW",
                                                 intermediates_only=True)[0]
    ours = loss.features(x)[0]
    side = round(224 / loss.points[0].reduction)
    assert ours.shape == theirs.shape == (2, loss.points[0].channels, side, side)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("network, sizes", [(VIT, (224, 160)), (DINOV2_REG, (224, 168))])
def test_transformers_take_any_size_their_patches_divide(network, sizes):
    assert takes_any_size(network.split(":")[1])
    loss = PerceptualLoss(network, [p.module for p in extraction_points(network, study_only=True)][1:3] + ["embedding"],
                          weights="random")
    for size in sizes:
        x = torch.rand(2, 3, size, size, requires_grad=True)
        value = loss(x, torch.rand(2, 3, size, size))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        patch = 14 if "14" in network else 16
        assert loss.features(x.detach())[0].shape[-2:] == (size // patch, size // patch)


@pytest.mark.parametrize("network, expected", [
    ("resnet18", ("relu", "layer1", "layer2", "layer4")),  # the study's own
    ("mobilenet_v3_small", ("features.3", "features.6", "features.9", "features.12")),
    ("regnet_y_400mf", tuple(f"trunk_output.block{i}" for i in range(1, 5))),  # built on the CPU, moved to meta
    ("timm:convnext_tiny", tuple(f"stages.{i}" for i in range(4))),
    ("timm:efficientnet_b0", ("blocks.2", "blocks.3", "blocks.4", "blocks.6")),
    (VIT, ("blocks.2", "blocks.5", "blocks.8", "blocks.11")),
    (SWIN, tuple(f"layers.{i}" for i in range(4))),
])
def test_every_network_has_four_study_style_points(network, expected):
    points = extraction_points(network, study_only=True)
    assert tuple(p.module for p in points) == expected
    assert [p.study_index for p in points] == [1, 2, 3, 4]
    assert all(a.depth < b.depth for a, b in zip(points, points[1:])) and all(p.channels for p in points)


def test_cosine_distance_is_half_the_uncalibrated_lpips_and_dreamsims_on_embeddings():
    a, b = torch.randn(3, 16, 5, 5), torch.randn(3, 16, 5, 5)
    cosine = feature_distance([a], [b], "cosine", reduction="none")
    torch.testing.assert_close(cosine, feature_distance([a], [b], "lpips", reduction="none") / 2)
    assert feature_distance([a], [a], "cosine").abs() < 1e-6
    # DreamSim for one backbone: 1 - cos(embedding(x), embedding(y)), computed here independently
    loss = PerceptualLoss(VIT, "embedding", weights="random", distance="cosine", reduction="none")
    x, y = torch.rand(2, 3, 224, 224), torch.rand(2, 3, 224, 224)
    ex, ey = (loss.features(t)[0].flatten(1) for t in (x, y))
    expected = 1 - (ex * ey).sum(1) / (ex.norm(dim=1) * ey.norm(dim=1))
    torch.testing.assert_close(loss(x, y), expected)


def test_a_point_that_is_no_map_names_the_problem():
    """Attention's query-key-value reshape is N x L x 3 x heads x C / heads: no map."""
    with pytest.raises(DplError, match=r"'blocks.0.attn.reshape' gives features of shape \(1, 197, 3, 6, 64\), which are no"):
        PerceptualLoss(VIT, "blocks.0.attn.reshape", weights="random")
