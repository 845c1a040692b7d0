"""docs/api.md's table of API key scopes says what each scope returns; the routes a scope opens return no
more: no route an API key can call has a position in its answer unless its scope is documented to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tripguard.security.permissions import API_KEY_SCOPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADING = "### What each API key scope returns"
# Field names that carry where someone was (GeoJSON, the ingest contract, the trip's plan, an SOS payload).
POSITION_FIELDS = frozenset({"lon", "lat", "position", "coordinates", "location", "route", "pickup", "dropoff",
                             "end", "trajectory", "geometry"})


def documented() -> dict[str, str]:
    """The table under HEADING: scope -> its positions column."""
    lines = DOC.read_text(encoding="utf-8").split(HEADING, 1)[1].splitlines()
    rows = [line for line in lines[1:next(n for n, line in enumerate(lines[1:], 1) if line.startswith("#"))]
            if line.startswith("| `")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return {scope.strip("`"): positions for scope, _, positions in cells}


def names_in(schema: Any, components: dict[str, Any], seen: set[str] | None = None) -> set[str]:
    """Every property name a response schema can hold, $refs followed."""
    seen = set() if seen is None else seen
    if isinstance(schema, list):
        return {n for item in schema for n in names_in(item, components, seen)}
    if not isinstance(schema, dict):
        return set()
    found: set[str] = set()
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        seen.add(ref)
        found |= names_in(components[ref.rsplit("/", 1)[1]], components, seen)
    found |= set(schema.get("properties", {}))
    for value in schema.values():
        found |= names_in(value, components, seen)
    return found


def returned_by_scope(app: FastAPI) -> dict[str, set[str]]:
    spec = app.openapi()
    components = spec["components"]["schemas"]
    names: dict[str, set[str]] = {p.value: set() for p in API_KEY_SCOPES}
    for operations in spec["paths"].values():
        for operation in operations.values():
            scope = operation.get("x-permission")
            if scope not in names:
                continue
            for code, response in operation["responses"].items():
                if code.startswith("2"):
                    names[scope] |= names_in(response.get("content", {}), components)
    return names


def test_every_scope_is_in_the_table() -> None:
    table = documented()
    assert set(table) == {p.value for p in API_KEY_SCOPES}
    assert set(table.values()) <= {"yes", "no"}


def test_no_scope_returns_a_position_the_table_does_not_admit(app: FastAPI) -> None:
    table = documented()
    for scope, names in returned_by_scope(app).items():
        shown = names & POSITION_FIELDS
        assert not shown or table[scope] == "yes", f"{scope} returns {sorted(shown)}, documented as no positions"
        if table[scope] == "yes":
            assert shown, f"{scope} is documented to return positions: which route does?"
