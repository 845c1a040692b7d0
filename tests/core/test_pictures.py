"""Pictures are decoded and checked before anything is stored: type, size, dimensions, whole."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from tests.builders import picture
from tripguard.core import pictures
from tripguard.core.errors import InvalidInput


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` and holds a few bytes of pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_a_png_and_a_jpeg_are_read_for_what_they_are() -> None:
    png = pictures.check(picture(1), field="selfie")
    assert (png.media_type, png.width, png.height) == ("image/png", 64, 48)
    jpeg = pictures.decode(base64.b64encode(picture(2, kind="JPEG")).decode(), field="photo")
    assert jpeg.media_type == "image/jpeg"


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, format="GIF")
    return out.getvalue()


@pytest.mark.parametrize(("data", "why"), [
    (b"\x89PNG reference photo of the applicant", "not a JPEG or PNG picture"),
    (b"%PDF-1.7 hello", "not a JPEG or PNG picture"),
    (b"", "not a JPEG or PNG picture"),
    (_gif(), "not a JPEG or PNG picture"),
    (picture(3)[:60], "the picture is damaged or incomplete"),
    (picture(4, size=(8, 8)), "8x8 pixels"),
    (_png_header(60000, 60000), "pixels"),
    (_png_header(5000, 6000), "5000x6000 pixels"),  # under the side limit, over the pixel limit
    (b"\xff" * (pictures.MAX_BYTES + 1), "larger than"),
])
def test_anything_else_is_refused_with_the_field_and_why(data: bytes, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        pictures.check(data, field="selfie")
    assert refused.value.status == 422 and refused.value.errors is not None
    assert refused.value.errors[0].field == "selfie" and why in refused.value.errors[0].message


def test_text_that_is_not_base64_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        pictures.decode("%%%not base64%%%", field="photo")
    assert refused.value.errors and refused.value.errors[0].message == "not base64"
