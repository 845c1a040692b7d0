"""Extract the messages and refresh both catalogs: `make catalogs`. Missing Chinese fails loudly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = ROOT / "tripguard" / "translations"


def main() -> int:
    pot = ROOT / "var" / "messages.pot"
    pot.parent.mkdir(exist_ok=True)
    subprocess.run(
        [str(Path(sys.executable).with_name("pybabel")), "extract", "-F", "babel.cfg", "-k", "N_",
         "-o", str(pot), "--no-location", "--omit-header", "."],
        check=True, cwd=ROOT, capture_output=True,
    )
    template = read_po(pot.open("rb"))
    missing: list[str] = []
    for locale in ("zh_CN", "en"):
        path = CATALOGS / locale / "LC_MESSAGES" / "messages.po"
        old = read_po(path.open("rb"), locale=locale) if path.exists() else Catalog(locale=locale)
        new = Catalog(locale=locale, project="TripGuard")
        for message in template:
            if not message.id:
                continue
            previous = old.get(message.id)
            new.add(message.id, previous.string if previous else "")
            if locale == "zh_CN" and not (previous and previous.string):
                missing.append(str(message.id))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, new, omit_header=False, width=100, sort_output=True)
    if missing:
        print("untranslated in zh_CN:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
