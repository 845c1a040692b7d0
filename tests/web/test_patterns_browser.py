"""Every `pattern` attribute in the console's templates compiles in Chromium, which reads it as a
JavaScript regular expression with the `v` flag (an invalid one is ignored: the field goes unchecked)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser
PACKAGE = Path(__file__).parents[2] / "tripguard"


def test_every_pattern_attribute_compiles_in_chromium(browser: Any) -> None:
    patterns = {html.unescape(found) for template in PACKAGE.glob("*/templates/**/*.html")
                for found in re.findall(r'\bpattern="([^"]*)"', template.read_text())}
    assert patterns
    page = browser.new_page()
    try:
        broken = page.evaluate("""patterns => patterns.filter(p => {
            try { new RegExp(p, "v"); return false; } catch (e) { return true; } })""", sorted(patterns))
    finally:
        page.close()
    assert broken == []
