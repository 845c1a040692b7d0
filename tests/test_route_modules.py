"""Handlers leave queries to their domain (docs/architecture.md, "Where a new domain goes"): a route module
(`api.py`, `console.py`, a `*_pages.py`, the shell's web pages) reads and writes through its domain's service,
never through a session or a SQL statement of its own; the request's unit of work is the only committer,
anywhere in the package, except where a comment on the line says why; and only the app factory and the
dependency providers touch an app's state."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tripguard"
pytestmark = pytest.mark.no_database

SESSION_NAMES = {"session", "db", "connection", "conn"}
QUERY_METHODS = {"execute", "scalar", "scalars", "get", "query", "add", "add_all", "delete", "merge", "refresh"}
STATEMENTS = {"select", "insert", "update", "delete", "text", "exists"}
COMMITTERS = {"core/db.py", "core/bookkeeping.py", "core/sqlite_writer.py"}  # the unit of work and its helpers
STATE_KEEPERS = {"app.py"}  # the factory; and the dependency providers, in each package's deps.py


def _route_modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name in {"api.py", "console.py"} or path.name.endswith("_pages.py") or "APIRouter(" in source:
            yield path


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(statement builders imported by name, names bound to SQLAlchemy or one of its modules)."""
    builders, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in STATEMENTS:
                    builders.add(alias.asname or alias.name)
                elif alias.name.islower():  # `from sqlalchemy import sql`
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                        if alias.name.split(".")[0] == "sqlalchemy"}
    return builders, modules


def _session_names(tree: ast.Module) -> set[str]:
    """Names that hold a session: the usual ones, parameters annotated `…Session…`, and whatever a `with` binds
    from a session factory (`with sessions() as s`)."""
    names = set(SESSION_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None and "Session" in ast.unparse(node.annotation):
            names.add(node.arg)
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name) \
                and "session" in ast.unparse(node.context_expr).lower():
            names.add(node.optional_vars.id)
    return names


def _holds_a_session(receiver: ast.expr, names: set[str]) -> bool:
    if isinstance(receiver, ast.Name):
        return receiver.id in names
    return isinstance(receiver, ast.Attribute) and ("session" in receiver.attr.lower() or receiver.attr in names)


def _commented_lines(source: str) -> set[int]:
    return {token.start[0] for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT}


def commits(source: str) -> list[tuple[int, str]]:
    """(line, what) for every commit, called or passed on (`between_slices=Session.commit`), with no comment
    on its line saying why."""
    tree = ast.parse(source)
    commented = _commented_lines(source)
    return sorted((node.lineno, f"{ast.unparse(node.value)}.commit with no comment saying why")
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr == "commit" and node.lineno not in commented)


def queries(source: str) -> list[tuple[int, str]]:
    """(line, what) for every query a route module writes itself, and every commit without a reason."""
    tree = ast.parse(source)
    builders, modules = _imports(tree)
    sessions = _session_names(tree)
    found = commits(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builders:
            found.append((node.lineno, f"{node.func.id}()"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STATEMENTS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in modules:
            found.append((node.lineno, f"{ast.unparse(node.func)}()"))
        elif isinstance(node, ast.Attribute) and node.attr in QUERY_METHODS and _holds_a_session(node.value, sessions):
            # a reference, called or not: `run_in_threadpool(session.get, Row, 1)` queries as well
            found.append((node.lineno, f"{ast.unparse(node)}()"))
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
                               (6, "session.commit with no comment saying why"), (9, "db.get()")]


BYPASSES = {  # ways of writing a query or a commit that an earlier finder missed (review of #29)
    "module alias": "import sqlalchemy as sa\ndef page(session):\n    return sa.select(Row)\n",
    "submodule attribute": "from sqlalchemy import sql\ndef page():\n    return sql.select(Row)\n",
    "another name": "def page(sessions):\n    with sessions() as s:\n        return s.scalars(q)\n",
    "an annotated parameter": "def page(reader: DbSession):\n    return reader.get(Row, 1)\n",
    "request.state": "def page(request):\n    return request.state.db_session.get(Row, 1)\n",
    "commit as a callback": "from sqlalchemy.orm import Session\nOPTIONS = Options(between=Session.commit)\n",
    "a # in a string is no comment": "def page(session):\n    session.commit(); url = f'{PAGE}#v-1'\n",
}


@pytest.mark.parametrize("source", BYPASSES.values(), ids=BYPASSES.keys())
def test_the_finder_sees_queries_and_commits_written_another_way(source: str) -> None:
    assert queries(source) != []


def test_a_dict_or_a_service_named_like_a_session_method_is_no_query() -> None:
    assert queries("def page(request, session):\n    request.query_params.get('q')\n"
                   "    settings.get('x')\n    service.delete(session, row_id=1)\n") == []


def test_route_modules_leave_queries_to_their_domain() -> None:
    modules = list(_route_modules())
    assert PACKAGE / "safety" / "console.py" in modules and PACKAGE / "console" / "audit_pages.py" in modules
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in modules
             for line, what in queries(path.read_text(encoding="utf-8"))]
    assert found == [], "queries in route modules (move them to the domain's service):\n" + "\n".join(found)


def test_every_commit_outside_the_unit_of_work_says_why_on_its_line() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in sorted(PACKAGE.rglob("*.py"))
             if str(path.relative_to(PACKAGE)) not in COMMITTERS
             for line, what in commits(path.read_text(encoding="utf-8"))]
    assert found == [], "\n".join(found)


def test_only_the_factory_and_the_providers_touch_an_apps_state() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}" for path in sorted(PACKAGE.rglob("*.py"))
             if str(path.relative_to(PACKAGE)) not in STATE_KEEPERS and path.name != "deps.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\b(app|site|application|server)\.state\b", line)]
    assert found == [], "\n".join(found)
