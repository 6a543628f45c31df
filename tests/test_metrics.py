"""Each measure on a small hand-computed example."""

import math

import numpy as np
import pytest
import torch

from dpllib.metrics import jnd_map, psnr_y, road_scores, ssim_y, twoafc_credit, twoafc_score


def test_twoafc_credit_rule():
    d0 = torch.tensor([1.0, 2.0, 3.0])
    d1 = torch.tensor([2.0, 1.0, 3.0])
    judge = torch.tensor([0.2, 0.7, 0.4])
    # d0 < d1 -> 1 - judge; d1 < d0 -> judge; tie -> 0.5
    assert twoafc_credit(d0, d1, judge).tolist() == pytest.approx([0.8, 0.7, 0.5])
    assert twoafc_score(d0, d1, judge) == pytest.approx(2.0 / 3)


def test_jnd_map_by_hand():
    # ranked same-labels 1,0,1,0: precision 1, .5, 2/3, .5; recall .5, .5, 1, 1
    # envelope area: .5 * 1 + .5 * 2/3
    assert jnd_map([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert jnd_map([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_psnr_on_y_by_hand():
    target = torch.full((1, 3, 16, 16), 0.5)
    pred = target + 0.1
    # a grey offset of 0.1 moves Y by 0.1 * 219 / 255
    expected = 20 * math.log10(255 / (0.1 * 219))
    assert psnr_y(pred, target).item() == pytest.approx(expected, rel=1e-5)
    # the border crop: damage only the border, PSNR is unaffected
    damaged = target.clone()
    damaged[..., :4, :] = 0
    assert psnr_y(damaged, target, border=4).item() > 100
    big = torch.rand(1, 3, 32, 32)
    assert ssim_y(big, big)[0] == pytest.approx(1.0)
    assert ssim_y(big * 0.5, big)[0] < 0.99


def test_road_scores_by_hand():
    pred = torch.tensor([1, 1, 0, 0]).view(1, 1, 1, 4)
    target = torch.tensor([1, 0, 1, 0]).view(1, 1, 1, 4)
    s = road_scores(pred, target)
    assert s["completeness"][0] == pytest.approx(0.5)
    assert s["correctness"][0] == pytest.approx(0.5)
    assert s["quality"][0] == pytest.approx(1 / 3)
    empty = road_scores(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    assert empty["quality"][0] == 1.0 and isinstance(empty["quality"], np.ndarray)
    # pixels outside ``valid`` count nowhere
    valid = torch.tensor([1, 1, 0, 1]).view(1, 1, 1, 4)
    s = road_scores(pred, target, valid)
    assert s["completeness"][0] == pytest.approx(1.0) and s["correctness"][0] == pytest.approx(0.5)


def test_relaxed_road_scores_by_hand():
    """A prediction one pixel beside the true road: pixel-exact it finds nothing, with a
    2-pixel buffer everything (Wiedemann's relaxed completeness and correctness)."""
    target = torch.zeros(1, 1, 9, 9)
    target[..., 4] = 1
    shifted = torch.zeros_like(target)
    shifted[..., 5] = 1
    exact, relaxed = road_scores(shifted, target), road_scores(shifted, target, buffer=2)
    assert exact["quality"][0] == 0.0
    assert relaxed["completeness"][0] == relaxed["correctness"][0] == relaxed["quality"][0] == pytest.approx(1.0)
    far = torch.zeros_like(target)
    far[..., 8] = 1
    assert road_scores(far, target, buffer=2)["quality"][0] == 0.0


def test_the_authors_sr_measures_match_their_recipe(photos):
    """The authors' measures on a real photo against the libraries their test.py calls:
    scikit-image on 8-bit Y with a 2 px crop (uniform window), torchmetrics' data-range rule by
    hand, and no crop there (a border-only error changes it, not the cropped ones)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from dpllib.metrics import authors_sr_scores

    hr = photos["coffee"][..., :96, :96]
    sr = (hr + 0.03 * torch.randn_like(hr, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    got = authors_sr_scores(sr, hr)

    def y_png(x):
        rgb = (x[0].permute(1, 2, 0).numpy() * 255).round() / 255
        return (rgb * np.array([65.738, 129.057, 25.064]) / 256).sum(-1)[2:-2, 2:-2]

    assert got["psnr_authors_png"] == pytest.approx(peak_signal_noise_ratio(y_png(hr), y_png(sr), data_range=1))
    assert got["ssim_authors_png"] == pytest.approx(structural_similarity(y_png(hr), y_png(sr), data_range=1))
    y = lambda x: (x[0].double() * torch.tensor([65.481, 128.553, 24.966]).view(3, 1, 1)).sum(0) + 16  # noqa: E731
    rng = float(y(hr).max() - y(hr).min())
    assert got["psnr_authors_y"] == pytest.approx(10 * np.log10(rng**2 / float((y(sr) - y(hr)).pow(2).mean())))
    edge = hr.clone()
    edge[..., 0, :] = 1 - edge[..., 0, :]  # a change in the first row only
    moved = authors_sr_scores(edge, hr)
    assert moved["psnr_authors_png"] > 90 and moved["psnr_authors_y"] < 40
