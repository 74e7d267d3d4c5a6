"""PSNR/SSIM under the NTIRE conventions (Y = MATLAB rgb2ycbcr, border crop, Wang et al. SSIM)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainers import metrics


def _pair(seed=0, shape=(40, 48, 3), noise=6):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, shape).astype(np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return sr, hr


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    # MATLAB: rgb2ycbcr(uint8([0 0 0; 255 255 255; 255 0 0; 0 255 0; 0 0 255])) Y column.
    assert metrics.rgb_to_y(img).tolist() == [[16, 235, 81, 145, 41]]
    gray = np.full((3, 3), 77, np.uint8)
    assert metrics.rgb_to_y(gray) is gray


def test_psnr_of_a_known_error():
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr.copy()
    sr[2:-2, 2:-2] += 1  # error only inside the border-cropped region
    assert metrics.psnr_rgb(sr, hr, crop=2) == pytest.approx(20 * math.log10(255.0))
    sr[:2] = 0  # errors in the cropped border must not count
    assert metrics.psnr_rgb(sr, hr, crop=2) == pytest.approx(20 * math.log10(255.0))
    assert metrics.psnr_rgb(hr, hr, crop=2) == math.inf
    assert metrics.psnr_y(sr, hr, crop=2) > metrics.psnr_y(sr, hr, crop=0) + 10


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. SSIM written out: 11x11 Gaussian (sigma 1.5), valid region, float64."""
    from numpy.lib.stride_tricks import sliding_window_view

    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(x):
        return np.einsum("ijkl,kl->ij", sliding_window_view(x, (11, 11)), window)

    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(ssim_map.mean())


def test_ssim_y_equals_the_definition():
    sr, hr = _pair(seed=3)
    want = _ssim_reference(metrics.rgb_to_y(sr)[4:-4, 4:-4], metrics.rgb_to_y(hr)[4:-4, 4:-4])
    assert metrics.ssim_y(sr, hr, crop=4) == pytest.approx(want, abs=1e-9)
    assert 0.3 < want < 0.999  # a non-trivial case


def test_ssim_rgb_is_the_channel_mean():
    sr, hr = _pair(seed=4)
    per_channel = [_ssim_reference(sr[..., c], hr[..., c]) for c in range(3)]
    assert metrics.ssim_rgb(sr, hr, crop=0) == pytest.approx(np.mean(per_channel), abs=1e-9)
    assert metrics.ssim_rgb(hr, hr, crop=0) == pytest.approx(1.0)


def test_rejects_mismatched_or_float_images():
    sr, hr = _pair()
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr_y(sr[:-1], hr, crop=2)
    with pytest.raises(TypeError, match="uint8"):
        metrics.psnr_rgb(sr.astype(np.float32), hr, crop=2)
