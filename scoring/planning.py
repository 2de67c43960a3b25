"""Planning: interviews needed per unit, and how many auditing units per unit a fixed budget should buy."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import optimize

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
    # Imported here: statsmodels is large, and only assignment planning needs it.
    from statsmodels.stats.power import TTestIndPower

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
    oracle_recall: float | None = None
    auditor_false_flag_rate: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class DesignAdvice:
    """Designs compared by simulation and the recommended number of auditing units per unit."""

    rows: tuple[DesignRow, ...]
    recommended_k: int
    budget_per_unit: int
    replicates: int

    def table(self) -> str:
        """The comparison as a Markdown table (recommended design marked)."""

        def f(v: float | None) -> str:
            return "–" if v is None else f"{v:.3f}"

        lines = ["| k | quota/assignment | recall | oracle recall | false flags | consistent | auditor recall | "
                 "auditor false flags |", "|" + "---|" * 8]
        for r in self.rows:
            mark = " (recommended)" if r.raters_per_unit == self.recommended_k else ""
            lines.append(f"| {r.raters_per_unit}{mark} | {r.quota} | {f(r.recall)} | {f(r.oracle_recall)} | "
                         f"{f(r.false_flag_rate)} | {f(r.consistent_rate)} | {f(r.auditor_recall)} | "
                         f"{f(r.auditor_false_flag_rate)} |")
        return "\n".join(lines)


def design_advice(
    budget_per_unit: int = 60,
    raters_options: Sequence[int] = (2, 3, 4),
    n_units: int = 27,
    replicates: int = 50,
    seed: int = 2017,
    scenario_name: str = "planted",
) -> DesignAdvice:
    """Compare k auditing units per unit at a fixed cross-interview budget by simulation; recommend the best k.

    Cost: about 0.35 s of CPU per simulated campaign and design (k = 2; a little more for k = 3, 4), so a call with
    `replicates=1` over k = 2, 3, 4 takes about 1 s on an idle core.  Results are deterministic for a given seed and
    cached in the process, so a web page that repeats the same call pays once.  With 1-2 replicates the recall
    figures are only indicative (each campaign plants 3 inconsistent units); docs/scoring.md has the table for
    budgets 60 and 90 at 50 replicates.
    """
    if budget_per_unit < 2:
        raise ValueError("budget_per_unit must allow at least 2 cross interviews per unit")
    return _design_advice(int(budget_per_unit), tuple(int(k) for k in raters_options), int(n_units), int(replicates),
                          int(seed), str(scenario_name))


@functools.lru_cache(maxsize=32)
def _design_advice(
    budget_per_unit: int, raters_options: tuple[int, ...], n_units: int, replicates: int, seed: int, scenario_name: str
) -> DesignAdvice:
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
        rows.append(DesignRow(k, quota, m.recall, m.false_flag_rate, m.consistent_rate, m.rater_recall,
                              m.oracle_recall, m.rater_false_flag_rate, m.seconds_per_campaign * replicates))
    if not rows:
        raise ValueError("no feasible design: lower raters_options or raise the budget")
    acceptable = [r for r in rows if r.false_flag_rate <= 0.05] or rows
    best = max(acceptable, key=lambda r: ((r.recall or 0.0) + (r.auditor_recall or 0.0), -r.raters_per_unit))
    return DesignAdvice(tuple(rows), best.raters_per_unit, budget_per_unit, replicates)
