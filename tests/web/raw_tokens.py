"""An automated check of a rendered console page for machine values a person should never read: Python
literals (True, False, None), the access gate's markers ([erased]), keys (snake_case like support_agent,
dotted like user.contact.phone_number or auth.sign_in) and internal ids (stf_01…, a staff member or an API
key shown where their name exists).

What a person reads: text nodes (inside <code> and <pre> too), <option> labels, and the attributes shown
to them (alt, title, placeholder, aria-label, and the confirmation dialog's data-confirm and
data-consequence). Scripts, styles and templates are not read.

The allowlist is one marker, `class="ref"` (the `ref` filter, `tripguard.console.readable.ref`): a record's id
shown as an id on purpose (a case, a trip, an order, a request) or a person's id where their name is
personal data opened only through the access gate. Inside it, keys and ids pass; a staff id or an API key
id never does (their names are not personal data and are always shown instead)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

SKIPPED_TAGS = {"script", "style", "template", "noscript"}
VOID_TAGS = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base", "embed", "track"}
READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label", "data-confirm", "data-consequence")
REF_CLASS = "ref"

# Never, not even inside a ref: the names exist.
ALWAYS = [
    ("Python literal", re.compile(r"^(True|False|None)$")),
    ("access-gate marker", re.compile(r"\[(erased|unreadable)\]")),
    ("staff id", re.compile(r"\bstf_[A-Za-z0-9_]+")),
    ("API key id", re.compile(r"\bkey_[A-Za-z0-9_]+")),
]
# Outside a ref only.
OUTSIDE_REF = [
    ("id", re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")),
    ("snake_case key", re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")),
    ("dotted key", re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")),
]
PUNCTUATION = ".,;:()[]{}<>\"'·、，。：；（）「」…!?！？/"


@dataclass(frozen=True)
class Raw:
    kind: str
    token: str
    context: str  # the text around it, to find it on the page

    def __str__(self) -> str:
        return f"{self.kind} {self.token!r} in {self.context!r}"


class _Reader(HTMLParser):
    def __init__(self, known_ids: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.known_ids = known_ids
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skipping, ref)
        self.found: list[Raw] = []

    @property
    def skipping(self) -> bool:
        return any(skip for _, skip, _ in self.stack)

    @property
    def in_ref(self) -> bool:
        return any(ref for _, _, ref in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        # A tab's title names the record by its id, and cannot hold markup.
        ref = REF_CLASS in (values.get("class") or "").split() or tag == "title"
        if not self.skipping and tag not in SKIPPED_TAGS:
            for name in READ_ATTRIBUTES:
                if values.get(name):
                    self._read(values[name] or "", ref=self.in_ref or ref)
        if tag not in VOID_TAGS:
            self.stack.append((tag, tag in SKIPPED_TAGS, ref))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):  # tolerate an unclosed <li>, <p>, <td>…
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self._read(data, ref=self.in_ref)

    def _read(self, text: str, *, ref: bool) -> None:
        context = " ".join(text.split())[:120]
        for kind, pattern in ALWAYS:
            for match in pattern.finditer(text):
                self.found.append(Raw(kind, match.group(0), context))
        if ref:
            return
        for token in text.split():
            bare = token.strip(PUNCTUATION)
            if bare in self.known_ids:
                self.found.append(Raw("a person's id outside a ref", bare, context))
                continue
            for kind, pattern in OUTSIDE_REF:
                if pattern.match(bare):
                    self.found.append(Raw(kind, bare, context))
                    break


def raw_tokens(html: str, known_ids: Iterable[str] = ()) -> list[Raw]:
    """Machine values a person would read on this page. `known_ids`: ids of people the test seeded (any
    shape: P1, R_ZH), which may be shown only inside a ref."""
    reader = _Reader(frozenset(known_ids))
    reader.feed(html)
    reader.close()
    return reader.found
