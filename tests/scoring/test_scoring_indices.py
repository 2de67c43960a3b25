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


def _random_structure(rng: np.random.Generator) -> Structure:
    dimensions = []
    for d in range(int(rng.integers(1, 13))):
        items = tuple(f"d{d}i{i}" for i in range(int(rng.integers(1, 7))))
        weight = float(rng.choice([1.0, 2.0, 0.5, 1.3, float(rng.uniform(0.1, 5.0))]))
        dimensions.append(Dimension(f"d{d}", weight, items))
    return Structure(dimensions=tuple(dimensions))


def _random_answers(rng: np.random.Generator, structure: Structure) -> dict[str, int | float | None]:
    """Whole numbers 0..100, blanks (missing key or None), and now and then NaN or an infinity."""
    blank_share = float(rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]))
    answers: dict[str, int | float | None] = {}
    for code in structure.item_codes:
        draw = rng.random()
        if draw < blank_share:
            if rng.random() < 0.5:
                answers[code] = None
            continue
        if draw > 0.98:
            answers[code] = float(rng.choice([NAN, math.inf, -math.inf]))
        else:
            answers[code] = int(rng.integers(0, 11)) if rng.random() < 0.8 else int(rng.integers(0, 101))
    return answers


def test_single_respondent_scores_equal_the_vectorised_ones_bit_for_bit():
    from scoring import score_respondent

    rng = np.random.default_rng(20170)
    checked = incomplete = 0
    for _ in range(3000):
        structure = _random_structure(rng)
        answers = _random_answers(rng, structure)
        row = np.array(
            [[NAN if answers.get(code) is None else float(answers[code]) for code in structure.item_codes]]
        )
        expected = respondent_indices(row, structure)
        single = score_respondent(answers, structure)
        assert single.answered_dimensions == int(expected.answered_dimensions[0])
        scores = expected.dimension_scores[0]
        assert len(single.dimension_scores) == len(scores)
        for mine, theirs in zip(single.dimension_scores, scores, strict=True):
            assert (math.isnan(mine) and math.isnan(theirs)) or mine == theirs  # exact, not approximate
        if bool(expected.complete[0]):
            assert single.index is not None and single.index == float(expected.index[0])
        else:
            assert single.index is None
            incomplete += 1
        assert single.index == respondent_index(answers, structure)
        checked += 1
    assert checked == 3000 and 100 < incomplete < 2900  # both complete and incomplete respondents were drawn


def test_single_respondent_on_the_documented_example():
    from scoring import score_respondent

    answers = {"s1": 6, "s2": 8, "i1": 8, "i2": 8, "i3": 8, "b1": 9, "c1": 5, "c2": None}
    single = score_respondent(answers, STRUCTURE)
    assert single.dimension_scores == (7.0, 8.0, 9.0, 5.0)
    assert single.answered_dimensions == 4
    assert single.index == (7 + 8 + 18 + 5) / 5
    assert score_respondent({"s1": 6}, STRUCTURE).index is None
