"""MATLAB-compatible bicubic resize: bit-exact against MATLAB-made LR images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import FIXTURES
from trainers.data import BUNDLED
from trainers.degrade import _contributions, bicubic_downsample, imresize, modcrop
from trainers.images import list_images, load_image

MATLAB_LR = FIXTURES / "matlab_lr"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set14_bit_exact_against_matlab(scale):
    hr_paths = list_images(BUNDLED["Set14"])
    assert len(hr_paths) == 14
    for hr_path in hr_paths:
        hr = np.asarray(Image.open(hr_path))  # as stored: bridge.png stays single-channel
        want = np.asarray(Image.open(MATLAB_LR / f"X{scale}" / f"{hr_path.stem}x{scale}.png"))
        got = bicubic_downsample(hr, scale)
        assert got.dtype == np.uint8
        assert got.shape == want.shape, hr_path.name
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() == 0, f"{hr_path.name} x{scale}: {int((diff > 0).sum())} values differ"


def test_rgb_of_grayscale_resizes_each_channel_alike():
    gray = np.asarray(Image.open(BUNDLED["Set14"] / "bridge.png"))
    rgb = load_image(BUNDLED["Set14"] / "bridge.png")
    lr = bicubic_downsample(rgb, 3)
    assert np.array_equal(lr[..., 1], bicubic_downsample(gray, 3))
    assert np.array_equal(lr[..., 0], lr[..., 2])


def test_modcrop_keeps_top_left():
    img = np.arange(7 * 10).reshape(7, 10)
    out = modcrop(img, 3)
    assert out.shape == (6, 9)
    assert np.array_equal(out, img[:6, :9])


def test_rounds_between_passes_unlike_a_float_resize():
    # ppt3 has sharp text edges where the uint8 rounding after the height pass matters (up to 12
    # levels); a float resize rounded once must therefore differ from the uint8 emulation.
    hr = modcrop(load_image(BUNDLED["Set14"] / "ppt3.png"), 4)
    via_float = np.clip(np.floor(imresize(hr.astype(np.float64), 0.25) + 0.5), 0, 255)
    assert np.abs(via_float - bicubic_downsample(hr, 4)).max() >= 5


def test_constant_image_stays_constant_both_ways():
    flat = np.full((24, 36, 3), 137, np.uint8)
    assert np.all(bicubic_downsample(flat, 4) == 137)
    up = imresize(flat, 3)
    assert up.shape == (72, 108, 3) and np.all(up == 137)


def test_weights_are_normalised_indices_in_range_and_cached():
    weights, indices = _contributions(30, 10, 1 / 3)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert indices.min() >= 0 and indices.max() < 30
    # Antialiased x1/3 kernel spans 12 input pixels (+2 taps); all-zero taps are dropped.
    assert weights.shape[0] == 10 and weights.shape[1] <= 14
    assert _contributions(30, 10, 1 / 3)[0] is weights


def test_rejects_non_uint8():
    with pytest.raises(TypeError, match="uint8"):
        bicubic_downsample(np.zeros((8, 8, 3), np.float32), 2)
