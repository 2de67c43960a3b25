"""Reconciliation: contract, degenerate input, invariances, and the model against statsmodels MixedLM."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import RATER_COLUMNS, UNIT_COLUMNS, reconcile
from scoring import _model
from scoring.reconciliation import _build_cells, _clean_cross, _consultant_scores
from scoring.simulate import SCENARIOS, simulate_campaign

SMALL = replace(SCENARIOS["planted"], n_units=9, consultant_n=60, cross_per_unit=(16, 24), n_inconsistent=1,
                n_lenient=1)


def _campaign(seed, scenario=SMALL):
    return simulate_campaign(scenario, np.random.default_rng(seed))


def _assert_clean(result):
    for frame in (result.units_frame(), result.raters_frame()):
        for value in frame.to_numpy().ravel():
            if isinstance(value, float):
                assert math.isfinite(value)
    for unit in result.units:
        assert unit.status in ("inconsistent", "consistent", "inconclusive")
        assert unit.reason and unit.reason_vi and unit.reason_code
    o = result.offset
    for value in (o.estimate, o.se, o.ci_low, o.ci_high, o.p_value):
        assert value is None or math.isfinite(value)


def test_frames_follow_the_contract():
    camp = _campaign(1, SCENARIOS["planted"])
    result = reconcile(camp.consultant, camp.cross, units=camp.units)
    assert tuple(result.units_frame().columns) == UNIT_COLUMNS
    assert tuple(result.raters_frame().columns) == RATER_COLUMNS
    assert len(result.units) == 27 and len(result.raters) == 27
    ranks = sorted(u.rank for u in result.units)
    assert ranks == list(range(1, 28))
    assert "leniency" in result.method
    _assert_clean(result)


def test_offset_alone_makes_no_unit_inconsistent():
    scenario = replace(SCENARIOS["null"], offset=0.6)
    camp = _campaign(2, scenario)
    result = reconcile(camp.consultant, camp.cross, units=camp.units)
    assert result.offset.estimate == pytest.approx(0.6, abs=0.15)
    assert not [u for u in result.units if u.status == "inconsistent"]


def test_planted_difference_is_found_and_explained():
    scenario = replace(SCENARIOS["inconsistent"], n_inconsistent=1, inconsistency=1.5)
    camp = _campaign(3, scenario)
    result = reconcile(camp.consultant, camp.cross, units=camp.units)
    planted = camp.units[int(np.flatnonzero(camp.inconsistency)[0])]
    unit = result.unit(planted)
    assert unit.status == "inconsistent"
    assert unit.reason.startswith("Cross-scores 1.") and "above the consultant" in unit.reason
    assert "adjusted p" in unit.reason and "p hiệu chỉnh" in unit.reason_vi
    assert unit.reconciled_score == unit.consultant_score


def test_lenient_auditor_is_flagged():
    scenario = replace(SCENARIOS["lenient"], n_lenient=1, leniency=1.5)
    camp = _campaign(4, scenario)
    result = reconcile(camp.consultant, camp.cross, units=camp.units)
    lenient = camp.units[int(np.flatnonzero(camp.leniency)[0])]
    flagged = [r.rater_unit for r in result.raters if r.flagged]
    assert flagged == [lenient]


def test_units_missing_from_data_get_a_row():
    camp = _campaign(5)
    result = reconcile(camp.consultant, camp.cross, units=(*camp.units, "ghost"))
    ghost = result.unit("ghost")
    assert ghost.status == "inconclusive" and ghost.reason_code == "no_data" and ghost.rank is None
    assert ghost.reason == "No consultant and no cross data."
    _assert_clean(result)


@pytest.mark.parametrize(
    ("consultant", "cross"),
    [
        (pd.DataFrame(columns=["unit", "n", "mean", "sd"]), pd.DataFrame(columns=["rater", "ratee", "index"])),
        (None, None),
        (pd.DataFrame({"unit": ["a"], "n": [1], "mean": [7.0], "sd": [None]}),
         pd.DataFrame({"rater": ["b"], "ratee": ["a"], "index": [8.0]})),
        (pd.DataFrame({"unit": ["a", "b"], "n": [10, 10], "mean": [7.0, 7.0], "sd": [0.0, 0.0]}),
         pd.DataFrame({"rater": ["b", "a"], "ratee": ["a", "b"], "index": [7.0, 7.0]})),
    ],
)
def test_empty_and_tiny_input_never_crash(consultant, cross):
    result = reconcile(consultant, cross, units=["a", "b", "c"])
    assert [u.status for u in result.units] == ["inconclusive"] * 3
    _assert_clean(result)


def _degenerate(camp, kind):
    consultant, cross = camp.consultant.copy(), camp.cross.copy()
    target = camp.units[0]
    if kind == "one_respondent":
        consultant.loc[consultant.unit == target, ["n", "sd"]] = [1, np.nan]
        code = "consultant_one_respondent"
    elif kind == "zero_variance":
        consultant.loc[consultant.unit == target, "sd"] = 0.0
        code = "consultant_zero_variance"
    elif kind == "no_cross":
        cross = cross.loc[cross.ratee != target]
        code = "no_cross_data"
    else:  # an auditing unit with a single interview, its only one
        lone = "newcomer"
        cross = pd.concat([cross, pd.DataFrame({"rater": [lone], "ratee": [target], "index": [9.0]})])
        code = "leniency_unestimable"
    return consultant, cross, target, code


@pytest.mark.parametrize("kind", ["one_respondent", "zero_variance", "no_cross", "lone_auditor"])
def test_degenerate_units_are_inconclusive_with_reason(kind):
    camp = _campaign(6)
    consultant, cross, target, code = _degenerate(camp, kind)
    result = reconcile(consultant, cross, units=camp.units)
    unit = result.unit(target)
    assert unit.status == "inconclusive"
    assert unit.reason_code == code
    _assert_clean(result)


def _numbers(result):
    return [[getattr(u, c) for c in UNIT_COLUMNS if c not in ("unit_code", "status", "reason", "rank")]
            for u in result.units]


@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shift=st.floats(-3, 3, allow_nan=False))
def test_adding_a_constant_shifts_scores_and_keeps_statuses(seed, shift):
    camp = _campaign(seed)
    base = reconcile(camp.consultant, camp.cross, units=camp.units)
    shifted = reconcile(camp.consultant.assign(mean=camp.consultant["mean"] + shift),
                        camp.cross.assign(index=camp.cross["index"] + shift), units=camp.units)
    assert [u.status for u in base.units] == [u.status for u in shifted.units]
    for a, b in zip(base.units, shifted.units):
        for col in ("consultant_score", "cross_score", "cross_score_adjusted", "reconciled_score"):
            x, y = getattr(a, col), getattr(b, col)
            assert (x is None) == (y is None)
            if x is not None:
                assert y == pytest.approx(x + shift, abs=1e-6)
        assert b.difference == pytest.approx(a.difference, abs=1e-6)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_relabelling_units_permutes_results(seed, perm_seed):
    camp = _campaign(seed)
    codes = list(camp.units)
    new = list(np.random.default_rng(perm_seed).permutation([f"x{i}" for i in range(len(codes))]))
    mapping = dict(zip(codes, new))
    consultant = camp.consultant.assign(unit=camp.consultant["unit"].map(mapping))
    cross = camp.cross.assign(rater=camp.cross["rater"].map(mapping), ratee=camp.cross["ratee"].map(mapping))
    base = reconcile(camp.consultant, camp.cross, units=codes)
    relabelled = reconcile(consultant, cross, units=new)
    for unit in base.units:
        other = relabelled.unit(mapping[unit.unit_code])
        assert other.status == unit.status
        for col in ("difference", "p_value", "reconciled_score", "cross_score_adjusted"):
            x, y = getattr(unit, col), getattr(other, col)
            assert (x is None) == (y is None)
            if x is not None:
                assert y == pytest.approx(x, abs=1e-4)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    drop_units=st.integers(0, 3),
    consultant_n=st.sampled_from([1, 2, 5]),
    keep_rows=st.integers(1, 40),
    constant=st.booleans(),
)
def test_random_degenerate_campaigns_never_produce_nan(seed, drop_units, consultant_n, keep_rows, constant):
    camp = _campaign(seed)
    rng = np.random.default_rng(seed)
    consultant = camp.consultant.copy()
    consultant.loc[: drop_units, "n"] = consultant_n
    if constant:
        consultant.loc[: drop_units, "sd"] = 0.0
    cross = camp.cross.sample(n=min(keep_rows, len(camp.cross)), random_state=int(rng.integers(1 << 31)))
    if constant:
        cross = cross.assign(index=7.0)
    result = reconcile(consultant, cross, units=camp.units)
    _assert_clean(result)


def test_reml_matches_statsmodels_mixedlm():
    # With fixed auditor effects and a random unit intercept our restricted likelihood is MixedLM's; compare the
    # variance components to MixedLM's (Powell: its default L-BFGS stops on the tau^2 = 0 boundary here).
    camp = simulate_campaign(replace(SCENARIOS["planted"], consultant_n=100_000), np.random.default_rng(11))
    notes: list[str] = []
    cons = _consultant_scores(camp.consultant, None, notes, 0.95)
    cells = _build_cells(_clean_cross(camp.cross, notes), list(camp.units), cons)
    rows = camp.cross
    cells = replace(cells, v=np.zeros_like(cells.v))  # MixedLM knows no consultant sampling error
    design = _model.build_design(cells)
    ours = _model.fit_variance_components(cells, design.x)
    z = rows["index"].to_numpy() - rows["ratee"].map(camp.consultant.set_index("unit")["mean"]).to_numpy()
    exog = pd.get_dummies(rows["rater"]).to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.MixedLM(z, exog, groups=rows["ratee"].to_numpy()).fit(reml=True, method=["powell"])
    assert ours.sigma2 == pytest.approx(fit.scale, rel=2e-3)
    assert ours.tau2 == pytest.approx(float(np.asarray(fit.cov_re)[0, 0]), abs=2e-3)
    gls = _model.gls(cells, design, fit.scale, np.full(len(cells.ratees), float(np.asarray(fit.cov_re)[0, 0])))
    assert gls.beta == pytest.approx(np.asarray(fit.fe_params), abs=1e-5)


def test_poststratified_consultant_scores_are_used():
    camp = _campaign(7)
    rows = []
    for rec in camp.consultant.itertuples():
        rows.append({"unit": rec.unit, "customer_group": "household", "n": rec.n, "mean": rec.mean, "sd": rec.sd})
        rows.append({"unit": rec.unit, "customer_group": "business", "n": 30, "mean": rec.mean - 1, "sd": rec.sd})
    consultant = pd.DataFrame(rows)
    result = reconcile(consultant, camp.cross, units=camp.units, shares={"household": 0.8, "business": 0.2})
    first = result.units[0]
    assert first.consultant_score == pytest.approx(camp.consultant["mean"].iloc[0] - 0.2)
    _assert_clean(result)


def test_bad_parameters_are_explained():
    with pytest.raises(ValueError, match="margin"):
        reconcile(None, None, margin=-1)
    with pytest.raises(ValueError, match="column 'index'"):
        reconcile(None, pd.DataFrame({"rater": ["a"], "ratee": ["b"]}))
