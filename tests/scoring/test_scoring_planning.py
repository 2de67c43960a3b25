"""Planning: sample sizes from statsmodels' power analysis, and the design comparison."""

import pytest
from statsmodels.stats.power import TTestIndPower

from scoring.planning import design_advice, sample_size_per_unit


def test_equal_groups_match_cohen_table():
    # Cohen (1988) Table 2.4.1: d = 0.25, two-sided alpha .05, power .80 -> 253 per group.
    assert sample_size_per_unit(0.3, 1.2, 0.8, 0.05, consultant_n=None) == 253


@pytest.mark.parametrize(("difference", "consultant_n"), [(0.3, 380), (0.5, 380), (0.8, 100)])
def test_unequal_groups_is_smallest_n_reaching_power(difference, consultant_n):
    n = sample_size_per_unit(difference, 1.2, 0.8, 0.05, consultant_n)
    power = TTestIndPower().power
    effect = difference / 1.2
    assert power(effect, nobs1=n, alpha=0.05, ratio=consultant_n / n) >= 0.8
    assert power(effect, nobs1=n - 1, alpha=0.05, ratio=consultant_n / (n - 1)) < 0.8


def test_unreachable_power_gives_none_and_bad_input_is_explained():
    assert sample_size_per_unit(0.1, 1.2, 0.8, 0.05, consultant_n=380) is None
    with pytest.raises(ValueError, match="positive"):
        sample_size_per_unit(-1)


def test_design_advice_small():
    advice = design_advice(budget_per_unit=60, raters_options=(2, 3), n_units=15, replicates=1, seed=1)
    assert [r.raters_per_unit for r in advice.rows] == [2, 3]
    assert [r.quota for r in advice.rows] == [30, 20]
    assert advice.recommended_k in (2, 3)
    table = advice.table()
    assert "(recommended)" in table and "oracle recall" in table.splitlines()[0]
