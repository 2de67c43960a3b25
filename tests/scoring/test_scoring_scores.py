"""Unit scores from sufficient statistics."""

import math

import numpy as np
import pytest
from scipy import stats

from scoring import UnitStats, poststratified_score, unit_score, unit_scores


def test_from_sums_matches_raw_values_and_scipy_interval():
    values = np.array([7.0, 8.0, 6.5, 9.0, 7.5])
    s = UnitStats.from_sums(len(values), values.sum(), (values**2).sum())
    assert s.mean == pytest.approx(values.mean()) and s.sd == pytest.approx(values.std(ddof=1))
    score = unit_score(s)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (score.ci_low, score.ci_high) == pytest.approx((low, high))


@pytest.mark.parametrize(
    ("n", "total", "total_sq"),
    [(0, 0.0, 0.0), (1, 7.0, 49.0), (3, 21.0, 147.0), (None, None, None)],
)
def test_degenerate_statistics_never_give_nan(n, total, total_sq):
    score = unit_score(UnitStats.from_sums(n, total, total_sq))
    for value in (score.mean, score.ci_low, score.ci_high, score.sd, score.se):
        assert value is None or math.isfinite(value)


def test_poststratified_score_formula():
    groups = {"household": UnitStats(300, 7.5, 1.2), "business": UnitStats(80, 6.5, 1.5)}
    shares = {"household": 0.9, "business": 0.1}
    score = poststratified_score(groups, shares)
    assert score.mean == pytest.approx(0.9 * 7.5 + 0.1 * 6.5)
    a = [0.81 * 1.44 / 300, 0.01 * 2.25 / 80]
    assert score.se == pytest.approx(math.sqrt(sum(a)))
    df = sum(a) ** 2 / (a[0] ** 2 / 299 + a[1] ** 2 / 79)
    assert score.df == pytest.approx(df)
    assert score.ci_high - score.mean == pytest.approx(stats.t.ppf(0.975, df) * score.se)


def test_poststratification_falls_back_when_a_group_is_empty():
    groups = {"household": UnitStats(300, 7.5, 1.2), "business": UnitStats(1, 6.5, None)}
    score = unit_scores(groups, {"household": 0.9, "business": 0.1})
    assert score.n == 301 and "unweighted" in score.note
    pooled = unit_scores(groups)
    assert pooled.mean == pytest.approx((300 * 7.5 + 6.5) / 301)
