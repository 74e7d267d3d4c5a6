"""Image files: list a folder, read a header, decode to uint8 RGB, and the dihedral augmentation.

The leaf under the trainers' data modules (the folder loader, the prepared store and the
preparation all read images through it). Every image is untrusted input: only regular files are
opened, the size is checked on the header before any pixel is decoded, and a library warning is
an error.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from search_space.errors import InputError
from search_space.io import first_line, shown

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "list_images", "open_image_header",
           "load_image", "image_size", "dihedral"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def list_images(folder: Path) -> list[Path]:
    """The PNG/JPEG/BMP files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


# Documented maximum (docs/validation.md), checked on the header before any pixel is decoded:
# 8192 x 8192 decodes to 192 MiB of RGB; DIV2K's largest image is 2040 x 2040.
MAX_IMAGE_PIXELS = 8192 * 8192


def open_image_header(path: Path):
    """Open ``path`` lazily (header only) and check its size; library warnings become errors.
    Only a regular file is opened (a named pipe called ``x.png`` would block)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise InputError(f"{shown(path)}: not a regular file; expected an image file")
    Image.MAX_IMAGE_PIXELS = None  # PIL's own bomb check, replaced by the one below
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other warning while reading the header
        img = Image.open(path)
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        img.close()
        raise InputError(f"{shown(path)}: image of {width}x{height} pixels; at most "
                         f"{MAX_IMAGE_PIXELS:,} pixels (8192x8192) are decoded")
    return img


def _to_rgb8(img) -> np.ndarray:
    """uint8 HxWx3 RGB. 16-bit grayscale (PIL modes I;16*, I) is scaled by 255/65535, not
    clipped; other modes go through PIL (16-bit RGB PNGs it already reads as 8-bit)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        wide = np.asarray(img, dtype=np.float64)
        if wide.min() < 0 or wide.max() > 65535:
            raise ValueError(f"{img.mode} pixel values outside 0..65535")
        gray = np.rint(wide * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        raise ValueError("floating-point images are not supported; save it as 8- or 16-bit")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path: Path) -> np.ndarray:
    """Decode an image as uint8 HxWx3 RGB (grayscale repeated, alpha dropped, 16-bit scaled)."""
    try:
        with open_image_header(path) as img, warnings.catch_warnings():
            warnings.simplefilter("error")
            return _to_rgb8(img)
    except InputError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Warning, Image.DecompressionBombError,
            MemoryError) as e:
        raise InputError(f"{path}: cannot read image ({first_line(e)})") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with open_image_header(path) as img:
            width, height = img.size
    except InputError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Warning,
            Image.DecompressionBombError) as e:
        raise InputError(f"{path}: cannot read image ({first_line(e)})") from None
    return height, width


def dihedral(img: np.ndarray, flip_h: int, flip_v: int, rot: int) -> np.ndarray:
    """Flip horizontally / vertically, then rotate by ``rot`` quarter turns (a training
    augmentation: the same for an LR patch and its HR patch)."""
    if flip_h:
        img = img[:, ::-1]
    if flip_v:
        img = img[::-1]
    return np.rot90(img, rot) if rot else img
