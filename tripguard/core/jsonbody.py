"""JSON from outside (a webhook's body, a signed callback): parsed with a bound on its nesting.

Python's parser recurses: a body of 100,000 `[` is a RecursionError (a 500 the review found in the screening
callback), and one just under the interpreter's limit parses but breaks whatever later walks, stores or prints
it. Nothing TripGuard takes is nested deeper than a few levels; `MAX_DEPTH` leaves room and refuses the rest.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class TooDeep(ValueError):
    """Nested deeper than the bound (a ValueError, so callers that refuse bad JSON refuse this too)."""


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, with JSON nested deeper than `max_depth` refused as TooDeep (never a RecursionError).
    Bad JSON raises ValueError (UnicodeDecodeError for bytes that are not UTF-8), as json.loads does."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from exc
    if depth(value) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return value
