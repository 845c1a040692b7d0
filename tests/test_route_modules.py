"""Handlers leave queries to their domain (docs/architecture.md, "Where a new domain goes"): a route module
(`api.py`, `console.py`, a `*_pages.py`, the shell's web pages) reads and writes through its domain's service,
never through the session or a SQL statement of its own; and the request's unit of work is the only
committer, except where a comment on the line says why."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tripguard"
pytestmark = pytest.mark.no_database

SESSION_NAMES = {"session", "db", "connection"}
QUERY_METHODS = {"execute", "scalar", "scalars", "get", "query", "add", "add_all", "delete", "merge", "refresh"}
STATEMENTS = {"select", "insert", "update", "delete", "text", "exists"}


def _route_modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name in {"api.py", "console.py"} or path.name.endswith("_pages.py") or "APIRouter(" in source:
            yield path


def _sqlalchemy_names(tree: ast.Module) -> set[str]:
    """The statement builders this module imports from SQLAlchemy, under the names it uses."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name in STATEMENTS}
    return names


def queries(source: str) -> list[tuple[int, str]]:
    """(line, what) for every query a route module writes itself, and every commit without a reason."""
    tree = ast.parse(source)
    lines = source.splitlines()
    builders = _sqlalchemy_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builders:
            found.append((node.lineno, f"{node.func.id}()"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in SESSION_NAMES:
            # a reference, called or not: `run_in_threadpool(session.get, Row, 1)` queries as well
            if node.attr in QUERY_METHODS:
                found.append((node.lineno, f"{node.value.id}.{node.attr}()"))
            elif node.attr == "commit" and "#" not in lines[node.lineno - 1]:
                found.append((node.lineno, f"{node.value.id}.commit() with no comment saying why"))
    return sorted(found)


def test_the_finder_finds_queries_and_bare_commits() -> None:
    source = ("from sqlalchemy import select as pick, func\n"
              "def page(session):\n"
              "    session.get(Row, 1)\n"
              "    rows = session.scalars(pick(Row))\n"
              "    func.count()\n"
              "    session.commit()\n"
              "    session.commit()  # the lock-out outlives the rollback\n"
              "    service.get(session, row_id=1)\n"
              "    run_in_threadpool(db.get, Row, 2)\n")
    assert queries(source) == [(3, "session.get()"), (4, "pick()"), (4, "session.scalars()"),
                               (6, "session.commit() with no comment saying why"), (9, "db.get()")]


def test_route_modules_leave_queries_to_their_domain() -> None:
    modules = list(_route_modules())
    assert PACKAGE / "safety" / "console.py" in modules and PACKAGE / "console" / "audit_pages.py" in modules
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in modules
             for line, what in queries(path.read_text(encoding="utf-8"))]
    assert found == [], "queries in route modules (move them to the domain's service):\n" + "\n".join(found)
