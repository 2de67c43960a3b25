"""A small-replicate version of the simulation study (the full one is `python -m scoring.simulate`)."""

import pytest

from scoring.simulate import SCENARIOS, cyclic_assignment, evaluate, main


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
    assert out.startswith("| scenario |") and "| null | 1 |" in out
