"""Public functions that take a session take what follows it by keyword (docs/architecture.md): a call reads
as what it does, `screening.service.move(session, applicant=a, status=s, actor=x, rules=r)`. One argument
after the session may stay positional (`vault.data_key(session, subject_id)` reads unambiguously); the
exceptions are callbacks whose signature a registry fixes, called positionally by it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tripguard"
pytestmark = pytest.mark.no_database

REGISTERED = {  # called by their registry, which fixes the positional signature
    "run": "a retention rule (privacy.retention.Rule.run)",
    "base_info_driver": "a regulator exporter", "base_info_driver_educate": "a regulator exporter",
    "rated_driver_punish": "a regulator exporter", "base_info_vehicle": "a regulator exporter",
    "rated_passenger_complaint": "a regulator exporter", "position_vehicle": "a regulator exporter",
    "position_driver": "a regulator exporter", "operate_depart": "a regulator exporter",
    "operate_arrive": "a regulator exporter", "order_match": "a regulator exporter",
    "ingest": "the event bus protocol (telematics.ingest.bus.EventBus)",
    "record_positions": "called with a held buffer's (trip ids, table) as it drains",
}


def positional_after_the_session(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
            continue
        if any("router" in ast.unparse(decorator) for decorator in node.decorator_list):
            continue  # a route handler: FastAPI calls it by keyword
        arguments = [a.arg for a in node.args.posonlyargs + node.args.args]
        if arguments[:1] in (["self"], ["cls"]):
            arguments = arguments[1:]
        if arguments[:1] == ["session"] and len(arguments) > 2 and node.name not in REGISTERED:
            found.append((node.lineno, f"{node.name}({', '.join(arguments)})"))
    return found


def test_the_finder_finds_positional_arguments_after_the_session() -> None:
    source = ("def move(session, applicant, status, *, actor): ...\n"
              "def get(session, applicant_id): ...\n"
              "def run(session, vault, now, dry_run): ...\n"
              "def decide(session, *, applicant, status): ...\n"
              "class Vault:\n    def subject_mac(self, session, subject_id, text): ...\n")
    assert positional_after_the_session(source) == [(1, "move(session, applicant, status)"),
                                                     (6, "subject_mac(session, subject_id, text)")]


def test_public_functions_take_what_follows_the_session_by_keyword() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}" for path in sorted(PACKAGE.rglob("*.py"))
             for line, what in positional_after_the_session(path.read_text(encoding="utf-8"))]
    assert found == [], "\n".join(found)
