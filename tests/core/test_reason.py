"""A reason that lets someone past a check (`core.types.Reason`): stripped, 5 to 200 characters, at least 5
of them letters or digits of any script. Blanks, full-width or zero-width spaces and marks are no reason
(review #27: an override of the dispatch gate was given for five spaces)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from tripguard.core.types import LongReason, Reason, visible_reason


class _Body(BaseModel):
    reason: Reason


class _Long(BaseModel):
    reason: LongReason


@pytest.mark.parametrize("text", ["     ", "\u3000" * 5, ".....", "\u200b" * 5, "\ufeff" * 5, " ab ", "x",
                                  "- - - - -", "a.b.c.d", "\t\t\t\t\t", "abcd\u0000e", "a" * 201, "", "、、、、、"])
def test_no_reason(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _Body(reason=text)
    assert caught.value.errors()[0]["loc"] == ("reason",)


@pytest.mark.parametrize(("text", "kept"), [
    ("aaaaa", "aaaaa"), ("  暴雨天气，唯一骑手  ", "暴雨天气，唯一骑手"), ("\u3000核对楼栋号\u3000", "核对楼栋号"),
    ("drill", "drill"), ("court order 7", "court order 7"), ("a" * 200, "a" * 200)])
def test_a_reason_is_kept_stripped(text: str, kept: str) -> None:
    assert _Body(reason=text).reason == kept


def test_a_long_reason_takes_up_to_500() -> None:
    assert _Long(reason="b" * 500).reason == "b" * 500
    with pytest.raises(ValidationError):
        _Long(reason="b" * 501)
    with pytest.raises(ValidationError):
        _Long(reason=" . " * 10)


def test_the_bounds_are_published() -> None:
    schema = _Body.model_json_schema()["properties"]["reason"]
    assert (schema["minLength"], schema["maxLength"]) == (5, 200)


def test_the_rule_outside_a_body() -> None:
    assert visible_reason("  disk lost, no copy ") == "disk lost, no copy"
    with pytest.raises(ValueError, match="letters or digits"):
        visible_reason("  ...  ")


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["\u3164" * 5, "\uffa0" * 5, "\u115f\u1160" * 3,  # Hangul fillers: blank on screen
                                  "\u202eevlos ot gnimmarG", "reason\u200bgiven"])  # read otherwise than typed
def test_a_reason_that_shows_nothing_or_reads_otherwise_is_no_reason(text: str) -> None:
    """Found by the second review of #27."""
    with pytest.raises(ValueError):
        visible_reason(text)
