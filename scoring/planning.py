"""Planning: interviews needed per unit, and how many auditing units per unit a fixed budget should buy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import optimize
from statsmodels.stats.power import TTestIndPower

__all__ = ["sample_size_per_unit", "DesignRow", "DesignAdvice", "design_advice"]


def sample_size_per_unit(
    difference: float = 0.3, sd: float = 1.2, power: float = 0.8, alpha: float = 0.05, consultant_n: int | None = 380
) -> int | None:
    """Cross interviews per unit to detect `difference` against a consultant sample of `consultant_n` (two-sided t-test).

    Uses statsmodels' TTestIndPower with ratio = consultant_n / n; None when even unlimited cross interviews
    cannot reach the power because the consultant sample itself is too small.
    """
    if difference <= 0 or sd <= 0 or not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError("difference and sd must be positive; power and alpha must lie between 0 and 1")
    effect = difference / sd
    analysis = TTestIndPower()
    if consultant_n is None:
        n = analysis.solve_power(effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=1.0)
        return int(math.ceil(float(n)))

    def gap(n1: float) -> float:
        value = float(analysis.power(effect_size=effect, nobs1=n1, alpha=alpha, ratio=consultant_n / n1))
        # The noncentral t tail returns NaN only when power has saturated at 1; treat it so.
        return (value if math.isfinite(value) else 1.0) - power

    upper = 20000.0  # more cross interviews than this per unit is no plan
    if not gap(upper) >= 0:
        return None
    if gap(2.0) >= 0:
        return 2
    n1 = optimize.brentq(gap, 2.0, upper, xtol=1e-6)
    return int(math.ceil(n1 - 1e-9))


@dataclass(frozen=True)
class DesignRow:
    """Simulated operating characteristics of one design (auditing units per unit, interviews per assignment)."""

    raters_per_unit: int
    quota: int
    recall: float | None
    false_flag_rate: float
    consistent_rate: float
    auditor_recall: float | None


@dataclass(frozen=True)
class DesignAdvice:
    """Designs compared by simulation and the recommended number of auditing units per unit."""

    rows: tuple[DesignRow, ...]
    recommended_k: int
    budget_per_unit: int
    replicates: int


def design_advice(
    budget_per_unit: int = 60,
    raters_options: Sequence[int] = (2, 3, 4),
    n_units: int = 27,
    replicates: int = 50,
    seed: int = 2017,
    scenario_name: str = "planted",
) -> DesignAdvice:
    """Compare k auditing units per unit at a fixed cross-interview budget by simulation; recommend the best k."""
    from .simulate import SCENARIOS, evaluate

    if budget_per_unit < 2:
        raise ValueError("budget_per_unit must allow at least 2 cross interviews per unit")
    base = replace(SCENARIOS[scenario_name], n_units=n_units)
    rows = []
    for k in raters_options:
        quota = budget_per_unit // k
        if quota < 1 or k >= n_units // 2:
            continue
        m = evaluate(replace(base, raters_per_unit=k), replicates=replicates, seed=seed, quota=quota)
        rows.append(DesignRow(k, quota, m.recall, m.false_flag_rate, m.consistent_rate, m.rater_recall))
    if not rows:
        raise ValueError("no feasible design: lower raters_options or raise the budget")
    acceptable = [r for r in rows if r.false_flag_rate <= 0.05] or rows
    best = max(acceptable, key=lambda r: ((r.recall or 0.0) + (r.auditor_recall or 0.0), -r.raters_per_unit))
    return DesignAdvice(tuple(rows), best.raters_per_unit, budget_per_unit, replicates)
