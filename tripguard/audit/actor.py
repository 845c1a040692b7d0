"""Who did something, as the audit log names them (kept free of heavy imports: the CLI uses it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    type: str  # staff | api_key | subject | system | cli | anonymous
    id: str


SYSTEM = Actor("system", "tripguard")
CLI_ACTOR = Actor("cli", "operator")
