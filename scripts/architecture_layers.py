"""docs/architecture.md's picture of the layers, rendered from the import-linter contracts in .importlinter.

`python scripts/architecture_layers.py` prints the section; `--write` puts it into docs/architecture.md
between its markers. tests/test_architecture.py fails when the page and the contracts differ, so the
picture cannot drift from what `lint-imports` checks.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"
PAGE = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- layers: generated from .importlinter by scripts/architecture_layers.py; do not edit by hand -->"
END = "<!-- end of the generated layers -->"
MAIN = "importlinter:contract:layers"
# What each of the main contract's layers is called, by the first package it lists (the business domains,
# a layer each, are named once, on the highest).
NAMES = {"core": "core", "audit": "platform", "console": "console kit", "feedback": "business domains",
         "reporting": "read side", "sim": "demo and simulation", "app": "shell"}


def _contracts(path: Path = CONTRACTS) -> list[configparser.SectionProxy]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [parser[name] for name in parser.sections() if name.startswith("importlinter:contract:")]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _short(module: str) -> str:
    return module.removeprefix("tripguard.")


def _layer(line: str) -> tuple[list[str], str]:
    """A layer's packages and how they may import each other: `:` freely, `|` not at all."""
    for separator, joined in ((":", " : "), ("|", " | ")):
        if separator in line:
            return [_short(part.strip()) for part in line.split(separator)], joined
    return [_short(line)], ""


def _layers_table(contract: configparser.SectionProxy, names: dict[str, str]) -> list[str]:
    rows = [_layer(line) for line in _lines(contract["layers"])]
    width = max(len(names.get(packages[0], "")) for packages, _ in rows)
    digits = len(str(len(rows)))
    table = []
    for number, (packages, joined) in zip(range(len(rows), 0, -1), rows, strict=True):
        name = names.get(packages[0], "")
        label = f"{name:<{width}}  " if width else ""
        table.append(f"  {number:>{digits}}  {label}{(joined or ' ').join(packages)}".rstrip())
    return table


def _exceptions(path: Path, section: str) -> list[str]:
    """The contract's ignored imports with the comments that give their reasons (configparser drops those)."""
    lines, inside, ignoring = [], False, False
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("["):
            inside, ignoring = raw.strip() == f"[{section}]", False
        elif inside and raw.startswith("ignore_imports"):
            ignoring = True
        elif inside and ignoring and raw.startswith((" ", "\t")) and raw.strip():
            text = raw.strip()
            lines.append(f"  # {text.lstrip('; ')}" if text.startswith(";") else f"  {text}")
        elif raw.strip() and not raw.startswith((" ", "\t", ";")):
            ignoring = False
    return lines


def render(path: Path = CONTRACTS) -> str:
    out = [BEGIN, ""]
    for contract in _contracts(path):
        out.append(f"**{contract['name']}** (`{contract['type']}`)")
        out.append("")
        out.append("```")
        if contract["type"] == "layers":
            out.extend(_layers_table(contract, NAMES if contract.name == MAIN else {}))
        else:
            out.extend(f"  {_short(module)}" for module in _lines(contract["modules"]))
        out.append("```")
        exceptions = _exceptions(path, contract.name)
        if exceptions:
            count = sum(1 for line in exceptions if not line.lstrip().startswith("#"))
            out.append("")
            out.append(f"<details><summary>Imports it lets past ({count})</summary>")
            out.append("")
            out.append("```")
            out.extend(exceptions)
            out.append("```")
            out.append("</details>")
        out.append("")
    out.append(END)
    return "\n".join(out)


def section_of(page: str) -> str:
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[start:end]


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--write"]:
        page = PAGE.read_text(encoding="utf-8")
        PAGE.write_text(page.replace(section_of(page), text), encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
