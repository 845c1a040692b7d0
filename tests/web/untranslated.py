"""An automated check of rendered Chinese pages: English words a person would read (text, and the
alt, title, placeholder and aria-label attributes) that are not names, codes or ids."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Words that are the same in both languages: the product, acronyms, formats, units, the language switch.
ALLOWED = {"TripGuard", "SOS", "API", "CSV", "GeoJSON", "PNG", "PDF", "JSON", "UTC", "TOTP", "SMS", "ID", "IP",
           "English", "OpenStreetMap", "Leaflet", "km", "GCJ", "WGS", "URL", "HTTPS", "QR", "DPO", "PIPL", "GB", "T",
           "ECharts", "NDJSON", "SLA"}
SKIPPED_TAGS = {"script", "style", "code", "pre", "option", "noscript", "template"}
READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")
# Ids, codes and machine values: a token with a digit, an underscore or a dot or colon inside it
# (inc_01…, auth.sign_in, wang.fang), or in a `mono`/`code` element or one marked translate="no".
ID_LIKE = re.compile(r"[_0-9]|[A-Za-z][.:][A-Za-z]")


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        skipped = tag in SKIPPED_TAGS or "mono" in classes or values.get("translate") == "no" or "hidden" in values
        if skipped and tag not in ("br", "img", "input", "meta", "link"):
            self.skipping.append(tag)
        for name in READ_ATTRIBUTES:
            if values.get(name) and not self.skipping:
                self._read(values[name] or "")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self._read(data)

    def _read(self, text: str) -> None:
        for token in text.split():
            if ID_LIKE.search(token.strip(".,;:()[]·")):
                continue
            self.words.extend(w for w in WORD.findall(token) if w not in ALLOWED)


def english_words(html: str) -> list[str]:
    reader = _Reader()
    reader.feed(html)
    return reader.words
