"""The layers as code: docs/architecture.md shows the import-linter contracts `make lint` checks, and every
package of tripguard sits in a layer (a new one cannot slip past the contract)."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.no_database


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("architecture_layers", ROOT / "scripts" / "architecture_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_architecture_page_shows_the_contracts_as_they_are() -> None:
    script = _script()
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert script.section_of(page) == script.render(), (
        "docs/architecture.md's layers differ from .importlinter: run `python scripts/architecture_layers.py --write`")


def test_every_package_is_in_a_layer() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / ".importlinter", encoding="utf-8")
    layered = {part.strip() for line in parser["importlinter:contract:layers"]["layers"].splitlines()
               for part in line.replace("|", ":").split(":") if part.strip()}
    packages = {f"tripguard.{path.stem if path.suffix == '.py' else path.name}"
                for path in (ROOT / "tripguard").iterdir()
                if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()}
    assert packages - layered == set(), "a package of tripguard is in no layer of .importlinter"
    assert layered - packages == set(), ".importlinter names a package tripguard does not have"


def test_the_rendering_follows_the_contract(tmp_path: Path) -> None:
    """Change the contract and the picture changes with it."""
    script = _script()
    contracts = tmp_path / ".importlinter"
    original = (ROOT / ".importlinter").read_text(encoding="utf-8")
    assert "    tripguard.sim\n" in original
    contracts.write_text(original.replace("    tripguard.sim\n", "    tripguard.sim\n    tripguard.extra\n", 1),
                         encoding="utf-8")
    assert "extra" in script.render(contracts) and "extra" not in script.render()
