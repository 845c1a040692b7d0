"""The layers as code: docs/architecture.md shows the import-linter contracts `make lint` checks, every
package of tripguard sits in a layer (a new one cannot slip past the contract), and no two top-level
packages import each other, however indirectly (no import cycle between packages)."""

from __future__ import annotations

import configparser
import importlib.util
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import grimp
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


def _package_imports() -> dict[tuple[str, str], list[str]]:
    """Every import from one top-level package of tripguard (a subpackage: `tripguard.safety`) into another,
    with the module imports that make it."""
    packages = {path.stem for path in (ROOT / "tripguard").iterdir()  # the shell's modules (app, cli) too
                if (path / "__init__.py").exists() or (path.suffix == ".py" and path.stem != "__init__")}
    graph = grimp.build_graph("tripguard", cache_dir=None)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer in sorted(graph.modules):
        source = importer.split(".")[1] if importer.count(".") >= 1 else None
        if source not in packages:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            target = imported.split(".")[1] if imported.count(".") >= 1 else None
            if target in packages and target != source:
                edges[(source, target)].append(f"{importer} -> {imported}")
    return edges


def _cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one package: packages that reach each other."""
    onward: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        onward[source].add(target)

    def reached_from(start: str) -> set[str]:
        reached, todo = set(), [start]
        while todo:
            for nxt in onward[todo.pop()] - reached:
                reached.add(nxt)
                todo.append(nxt)
        return reached

    reach = {package: reached_from(package) for package in list(onward)}
    components: list[list[str]] = []
    for package in sorted(reach):
        if package in reach[package] and not any(package in component for component in components):
            components.append(sorted({package} | {other for other in reach[package]
                                                   if package in reach.get(other, set())}))
    return components


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]) == [
        ["a", "b", "c"], ["d", "e"]]
    assert _cycles([("a", "b"), ("b", "c"), ("a", "c")]) == []


def test_no_import_cycle_between_packages() -> None:
    """Packages form no cycle: each reaches only packages that do not reach it back (the business domains,
    the platform's packages among themselves, everything else)."""
    edges = _package_imports()
    assert ("telematics", "core") in edges  # the graph is the real one
    cycles = _cycles(edges)
    described = [f"{' <-> '.join(cycle)}: " + "; ".join(
        f"{', '.join(edges[(source, target)][:3])}" for source in cycle for target in cycle
        if (source, target) in edges) for cycle in cycles]
    assert cycles == [], "import cycles between packages:\n" + "\n".join(described)
