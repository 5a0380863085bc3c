"""Reading images users hand us, safely.

Pillow reads the header first, so a decompression bomb is refused before any
pixels are decoded; it also handles EXIF orientation, CMYK, 16-bit, alpha and
animated files (first frame), which is why it is used here rather than cv2.imdecode.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_core.errors import UserError

MAX_PIXELS = 50_000_000          # ~50 megapixels; a 12-MP phone photo is well inside
MAX_FILE_BYTES = 50 * 1024 * 1024
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm")

# We enforce our own limit below; make Pillow's own bomb check an error rather than a warning.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(UserError, ValueError):
    """An image that cannot be used; the message says why and what to do."""


def decode_image(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file -> BGR uint8 array (H, W, 3), upright per EXIF."""
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes). Choose a JPEG, PNG, WebP, BMP or TIFF photo.")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: the file is {len(data) / 2**20:.0f} MB; the limit is "
                         f"{MAX_FILE_BYTES // 2**20} MB. Resize or compress it first.")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > max_pixels:
            raise ImageError(f"{name}: {w}x{h} pixels is over the limit of {max_pixels / 1e6:.0f} megapixels. "
                             "Downscale the image and try again.")
        if getattr(img, "is_animated", False):
            img.seek(0)   # animated GIF/WebP: the first frame
        img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large to open safely (over {max_pixels / 1e6:.0f} megapixels). "
                         "Downscale it and try again.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: this is not an image file Pillow can read. "
                         "Choose a JPEG, PNG, WebP, BMP or TIFF photo.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: the image file is damaged or truncated ({e}). Re-export or re-download "
                         "it.") from None
    if w < 2 or h < 2:
        raise ImageError(f"{name}: the image is only {w}x{h} pixels; it needs to be at least 2x2 (a face needs "
                         "~24x24).")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not cost the user the photo
        pass
    return pil_to_bgr(img)


def pil_to_bgr(img: Image.Image) -> np.ndarray:
    """Any Pillow mode (1, L, I;16, RGBA, CMYK, P, ...) -> BGR uint8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 1
        arr = (arr / (hi if hi > 255 else 255) * 255).clip(0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_image_file(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A path -> BGR uint8, with the same checks and messages as uploads."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ImageError(f"{path}: cannot read the file ({e.strerror or e}).") from None
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def to_gray(image_bgr: np.ndarray) -> np.ndarray:
    import cv2
    if image_bgr.ndim == 2:
        return image_bgr
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)


def image_files_in(paths) -> list[Path]:
    """Files as given, and every image under folders (recursively, sorted); a missing path is kept, so it
    is reported as an error, not silently skipped."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            out.append(p)
    return out
