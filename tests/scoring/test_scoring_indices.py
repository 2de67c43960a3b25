"""Respondent indices follow the DESIGN rules for blanks, incomplete respondents and weights."""

import math
import time

import numpy as np
import pandas as pd
import pytest

from scoring import Dimension, Structure, dimension_scores, respondent_index, respondent_indices

NAN = math.nan
STRUCTURE = Structure(
    dimensions=(
        Dimension("supply", 1.0, ("s1", "s2")),
        Dimension("info", 1.0, ("i1", "i2", "i3")),
        Dimension("bill", 2.0, ("b1",)),
        Dimension("service", 1.0, ("c1", "c2")),
    )
)


@pytest.mark.parametrize(
    ("row", "expected_index", "complete"),
    [
        # All answered: dimension means 7, 8, 9 (weight 2), 5 -> (7 + 8 + 18 + 5) / 5.
        ([6, 8, 8, 8, 8, 9, 5, 5], (7 + 8 + 18 + 5) / 5, True),
        # A blank item is left out of its dimension's mean, not counted as zero.
        ([6, NAN, 8, NAN, NAN, 9, 5, 5], (6 + 8 + 18 + 5) / 5, True),
        # Exactly half of the dimensions answered (2 of 4) is complete; weights of answered dims only.
        ([6, 8, NAN, NAN, NAN, 9, NAN, NAN], (7 + 18) / 3, True),
        # One of four dimensions answered: fewer than half, incomplete.
        ([6, 8, NAN, NAN, NAN, NAN, NAN, NAN], None, False),
        ([NAN] * 8, None, False),
    ],
)
def test_index_rules(row, expected_index, complete):
    result = respondent_indices(np.array([row], dtype=float), STRUCTURE)
    assert bool(result.complete[0]) is complete
    if expected_index is None:
        assert math.isnan(result.index[0])
    else:
        assert result.index[0] == pytest.approx(expected_index)


def test_seven_dimensions_three_answered_is_incomplete():
    structure = Structure(tuple(Dimension(f"d{i}", 1.0, (f"q{i}",)) for i in range(7)))
    three = np.array([[8, 8, 8, NAN, NAN, NAN, NAN]])
    four = np.array([[8, 8, 8, 8, NAN, NAN, NAN]])
    assert not respondent_indices(three, structure).complete[0]
    assert respondent_indices(four, structure).complete[0]


def test_dataframe_columns_by_item_code_and_single_respondent():
    frame = pd.DataFrame([{"c2": 5, "c1": 5, "b1": 9, "i3": 8, "i2": 8, "i1": 8, "s2": 8, "s1": 6, "extra": 1}])
    result = respondent_indices(frame, STRUCTURE)
    assert result.index[0] == pytest.approx(38 / 5)
    answers = {"s1": 6, "s2": 8, "i1": 8, "i2": 8, "i3": 8, "b1": 9, "c1": 5, "c2": None}
    assert respondent_index(answers, STRUCTURE) == pytest.approx((7 + 8 + 18 + 5) / 5)
    assert respondent_index({"s1": 6}, STRUCTURE) is None


def test_dimension_scores_and_counts():
    scores = dimension_scores(np.array([[1, 3, NAN, NAN, NAN, 4, 2, NAN]]), STRUCTURE)
    assert scores[0, 0] == 2 and math.isnan(scores[0, 1]) and scores[0, 2] == 4 and scores[0, 3] == 2
    assert respondent_indices(np.empty((0, 8)), STRUCTURE).index.shape == (0,)


def test_bad_shapes_are_explained():
    with pytest.raises(ValueError, match="n x 8"):
        respondent_indices(np.zeros((2, 3)), STRUCTURE)
    with pytest.raises(ValueError, match="lack item columns"):
        respondent_indices(pd.DataFrame({"s1": [1]}), STRUCTURE)


def test_equal_weights_give_mean_of_dimension_means():
    structure = Structure((Dimension("a", 1.0, ("x", "y")), Dimension("b", 1.0, ("z",))))
    assert respondent_index({"x": 10, "y": 6, "z": 4}, structure) == pytest.approx(6.0)


def test_vectorised_speed_smoke():
    # Not a timing assertion on CI hardware: a generous bound that catches accidental Python loops.
    structure = Structure(tuple(Dimension(f"d{i}", 1.0, tuple(f"q{i}_{j}" for j in range(3))) for i in range(7)))
    rng = np.random.default_rng(0)
    answers = rng.integers(1, 11, size=(200_000, 21)).astype(float)
    answers[rng.random(answers.shape) < 0.1] = np.nan
    start = time.perf_counter()
    result = respondent_indices(answers, structure)
    assert time.perf_counter() - start < 5.0
    assert result.index.shape == (200_000,)
