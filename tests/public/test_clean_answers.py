"""Cleaning a page's answers against the questionnaire's layout (no database)."""

from __future__ import annotations

import types

import pytest

from survey.services.responses import AnswerError, clean_for_layout

LAYOUT = types.SimpleNamespace(item_codes=("q1", "q2", "q3"), scale_min=1, scale_max=10)


def test_whole_numbers_on_the_scale_and_blanks_are_kept() -> None:
    cleaned = clean_for_layout(LAYOUT, {"q1": 1, "q2": " 10 ", "q3": 4.0})  # type: ignore[arg-type]
    assert cleaned == {"q1": 1, "q2": 10, "q3": 4}
    assert all(type(value) is int for value in cleaned.values())
    assert clean_for_layout(LAYOUT, {"q1": None, "q2": ""}) == {"q1": None, "q2": None, "q3": None}  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "reason"), [
    (0, "0 is outside 1–10"), (11, "11 is outside 1–10"), (-3, "-3 is outside 1–10"),
    (True, "not a number"), (False, "not a number"), (2.5, "not a whole number"),
    ("seven", "'seven' is not a whole number"), ("11", "11 is outside 1–10"), ([5], "not a whole number"),
])
def test_anything_else_is_refused_with_its_reason(value: object, reason: str) -> None:
    with pytest.raises(AnswerError) as refused:
        clean_for_layout(LAYOUT, {"q1": 5, "q2": value})  # type: ignore[arg-type]
    assert refused.value.errors == {"q2": reason}


def test_an_unknown_item_is_refused() -> None:
    with pytest.raises(AnswerError) as refused:
        clean_for_layout(LAYOUT, {"q1": 5, "zz": 5})  # type: ignore[arg-type]
    assert refused.value.errors == {"zz": "not an item of this questionnaire"}
