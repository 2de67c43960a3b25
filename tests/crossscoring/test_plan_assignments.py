"""The assignment generator, as properties over 3–60 units and k = 1–4 (hypothesis), and worked cases."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.services.assignments import AssignmentError, max_raters_per_unit, plan_assignments


def codes(n: int) -> list[str]:
    return [f"unit-{i:02d}" for i in range(n)]


possible = st.integers(min_value=3, max_value=60).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=1, max_value=min(4, (n - 1) // 2)))
)
impossible = st.integers(min_value=1, max_value=4).flatmap(
    lambda k: st.tuples(st.integers(min_value=0, max_value=2 * k), st.just(k))
)


@settings(max_examples=150, deadline=None)
@given(request=possible, seed=st.integers(min_value=0, max_value=2**32))
def test_every_possible_request_gives_a_balanced_design(request, seed):
    n, k = request
    units = codes(n)
    pairs = plan_assignments(units, k, seed=seed)
    assert len(pairs) == n * k
    assert len(set(pairs)) == len(pairs), "a pair appears twice"
    assert all(rater != ratee for rater, ratee in pairs), "a unit scores itself"
    as_set = set(pairs)
    assert not any((ratee, rater) in as_set for rater, ratee in pairs), "a reciprocal pair"
    scored = Counter(ratee for _, ratee in pairs)
    scoring = Counter(rater for rater, _ in pairs)
    assert set(scored) == set(units) and set(scored.values()) == {k}, "each unit scored exactly k times"
    assert set(scoring) == set(units) and set(scoring.values()) == {k}, "each auditing unit scores exactly k units"


@settings(max_examples=60, deadline=None)
@given(request=possible, seed=st.integers(min_value=0, max_value=2**32))
def test_same_seed_same_design(request, seed):
    n, k = request
    units = codes(n)
    first = plan_assignments(units, k, seed=seed)
    # The order units are given in does not matter either.
    assert plan_assignments(list(reversed(units)), k, seed=seed) == first


@settings(max_examples=60, deadline=None)
@given(request=impossible, seed=st.integers(min_value=0, max_value=1000))
def test_impossible_requests_are_refused_with_the_reason(request, seed):
    n, k = request
    with pytest.raises(AssignmentError, match="at least") as caught:
        plan_assignments(codes(n), k, seed=seed)
    assert str(2 * k + 1) in str(caught.value)


@pytest.mark.parametrize(("n", "most"), [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (6, 2), (27, 13), (60, 29)])
def test_bound_is_half_of_n_minus_one(n, most):
    assert max_raters_per_unit(n) == most


def test_bound_is_tight_for_27_units():
    """k = 13 fills every unordered pair of 27 units exactly once (a regular tournament); 14 is refused."""
    pairs = plan_assignments(codes(27), 13, seed=1)
    assert len({frozenset(p) for p in pairs}) == 27 * 26 // 2
    with pytest.raises(AssignmentError):
        plan_assignments(codes(27), 14, seed=1)


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_bad_k_is_refused(k):
    with pytest.raises(AssignmentError):
        plan_assignments(codes(9), k, seed=1)


def test_duplicate_units_are_refused():
    with pytest.raises(AssignmentError, match="twice"):
        plan_assignments(["a", "b", "c", "a"], 1, seed=1)


def test_different_seeds_give_different_designs():
    designs = {tuple(plan_assignments(codes(27), 2, seed=seed)) for seed in range(5)}
    assert len(designs) > 1


@pytest.mark.parametrize(("n", "k"), [(27, 2), (27, 3), (11, 2), (60, 4)])
def test_last_campaigns_pairs_are_avoided(n, k):
    last = plan_assignments(codes(n), k, seed=2016)
    this = plan_assignments(codes(n), k, seed=2017, avoid=last)
    assert not set(this) & set(last)


def test_overlap_is_minimised_when_it_cannot_be_zero():
    """Five units with k = 2 use every unordered pair; avoiding last year means reversing each pair."""
    last = plan_assignments(codes(5), 2, seed=3)
    this = plan_assignments(codes(5), 2, seed=4, avoid=last)
    assert not set(this) & set(last)
    assert {(b, a) for a, b in this} == set(last)


@settings(max_examples=60, deadline=None)
@given(
    request=possible, seed=st.integers(min_value=0, max_value=2**32), last_seed=st.integers(min_value=0, max_value=99)
)
def test_avoiding_last_year_never_makes_the_overlap_worse(request, seed, last_seed):
    n, k = request
    last = set(plan_assignments(codes(n), k, seed=last_seed))
    careless = plan_assignments(codes(n), k, seed=seed)
    careful = plan_assignments(codes(n), k, seed=seed, avoid=last)
    assert len(set(careful) & last) <= len(set(careless) & last)
    # Still a valid design.
    assert all(rater != ratee for rater, ratee in careful)
    assert Counter(r for r, _ in careful) == Counter(e for _, e in careful) == {u: k for u in codes(n)}
