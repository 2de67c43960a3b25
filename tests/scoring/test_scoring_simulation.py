"""A small-replicate version of the simulation study (the full one is `python -m scoring.simulate`)."""

import numpy as np
import pytest

from scoring.simulate import SCENARIOS, cyclic_assignment, evaluate, main, oracle_flags, simulate_campaign


@pytest.mark.parametrize(("n", "k"), [(27, 2), (27, 3), (27, 4), (10, 3)])
def test_assignment_is_valid(n, k):
    pairs = cyclic_assignment(n, k)
    assert all(r != j for r, j in pairs)
    assert not {(j, r) for r, j in pairs} & set(pairs)
    for unit in range(n):
        assert sum(j == unit for _, j in pairs) == k
        assert sum(r == unit for r, _ in pairs) == k


def test_planted_differences_found_without_lenient_auditors():
    m = evaluate(SCENARIOS["inconsistent"], replicates=4, seed=1)
    assert m.recall >= 0.8
    assert m.false_flag_rate <= 0.05
    # The oracle knows every leniency and the offset; without lenient auditors the method should come close to it.
    assert m.oracle_recall is not None and m.recall >= m.oracle_recall - 0.15
    assert m.oracle_false_flag_rate <= 0.05


def test_oracle_finds_large_differences_and_ignores_leniency_and_offset():
    scenario = SCENARIOS["planted"]
    rng = np.random.default_rng(11)
    hits = planted = false = nulls = 0
    for _ in range(3):
        camp = simulate_campaign(scenario, rng)
        flags = oracle_flags(camp, scenario.margin, scenario.alpha)
        is_planted = camp.inconsistency != 0
        hits += int(flags[is_planted].sum())
        planted += int(is_planted.sum())
        false += int(flags[~is_planted].sum())
        nulls += int((~is_planted).sum())
    assert hits >= planted - 2
    assert false / nulls <= 0.05


@pytest.mark.parametrize(("name", "k", "low", "high"), [("planted-per-assignment", 2, 60, 120),
                                                         ("inconsistent-k3", 3, 30, 60)])
def test_design_scenarios(name, k, low, high):
    scenario = SCENARIOS[name]
    camp = simulate_campaign(scenario, np.random.default_rng(4))
    per_unit = camp.cross.groupby("ratee")["index"].size()
    raters = camp.cross.groupby("ratee")["rater"].nunique()
    assert (raters == k).all()
    # Per-unit totals are split evenly between the k auditing units, so rounding can move them by < k.
    assert per_unit.min() >= low - k and per_unit.max() <= high + k


def test_lenient_auditors_found_and_fewer_false_flags_than_naive():
    m = evaluate(SCENARIOS["lenient"], replicates=4, seed=2)
    assert m.rater_recall >= 0.75
    assert m.false_flag_rate <= 0.05
    assert m.naive_false_flag_rate >= m.false_flag_rate + 0.1
    assert m.leniency_correlation >= 0.7


def test_planted_scenario_keeps_false_flags_low():
    m = evaluate(SCENARIOS["planted"], replicates=2, seed=3)
    assert m.false_flag_rate <= 0.05
    assert m.recall >= 0.5  # lenient auditors on a unit cost power; see docs/scoring.md


def test_cli_prints_table(capsys):
    assert main(["--replicates", "1", "--scenario", "null", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| scenario |") and "| null | k=2, 30-60/unit | 1 |" in out
    assert "oracle recall" in out.splitlines()[0]


def test_cli_runs_several_named_scenarios(capsys):
    assert main(["--replicates", "1", "--scenario", "null", "lenient", "--seed", "5"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "k=2" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| null", "| lenient"]
