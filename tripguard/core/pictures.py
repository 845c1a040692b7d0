"""Pictures people send (an applicant's selfie, a shift-start selfie, a hand-over photo) are decoded and
checked before anything is stored, matched or opened: a JPEG or PNG, at most `MAX_BYTES`, between
`MIN_SIDE` and `MAX_SIDE` pixels a side and `MAX_PIXELS` in all, and whole (every pixel decodes).
Anything else is a 422 that names the field and why. Pillow reads the header first, so a small file
that claims a huge picture (a decompression bomb) is refused before a pixel is decoded."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from tripguard.core.errors import FieldProblem, InvalidInput
from tripguard.core.i18n import N_

MAX_BYTES = 1_500_000
MIN_SIDE = 32
MAX_SIDE = 8192
MAX_PIXELS = 25_000_000
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
NOT_A_PICTURE = N_("The picture could not be used: send a JPEG or PNG photo.")


@dataclass(frozen=True)
class Picture:
    data: bytes
    media_type: str
    width: int
    height: int


def _refuse(field: str, why: str) -> InvalidInput:
    return InvalidInput(NOT_A_PICTURE, errors=[FieldProblem(field=field, message=why)])


def check(data: bytes, *, field: str) -> Picture:
    """The picture these bytes hold, or InvalidInput naming `field` and what is wrong."""
    if len(data) > MAX_BYTES:
        raise _refuse(field, f"larger than {MAX_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
                media_type = FORMATS.get(image.format or "")
                width, height = image.size
                if media_type is None:
                    raise _refuse(field, "not a JPEG or PNG picture")
                if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
                    raise _refuse(field, f"{width}x{height} pixels: between {MIN_SIDE} and {MAX_SIDE} a side, "
                                         f"{MAX_PIXELS} in all")
                image.load()  # every pixel: a truncated or corrupt file fails here
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refuse(field, f"more than {MAX_PIXELS} pixels") from exc
    except UnidentifiedImageError as exc:
        raise _refuse(field, "not a JPEG or PNG picture") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise _refuse(field, "the picture is damaged or incomplete") from exc
    return Picture(data, media_type, width, height)


def decode(value: str, *, field: str) -> Picture:
    """A base64 picture from a request body, checked."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _refuse(field, "not base64") from exc
    return check(data, field=field)
