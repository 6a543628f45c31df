"""The benchmarks' measures: 2AFC, JND mAP, PSNR/SSIM on Y, road completeness/correctness/quality.

Every function takes tensors or arrays and returns plain floats (or per-item arrays).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DplError


def twoafc_credit(d0: torch.Tensor, d1: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
    """Per-triplet 2AFC credit: 1 - judge if d0 < d1, judge if d1 < d0, 0.5 on a tie.

    judge = fraction of people who found p1 closer to the reference (BAPPS convention).
    """
    if not (d0.shape == d1.shape == judge.shape):
        raise DplError(f"d0, d1, judge must share a shape; got {tuple(d0.shape)}, {tuple(d1.shape)}, {tuple(judge.shape)}")
    judge = judge.to(d0.dtype)
    return torch.where(d0 < d1, 1 - judge, torch.where(d1 < d0, judge, torch.full_like(judge, 0.5)))


def twoafc_score(d0: torch.Tensor, d1: torch.Tensor, judge: torch.Tensor) -> float:
    """Mean 2AFC credit in [0, 1]."""
    return float(twoafc_credit(d0, d1, judge).mean())


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC style, all points)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def jnd_map(distances: torch.Tensor | np.ndarray, same: torch.Tensor | np.ndarray) -> float:
    """JND mAP: pairs ranked by distance (small first) retrieve the pairs people called the
    same (``same`` = fraction of people, used as soft labels), in [0, 1]."""
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    s = np.asarray(same, dtype=np.float64).reshape(-1)
    if d.shape != s.shape or d.size == 0:
        raise DplError(f"distances and same must be equal-length and non-empty; got {d.shape}, {s.shape}")
    order = np.argsort(d, kind="stable")
    s = s[order]
    tp = np.cumsum(s)
    fp = np.cumsum(1 - s)
    fn = s.sum() - tp
    precision = tp / np.maximum(tp + fp, 1e-12)
    recall = tp / np.maximum(tp + fn, 1e-12)
    return average_precision(recall, precision)


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma as in MATLAB's rgb2ycbcr, for N x 3 x H x W in [0, 1]; result in
    [16/255, 235/255], shape N x 1 x H x W."""
    w = images.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (images * w).sum(1, keepdim=True)) / 255.0


def _crop(t: torch.Tensor, border: int) -> torch.Tensor:
    return t[..., border:-border, border:-border] if border > 0 else t


def psnr_y(prediction: torch.Tensor, target: torch.Tensor, border: int = 4) -> torch.Tensor:
    """PSNR in dB on the Y channel, per image, after cropping ``border`` pixels on each side
    (the usual x4 SR convention: border = scale). Inputs N x 3 x H x W in [0, 1]."""
    if prediction.shape != target.shape:
        raise DplError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    py, ty = _crop(rgb_to_y(prediction.clamp(0, 1)), border), _crop(rgb_to_y(target), border)
    mse = (py - ty).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


def ssim_y(prediction: torch.Tensor, target: torch.Tensor, border: int = 4) -> np.ndarray:
    """SSIM on the Y channel per image (scikit-image, Gaussian window sigma 1.5, data range 1),
    after cropping ``border`` pixels."""
    from skimage.metrics import structural_similarity

    py = _crop(rgb_to_y(prediction.clamp(0, 1)), border).detach().cpu().double().numpy()
    ty = _crop(rgb_to_y(target), border).detach().cpu().double().numpy()
    return np.array([structural_similarity(a[0], b[0], data_range=1.0, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False)
                     for a, b in zip(py, ty)])


def authors_sr_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The authors' three SR measures of one image pair (super_res/test.py), labelled apart from
    the field's standard (:func:`psnr_y`, :func:`ssim_y`): ``psnr_authors_y``, torchmetrics'
    PSNR of Y (BT.601 on the 0-255 scale, + 16) of the unquantised ``output``, no border crop,
    data range max - min of the target's Y; ``psnr_authors_png`` and ``ssim_authors_png``,
    scikit-image's PSNR (data range 1) and SSIM (7 x 7 uniform window) of the 8-bit images' Y
    computed as (65.738 R + 129.057 G + 25.064 B) / 256, 2 px cropped. Inputs 1 x 3 x H x W in
    [0, 1]; PSNR in dB."""
    from skimage.metrics import structural_similarity

    if output.shape != target.shape or output.shape[0] != 1:
        raise DplError(f"one output and one target of the same shape, got {tuple(output.shape)}, {tuple(target.shape)}")
    w = target.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    y_out, y_tgt = ((x.double() * w).sum(1) + 16 for x in (output.float(), target.float()))
    data_range = float(y_tgt.max() - y_tgt.min())
    psnr_tm = 10 * math.log10(data_range**2 / max(float((y_out - y_tgt).pow(2).mean()), 1e-12))
    png = target.new_tensor([65.738, 129.057, 25.064]).view(1, 3, 1, 1).double() / 256

    def y_png(x: torch.Tensor) -> np.ndarray:
        return _crop(((x.clamp(0, 1) * 255).round().double() / 255 * png).sum(1), 2)[0].cpu().numpy()

    a, b = y_png(output), y_png(target)
    mse = max(float(np.mean((a - b) ** 2)), 1e-12)
    return {"psnr_authors_y": psnr_tm, "psnr_authors_png": 10 * math.log10(1 / mse),
            "ssim_authors_png": float(structural_similarity(a, b, data_range=1))}


def road_scores(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                buffer: int = 0) -> dict[str, np.ndarray]:
    """Completeness, correctness and quality of binary N x 1 x H x W road masks, per image.

    ``buffer`` 0: pixel-exact, TP/(TP+FN), TP/(TP+FP), TP/(TP+FP+FN). ``buffer`` rho > 0: the
    relaxed measures of Wiedemann et al. (1998) used for Massachusetts Roads (Mnih 2013, rho = 3
    px at full resolution): a true road pixel counts as found when a predicted one lies within
    rho pixels (Chebyshev) and vice versa; quality = compl * corr / (compl + corr - compl * corr).
    ``valid`` (N x 1 x H x W) leaves the other pixels out of every count. An undefined ratio
    (0/0) counts as 1 (nothing to find, nothing wrongly found)."""
    p, t = prediction.bool(), target.bool()
    v = torch.ones_like(p) if valid is None else valid.bool()

    def count(mask):
        return (mask & v).sum(dim=(1, 2, 3)).double()

    def ratio(num, den):
        return torch.where(den > 0, num / den.clamp_min(1), torch.ones_like(num))

    if buffer == 0:
        tp, fp, fn = count(p & t), count(p & ~t), count(~p & t)
        return {"completeness": ratio(tp, tp + fn).numpy(), "correctness": ratio(tp, tp + fp).numpy(),
                "quality": ratio(tp, tp + fp + fn).numpy()}

    def near(mask):
        return F.max_pool2d(mask.float(), 2 * buffer + 1, stride=1, padding=buffer) > 0

    completeness = ratio(count(t & near(p)), count(t))
    correctness = ratio(count(p & near(t)), count(p))
    both = completeness * correctness
    quality = torch.where(both > 0, both / (completeness + correctness - both).clamp_min(1e-12), torch.zeros_like(both))
    return {"completeness": completeness.numpy(), "correctness": correctness.numpy(), "quality": quality.numpy()}
