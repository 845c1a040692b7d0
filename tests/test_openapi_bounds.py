"""Every parameter and body field of the API is bounded in the published schema (issue #27, hostile input):
numbers have a minimum and a maximum, strings a length, a pattern of bounded repetition, an enum or a bounded
date-time format, arrays a largest size, date-times the 1970-2200 window. The fuzz generates from these
schemas, and a client reads its limits there."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

EARLIEST_TEXT, LATEST_TEXT = "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z"  # core.types.TIME_WINDOW

def _unbounded_repetition(pattern: str) -> bool:
    # Escapes and character classes cannot repeat on their own: take them out, then look for + * {n,}.
    bare = re.sub(r"\[(?:\\.|[^\]])*\]", "", re.sub(r"\\.", "x", pattern))
    return bool(re.search(r"[+*]|\{\d+,\}", bare.replace("(?:", "(")))


class _Walk:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.components = spec.get("components", {}).get("schemas", {})
        self.seen: set[str] = set()
        self.problems: list[str] = []

    def check(self, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in self.seen:
                self.seen.add(name)
                self.check(self.components[name], name)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                self.check(sub, where)
        kind = schema.get("type")
        if "enum" in schema or "const" in schema:
            pass
        elif kind in ("integer", "number"):
            low = "minimum" in schema or "exclusiveMinimum" in schema
            high = "maximum" in schema or "exclusiveMaximum" in schema
            if not (low and high):
                self.problems.append(f"{where}: a number without a minimum and a maximum")
        elif kind == "string" and schema.get("format") == "date-time":
            if schema.get("formatMinimum") != EARLIEST_TEXT or schema.get("formatExclusiveMaximum") != LATEST_TEXT:
                self.problems.append(f"{where}: a date-time without the 1970-2200 window (use core.types.Timestamp)")
        elif kind == "string" and "maxLength" not in schema:
            pattern = schema.get("pattern")
            if pattern is None:
                self.problems.append(f"{where}: a string without maxLength or pattern")
            elif pattern is not None and _unbounded_repetition(pattern):
                self.problems.append(f"{where}: a pattern that repeats without bound ({pattern}) and no maxLength")
        elif kind == "array" and "maxItems" not in schema:
            self.problems.append(f"{where}: an array without maxItems")
        if "items" in schema:
            self.check(schema["items"], f"{where}[]")
        for name, sub in schema.get("properties", {}).items():
            self.check(sub, f"{where}.{name}")
        if isinstance(schema.get("additionalProperties"), dict):
            self.check(schema["additionalProperties"], f"{where}{{}}")


@pytest.mark.no_database
def test_the_pattern_reader_sees_unbounded_repetition() -> None:
    assert _unbounded_repetition(r"^bytes \d+-\d+/\d+$") and _unbounded_repetition(r"^\s*[0-9]{6}\s*$")
    assert _unbounded_repetition(r"^[a-z]{2,}$")
    assert not _unbounded_repetition(r"^\+?[0-9][0-9 +*-]{4,19}$") and not _unbounded_repetition(r"^(?:a|b){1,3}$")


def test_every_input_of_the_api_is_bounded(app: FastAPI) -> None:
    spec = app.openapi()
    walk = _Walk(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                walk.check(parameter["schema"], f"{method.upper()} {path} {parameter['in']} {parameter['name']}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk.check(content.get("schema", {}), f"{method.upper()} {path} body")
    assert walk.problems == []
