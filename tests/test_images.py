"""Every kind of bad or unusual upload through fer_core.images: a named error, or the right pixels."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_core.data.images import MAX_FILE_BYTES, ImageError, decode_image

pytestmark = pytest.mark.unit


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG header claiming width x height, with a few bytes of pixel data: tiny on disk."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)   # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def photo(mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).convert(mode)


@pytest.mark.parametrize("name,data,words", [
    ("empty.jpg", b"", "empty"),
    ("notes.jpg", b"a text file renamed to .jpg\n", "not an image"),
    ("cut.jpg", encode(photo(), "JPEG")[:300], "truncated"),
    ("bomb.png", png_bomb(), "megapixels"),
    ("tiny.png", encode(Image.new("L", (1, 1))), "1x1"),
    ("big.jpg", b"\xff\xd8" + b"\0" * (MAX_FILE_BYTES + 10), "MB"),
])
def test_bad_files_are_refused_with_a_message_naming_the_file_and_the_problem(name, data, words):
    with pytest.raises(ImageError) as e:
        decode_image(data, name)
    assert name in str(e.value) and words in str(e.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")   # refused on purpose
def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded():
    """The bomb's pixel data is 64 bytes for 900 M pixels: decoding it would say 'truncated', not 'megapixels'."""
    with pytest.raises(ImageError) as e:
        decode_image(png_bomb(), "bomb.png")
    assert "megapixels" in str(e.value) and "truncated" not in str(e.value)
    with pytest.raises(ImageError, match="9000x6000 pixels is over the limit of 50 megapixels"):
        decode_image(png_bomb(9000, 6000))   # below Pillow's own bomb guard: our limit still holds


def test_unusual_modes_decode_to_8_bit_bgr():
    base = photo()
    rgb = np.asarray(base)
    cases = {
        "16-bit gray": Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 256),
        "CMYK jpeg": None,
        "RGBA": base.convert("RGBA"),
    }
    for label, img in cases.items():
        data = encode(base.convert("CMYK"), "JPEG", quality=95) if img is None else encode(img)
        out = decode_image(data, label)
        assert out.dtype == np.uint8 and out.shape == (60, 80, 3), label
    rgba = decode_image(encode(base.convert("RGBA")))
    np.testing.assert_array_equal(rgba[..., ::-1], rgb)            # alpha dropped, colours kept (BGR order)
    deep = np.asarray(cases["16-bit gray"], np.float64)
    gray16 = decode_image(encode(cases["16-bit gray"]))
    expected = (deep / deep.max() * 255).astype(np.uint8)          # the full 16-bit range stretched to 8 bits
    np.testing.assert_array_equal(gray16[..., 0], expected)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("L", (40, 30), v) for v in (10, 200, 120)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = decode_image(buf.getvalue(), "anim.gif")
    assert out.shape == (30, 40, 3)
    assert abs(int(out.mean()) - 10) <= 2
