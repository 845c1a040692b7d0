"""What every PDF TripGuard draws shares: a CJK font embedded as a subset, and one drawing at a time.

WenQuanYi Micro Hei is a TrueType font from Debian's `fonts-wqy-microhei`; Noto Sans CJK is CFF, which
ReportLab cannot embed. ReportLab's font subsetting and PDFium are not thread-safe: render under
`RENDERING`, or in a process of its own (privacy labels: `core.processes`, one label at a time per worker)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
              Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"))
FONT = "tg-cjk"
RENDERING = threading.Lock()


class FontMissing(RuntimeError):
    pass


@lru_cache(maxsize=1)
def font() -> str:
    """Registered once per process (parsing the font takes half a second; each page then a few ms)."""
    for path in FONT_FILES:
        if path.exists():
            pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
            return FONT
    raise FontMissing("no CJK TrueType font: apt-get install fonts-wqy-microhei (make chromium does)")
