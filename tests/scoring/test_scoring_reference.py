"""The reconciliation reproduces outputs stored from the reference implementation, case by case.

`data/reconcile_reference.json` was written by `python tests/scoring/test_scoring_reference.py` with the straightforward
implementation (a dense GLS refit per unit and per round, numerical-gradient REML from a grid of starts); the fast
path must reproduce it to numerical tolerance.  Regenerate only when the model itself changes on purpose.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import _model, reconcile
from scoring.reconciliation import (Reconciliation, _build_cells, _clean_cross, _consultant_scores, _freed_design,
                                    _unit_test, _unit_tests)
from scoring.simulate import SCENARIOS, simulate_campaign

REFERENCE = Path(__file__).with_name("data") / "reconcile_reference.json"
SMALL = replace(SCENARIOS["planted"], n_units=9, consultant_n=60, cross_per_unit=(16, 24), n_inconsistent=1,
                n_lenient=1)


def _one_rater(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], dict]:
    camp = simulate_campaign(SMALL, np.random.default_rng(seed))
    cross = camp.cross.assign(rater="u00")
    cross = cross.loc[cross.ratee != "u00"]
    return camp.consultant, cross, camp.units, {}


def _simulated(name: str, seed: int, **options: object):  # type: ignore[no-untyped-def]
    def build() -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], dict]:
        scenario = SMALL if name == "small" else SCENARIOS[name]
        camp = simulate_campaign(scenario, np.random.default_rng(seed))
        return camp.consultant, camp.cross, camp.units, dict(options)
    return build


def _lone_auditor(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], dict]:
    camp = simulate_campaign(SMALL, np.random.default_rng(seed))
    extra = pd.DataFrame({"rater": ["newcomer"] * 3, "ratee": ["u01"] * 3, "index": [9.0, 8.5, 9.5]})
    return camp.consultant, pd.concat([camp.cross, extra], ignore_index=True), camp.units, {}


CASES = {
    "planted-1": _simulated("planted", 1),
    "planted-7": _simulated("planted", 7),
    "lenient-2": _simulated("lenient", 2),
    "inconsistent-3": _simulated("inconsistent", 3),
    "null-4": _simulated("null", 4),
    "planted-k3-5": _simulated("planted-k3", 5),
    "planted-per-assignment-6": _simulated("planted-per-assignment", 6),
    "planted-1-one-pass": _simulated("planted", 1, robust=False),
    "planted-1-margin-0.5": _simulated("planted", 1, margin=0.5, alpha=0.1),
    "small-8": _simulated("small", 8),
    "small-9": _simulated("small", 9),
    "small-one-rater-10": lambda: _one_rater(10),
    "small-lone-auditor-11": lambda: _lone_auditor(11),
}


def summarise(result: Reconciliation) -> dict:
    """Every number, status and code of a reconciliation as plain JSON values."""
    units = [{k: v for k, v in vars(u).items() if k not in ("reason", "reason_vi")} for u in result.units]
    for u in units:
        u["auditing_units"] = list(u["auditing_units"])
    return {
        "units": units,
        "raters": [{k: v for k, v in vars(r).items()} for r in result.raters],
        "offset": vars(result.offset),
        "residual_sd": result.residual_sd,
        "discrepancy_sd": result.discrepancy_sd,
        "leniency_sd": result.leniency_sd,
        "rounds": result.rounds,
    }


def run(name: str) -> dict:
    """Reconcile one stored case."""
    consultant, cross, units, options = CASES[name]()
    return summarise(reconcile(consultant, cross, units=units, **options))


# Variance components are optimiser output: equal to the reference within the optimiser's tolerance, and every
# statistic derived from them within a correspondingly small margin.
TOLERANCE = dict(rel=1e-4, abs=1e-5)


def _assert_same(ours: object, ref: object, where: str) -> None:
    if isinstance(ref, float) and not isinstance(ref, bool):
        assert isinstance(ours, float), where
        assert ours == pytest.approx(ref, **TOLERANCE), where
    elif isinstance(ref, dict):
        assert isinstance(ours, dict) and ours.keys() == ref.keys(), where
        for key in ref:
            _assert_same(ours[key], ref[key], f"{where}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), where
        for i, (a, b) in enumerate(zip(ours, ref)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == ref, where


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_reconciliation_matches_the_reference_implementation(name, reference):
    ours = json.loads(json.dumps(run(name)))
    _assert_same(ours, reference[name], name)


def test_reference_comparison_can_fail(reference):
    ours = json.loads(json.dumps(run("small-8")))
    ours["units"][0]["difference"] += 1e-3
    with pytest.raises(AssertionError):
        _assert_same(ours, reference["small-8"], "small-8")


def _cells(name: str, seed: int) -> _model.Cells:
    camp = simulate_campaign(SCENARIOS[name], np.random.default_rng(seed))
    notes: list[str] = []
    cons = _consultant_scores(camp.consultant, None, notes, 0.95)
    cells = _build_cells(_clean_cross(camp.cross, notes), list(camp.units), cons)
    assert cells is not None
    return cells


@pytest.mark.parametrize(
    ("name", "seed", "freed", "fixed"),
    [
        ("planted", 1, (), ()),
        ("planted", 1, (4, 17), (9,)),
        ("planted-k3", 2, (0,), (3, 20)),
        ("null", 3, (), (5,)),
        # Auditing unit 0 scores units 1 and 3: with 3 freed, testing unit 1 drops its fixed leniency (direct refit).
        ("planted", 4, (3,), (0,)),
    ],
)
def test_rank_one_unit_tests_equal_direct_refits(name, seed, freed, fixed):
    cells = _cells(name, seed)
    x = _freed_design(cells, sorted(freed), sorted(fixed))
    comps = _model.fit_crossed_components(cells, x)
    assert comps.tau2 > 0 or comps.lam2 > 0 or name == "null"
    fast = _unit_tests(cells, frozenset(freed), comps, frozenset(fixed))
    for j, ours in enumerate(fast):
        direct = _unit_test(cells, j, frozenset(freed), comps, frozenset(fixed))
        assert (ours is None) == (direct is None)
        if direct is None:
            continue
        assert ours.difference == pytest.approx(direct.difference, rel=1e-9, abs=1e-12)
        assert ours.se == pytest.approx(direct.se, rel=1e-9)
        assert ours.offset == pytest.approx(direct.offset, rel=1e-9, abs=1e-12)
        assert ours.leniency.keys() == direct.leniency.keys()
        for rater, value in direct.leniency.items():
            assert ours.leniency[rater] == pytest.approx(value, rel=1e-8, abs=1e-11)
        assert ours.unadjusted == direct.unadjusted
        assert (ours.disagree_p is None) == (direct.disagree_p is None)
        if direct.disagree_p is not None:
            assert ours.disagree_p == pytest.approx(direct.disagree_p, rel=1e-7, abs=1e-12)


def test_reml_gradient_matches_finite_differences():
    cells = _cells("planted", 5)
    x = _freed_design(cells, [2, 7], [4])
    for point in [(1.4, 0.05, 0.03), (1.2, 0.0, 0.2), (2.0, 0.3, 0.0)]:
        value, grad = _model.crossed_loglik_grad(cells, x, *point)
        assert value == pytest.approx(_model.crossed_loglik(cells, x, *point), rel=1e-12)
        for k in range(3):
            up, down = list(point), list(point)
            up[k] += 1e-6
            down[k] -= 1e-6
            numeric = (_model.crossed_loglik(cells, x, *up) - _model.crossed_loglik(cells, x, *down)) / 2e-6
            assert grad[k] == pytest.approx(numeric, rel=1e-5, abs=1e-4)


def main() -> int:
    out = {name: run(name) for name in CASES}
    REFERENCE.write_text(json.dumps(out, indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(out)} cases to {REFERENCE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
