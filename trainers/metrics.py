"""PSNR and SSIM as SR papers report them (NTIRE ESR conventions).

Both images are uint8 (the SR output is clamped and rounded first, see
:func:`trainers.evaluate.to_uint8`), ``crop`` pixels (= the scale) are removed from every border,
and the Y channel is ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` computes it, rounded to uint8.
SSIM follows Wang et al. (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, mean over the
valid region); scikit-image's ``structural_similarity`` with ``gaussian_weights=True,
use_sample_covariance=False`` is exactly that.

Paper: Image Quality Assessment: From Error Visibility to Structural Similarity (Wang et al.,
IEEE TIP 2004), https://doi.org/10.1109/TIP.2003.819861
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "rgb_to_y", "psnr", "ssim"]

# MATLAB rgb2ycbcr, Y row (x 255), for R, G, B in 0..255.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def rgb_to_y(img_u8: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image (HxWx3) as uint8, ``round(16 + 65.481 r + ...)``.

    A single-channel image (HxW or HxWx1) is taken as already being Y.
    """
    if img_u8.ndim == 2:
        return img_u8
    if img_u8.shape[2] == 1:
        return img_u8[..., 0]
    # Same operation order and rounding as the reference evaluation (KAIR utils_image), so that
    # the rare exact .5 cases round the same way.
    y = img_u8.astype(np.float64) @ _Y_WEIGHTS / 255.0 + 16.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def _shave(img: np.ndarray, crop: int) -> np.ndarray:
    return img[crop:-crop, crop:-crop] if crop > 0 else img


def _check_pair(sr_u8: np.ndarray, hr_u8: np.ndarray) -> None:
    if sr_u8.shape != hr_u8.shape:
        raise ValueError(f"SR and HR shapes differ: {sr_u8.shape} vs {hr_u8.shape}")
    if sr_u8.dtype != np.uint8 or hr_u8.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {sr_u8.dtype} and {hr_u8.dtype}")


def psnr(a_u8: np.ndarray, b_u8: np.ndarray, crop: int = 0) -> float:
    """PSNR in dB between two uint8 arrays of equal shape (all channels), float64."""
    _check_pair(a_u8, b_u8)
    diff = _shave(a_u8, crop).astype(np.float64) - _shave(b_u8, crop).astype(np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 20.0 * math.log10(255.0 / math.sqrt(mse))


def ssim(a_u8: np.ndarray, b_u8: np.ndarray, crop: int = 0) -> float:
    """SSIM of Wang et al. on uint8 images; a colour image is the mean over its channels."""
    from skimage.metrics import structural_similarity

    _check_pair(a_u8, b_u8)
    a = _shave(a_u8, crop).astype(np.float64)
    b = _shave(b_u8, crop).astype(np.float64)
    return float(structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=2 if a.ndim == 3 else None))


def psnr_y(sr_u8: np.ndarray, hr_u8: np.ndarray, crop: int) -> float:
    """PSNR on the Y channel after cropping ``crop`` pixels from each border."""
    return psnr(rgb_to_y(sr_u8), rgb_to_y(hr_u8), crop)


def ssim_y(sr_u8: np.ndarray, hr_u8: np.ndarray, crop: int) -> float:
    """SSIM on the Y channel after cropping ``crop`` pixels from each border."""
    return ssim(rgb_to_y(sr_u8), rgb_to_y(hr_u8), crop)


def psnr_rgb(sr_u8: np.ndarray, hr_u8: np.ndarray, crop: int) -> float:
    """PSNR over the three RGB channels after cropping ``crop`` pixels from each border."""
    return psnr(sr_u8, hr_u8, crop)


def ssim_rgb(sr_u8: np.ndarray, hr_u8: np.ndarray, crop: int) -> float:
    """Mean SSIM over the three RGB channels after cropping ``crop`` pixels from each border."""
    return ssim(sr_u8, hr_u8, crop)
