"""MATLAB-compatible bicubic resizing: how LR images are made from HR images.

SR benchmarks pair each HR image with an LR image made by MATLAB
``imresize(modcrop(HR, s), 1/s, 'bicubic')`` on **uint8** data. MATLAB resizes one dimension at a
time (height first when both scale factors are equal) and, for uint8 input, rounds half away from
zero and saturates to uint8 after *each* pass. A float resize that rounds only once differs by up
to 12 grey levels on sharp edges, so both passes are emulated exactly here; the result reproduces
the MATLAB-made Set14 LR images at x2, x3 and x4 bit for bit (see tests/trainers/test_degrade.py).

The kernel is Keys' cubic with a = -0.5. When shrinking, MATLAB antialiases by widening the kernel
by 1/scale; borders are padded symmetrically. Kernel weights and source indices depend only on
(input length, output length, scale), so they are computed once and cached: this is on the hot
path of data loading.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["bicubic_downsample", "imresize", "modcrop"]

# Keys' cubic convolution kernel spans [-2, 2].
_KERNEL_WIDTH = 4.0


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``.

    Args:
        img: HxW or HxWxC array.
        scale: Integer scale factor.
    """
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downsample(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR image as MATLAB makes it: modcrop, then ``imresize(hr, 1/scale, 'bicubic')`` on uint8.

    Args:
        hr: uint8 HxW or HxWxC image.
        scale: Integer downscaling factor (2, 3, 4, ...).

    Returns:
        uint8 array of shape ``(H // scale, W // scale[, C])``.
    """
    if hr.dtype != np.uint8:
        raise TypeError(f"bicubic_downsample expects a uint8 image, got {hr.dtype}")
    hr = modcrop(hr, scale)
    h, w = hr.shape[:2]
    return imresize(hr, 1.0 / scale, output_hw=(h // scale, w // scale))


def imresize(img: np.ndarray, scale: float, *, output_hw: tuple[int, int] | None = None
             ) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased when shrinking).

    uint8 input is rounded (half away from zero) and clipped to uint8 after each pass, as MATLAB
    does; float input is resized in float64 without rounding and returned as float64.

    Args:
        img: HxW or HxWxC image, uint8 or float.
        scale: Scale factor applied to both dimensions (< 1 shrinks).
        output_hw: Output (height, width); default ``ceil(scale * input size)``.
    """
    h, w = img.shape[:2]
    if output_hw is None:
        output_hw = (math.ceil(h * scale), math.ceil(w * scale))
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)
    # MATLAB sorts the dimensions by scale factor (stable): equal factors -> height first.
    for axis, (in_len, out_len) in enumerate(((h, output_hw[0]), (w, output_hw[1]))):
        weights, indices = _contributions(in_len, out_len, float(scale))
        out = _resize_axis(out, axis, weights, indices)
        if is_uint8:
            out = _round_to_uint8(out).astype(np.float64)
    return _round_to_uint8(out) if is_uint8 else out


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=256)
def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: normalised kernel weights and (symmetrically padded) source indices.

    A transcription of MATLAB's ``contributions`` (imresize.m), 0-based. Returns two
    (out_len, taps) arrays; taps whose weight is zero for every output are dropped, as MATLAB does.
    """
    antialias = scale < 1
    width = _KERNEL_WIDTH / scale if antialias else _KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)
    # Output sample x (1-based) maps to input coordinate u (1-based).
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    dist = u[:, None] - indices
    weights = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric padding: 1..n, n..1 repeated (MATLAB's aux vector), here 0-based.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    weights, indices = weights[:, keep], indices[:, keep]
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


def _resize_axis(img: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray
                 ) -> np.ndarray:
    """Weighted sum of the taps along ``axis``, accumulated tap by tap in MATLAB's order."""
    moved = np.moveaxis(img, axis, 0)
    extra = (1,) * (moved.ndim - 1)
    out = np.zeros((weights.shape[0],) + moved.shape[1:], dtype=np.float64)
    for tap in range(weights.shape[1]):
        out += weights[:, tap].reshape(-1, *extra) * moved[indices[:, tap]]
    return np.moveaxis(out, 0, axis)


def _round_to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's uint8 cast: round half away from zero, saturate (values here are >= -0.5 anyway).
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
