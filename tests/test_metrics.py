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
