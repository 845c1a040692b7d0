"""JSON from outside with a bound on its nesting: too deep is TooDeep (a ValueError), never RecursionError."""

from __future__ import annotations

import pytest

from tripguard.core import jsonbody

pytestmark = pytest.mark.no_database


def test_nesting_is_bounded() -> None:
    assert jsonbody.loads(b'{"a": [1, {"b": []}]}') == {"a": [1, {"b": []}]}
    assert jsonbody.depth(1) == 0 and jsonbody.depth({"a": [1, {"b": []}]}) == 4
    assert jsonbody.loads("[" * 32 + "]" * 32) is not None
    for raw in ("[" * 33 + "]" * 33, "[" * 100_000 + "]" * 100_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        with pytest.raises(jsonbody.TooDeep):
            jsonbody.loads(raw)
    with pytest.raises(ValueError):
        jsonbody.loads(b"not json")
