"""Validate the reconciliation by simulating campaigns with known truth; `python -m scoring.simulate --help`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from .agreement import benjamini_hochberg
from .reconciliation import reconcile

__all__ = [
    "Scenario",
    "SCENARIOS",
    "BASE_SCENARIOS",
    "DESIGN_SCENARIOS",
    "Campaign",
    "Metrics",
    "cyclic_assignment",
    "simulate_campaign",
    "naive_flags",
    "oracle_flags",
    "evaluate",
    "main",
]


@dataclass(frozen=True)
class Scenario:
    """Parameters of a simulated campaign (defaults: the EVNNPC set-up with planted problems)."""

    name: str = "planted"
    n_units: int = 27
    raters_per_unit: int = 2
    consultant_n: int = 380
    cross_per_unit: tuple[int, int] = (30, 60)
    sd: float = 1.2
    mean_range: tuple[float, float] = (7.0, 8.3)
    n_inconsistent: int = 3
    inconsistency: float = 0.8
    n_lenient: int = 4
    leniency: float = 0.8
    offset: float = 0.3
    margin: float = 0.3
    alpha: float = 0.05


SCENARIOS = {
    # The set-up read as 30-60 cross interviews per scored unit, split between its 2 auditing units.
    "planted": Scenario(),
    "lenient": Scenario(name="lenient", n_inconsistent=0),
    "inconsistent": Scenario(name="inconsistent", n_lenient=0),
    "null": Scenario(name="null", n_inconsistent=0, n_lenient=0),
    # Design variants for HQ.  "per-assignment": 30-60 interviews per (auditing unit, scored unit) assignment, i.e.
    # 60-120 per unit with 2 auditing units (the CLI's default quota is 30 per assignment).
    "planted-per-assignment": Scenario(name="planted-per-assignment", cross_per_unit=(60, 120)),
    "inconsistent-per-assignment": Scenario(name="inconsistent-per-assignment", cross_per_unit=(60, 120),
                                            n_lenient=0),
    # "k3": the same 30-60 interviews per unit spread over 3 auditing units (10-20 each).
    "planted-k3": Scenario(name="planted-k3", raters_per_unit=3),
    "inconsistent-k3": Scenario(name="inconsistent-k3", raters_per_unit=3, n_lenient=0),
}
BASE_SCENARIOS = ("planted", "lenient", "inconsistent", "null")
DESIGN_SCENARIOS = ("planted", "inconsistent", "planted-per-assignment", "inconsistent-per-assignment",
                    "planted-k3", "inconsistent-k3")


def cyclic_assignment(n_units: int, k: int) -> list[tuple[int, int]]:
    """Rater i scores units i+s (mod n) for the first k odd steps s: no self-scoring, no reciprocal pair."""
    steps: list[int] = []
    s = 1
    while len(steps) < k and s < n_units:
        # Reject a step that would make a pair reciprocal (a + b = 0 mod n) or self-scoring.
        if s % n_units and all((s + t) % n_units for t in steps) and (2 * s) % n_units:
            steps.append(s)
        s += 2 if n_units % 2 else 1
    if len(steps) < k:
        raise ValueError(f"cannot give {k} auditing units to each of {n_units} units without reciprocal pairs")
    return [(i, (i + s) % n_units) for i in range(n_units) for s in steps]


@dataclass(frozen=True)
class Campaign:
    """A simulated campaign: the inputs of reconcile plus the planted truth."""

    consultant: pd.DataFrame
    cross: pd.DataFrame
    units: tuple[str, ...]
    inconsistency: np.ndarray  # per unit, planted difference (0 = nothing planted)
    leniency: np.ndarray  # per auditing unit, planted leniency
    offset: float


def simulate_campaign(scenario: Scenario, rng: np.random.Generator, quota: int | None = None) -> Campaign:
    """Simulate consultant respondents (reduced to sufficient statistics) and cross respondents with known truth."""
    n = scenario.n_units
    units = tuple(f"u{i:02d}" for i in range(n))
    mu = rng.uniform(*scenario.mean_range, size=n)
    incons = np.zeros(n)
    chosen = rng.choice(n, size=scenario.n_inconsistent, replace=False)
    incons[chosen] = scenario.inconsistency * np.where(np.arange(chosen.size) % 2 == 0, 1.0, -1.0)
    lenient = np.zeros(n)
    chosen = rng.choice(n, size=scenario.n_lenient, replace=False)
    lenient[chosen] = scenario.leniency * np.where(np.arange(chosen.size) % 2 == 0, 1.0, -1.0)
    cons = rng.normal(mu[:, None], scenario.sd, size=(n, scenario.consultant_n))
    consultant = pd.DataFrame({"unit": units, "n": scenario.consultant_n, "mean": cons.mean(axis=1),
                               "sd": cons.std(axis=1, ddof=1)})
    pairs = cyclic_assignment(n, scenario.raters_per_unit)
    k = scenario.raters_per_unit
    per_unit = rng.integers(scenario.cross_per_unit[0], scenario.cross_per_unit[1] + 1, size=n)
    raters, ratees, values = [], [], []
    for r, j in pairs:
        m = quota if quota is not None else max(int(round(per_unit[j] / k)), 1)
        y = rng.normal(mu[j] + scenario.offset + lenient[r] + incons[j], scenario.sd, size=m)
        raters += [units[r]] * m
        ratees += [units[j]] * m
        values.append(y)
    cross = pd.DataFrame({"rater": raters, "ratee": ratees, "index": np.concatenate(values)})
    return Campaign(consultant, cross, units, incons, lenient, scenario.offset)


def naive_flags(campaign: Campaign, margin: float = 0.3, alpha: float = 0.05) -> np.ndarray:
    """Per-unit Welch t-test of raw cross vs consultant (no leniency, no offset), BH-adjusted, same margin rule."""
    g = campaign.cross.groupby("ratee")["index"].agg(["count", "mean", "std"])
    c = campaign.consultant.set_index("unit")
    p, diff = [], []
    for u in campaign.units:
        res = stats.ttest_ind_from_stats(g.loc[u, "mean"], g.loc[u, "std"], g.loc[u, "count"],
                                         c.loc[u, "mean"], c.loc[u, "sd"], c.loc[u, "n"], equal_var=False)
        p.append(float(res.pvalue))
        diff.append(float(g.loc[u, "mean"] - c.loc[u, "mean"]))
    bh = benjamini_hochberg(p, alpha)
    return np.array([bool(r) and abs(d) >= margin for r, d in zip(bh.rejected, diff)])


def oracle_flags(campaign: Campaign, margin: float = 0.3, alpha: float = 0.05) -> np.ndarray:
    """The per-unit test with the true leniencies and the true offset known: the bound no estimator can beat.

    Each cross response has its auditing unit's planted leniency and the campaign offset subtracted; what remains
    is only the consultant's and the auditors' sampling error.  Welch t-test from sufficient statistics
    (`scipy.stats.ttest_ind_from_stats`), BH across units, the same margin rule as `reconcile`.
    """
    index = {u: i for i, u in enumerate(campaign.units)}
    rater_len = campaign.cross["rater"].map(index).to_numpy()
    adjusted = campaign.cross["index"].to_numpy() - campaign.leniency[rater_len] - campaign.offset
    g = pd.DataFrame({"ratee": campaign.cross["ratee"], "z": adjusted}).groupby("ratee")["z"].agg(
        ["count", "mean", "std"])
    c = campaign.consultant.set_index("unit")
    p, diff = [], []
    for u in campaign.units:
        res = stats.ttest_ind_from_stats(g.loc[u, "mean"], g.loc[u, "std"], g.loc[u, "count"],
                                         c.loc[u, "mean"], c.loc[u, "sd"], c.loc[u, "n"], equal_var=False)
        p.append(float(res.pvalue))
        diff.append(float(g.loc[u, "mean"] - c.loc[u, "mean"]))
    bh = benjamini_hochberg(p, alpha)
    return np.array([bool(r) and abs(d) >= margin for r, d in zip(bh.rejected, diff)])


@dataclass(frozen=True)
class Metrics:
    """Operating characteristics over replicates (None where the scenario plants nothing to find)."""

    scenario: str
    replicates: int
    recall: float | None
    false_flag_rate: float
    consistent_rate: float
    naive_recall: float | None
    naive_false_flag_rate: float
    rater_recall: float | None
    rater_false_flag_rate: float
    leniency_correlation: float | None
    leniency_rmse: float
    offset_bias: float
    offset_coverage: float
    seconds_per_campaign: float
    oracle_recall: float | None = None
    oracle_false_flag_rate: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def evaluate(scenario: Scenario, replicates: int = 200, seed: int = 2017, quota: int | None = None) -> Metrics:
    """Run reconcile and the naive method over simulated campaigns and summarise how well each finds the truth."""
    rng = np.random.default_rng(seed)
    hit = planted = false = nulls = consistent = 0
    n_hit = n_false = 0
    o_hit = o_false = 0
    r_hit = r_planted = r_false = r_nulls = 0
    est_all, true_all = [], []
    off_err, off_cover = [], 0
    elapsed = 0.0
    for _ in range(replicates):
        camp = simulate_campaign(scenario, rng, quota)
        start = time.perf_counter()
        result = reconcile(camp.consultant, camp.cross, margin=scenario.margin, alpha=scenario.alpha,
                           units=camp.units)
        elapsed += time.perf_counter() - start
        status = np.array([u.status for u in result.units])
        flagged = status == "inconsistent"
        naive = naive_flags(camp, scenario.margin, scenario.alpha)
        oracle = oracle_flags(camp, scenario.margin, scenario.alpha)
        is_planted = camp.inconsistency != 0
        hit += int(flagged[is_planted].sum())
        n_hit += int(naive[is_planted].sum())
        planted += int(is_planted.sum())
        false += int(flagged[~is_planted].sum())
        n_false += int(naive[~is_planted].sum())
        o_hit += int(oracle[is_planted].sum())
        o_false += int(oracle[~is_planted].sum())
        nulls += int((~is_planted).sum())
        consistent += int((status[~is_planted] == "consistent").sum())
        by_rater = {r.rater_unit: r for r in result.raters}
        true_len = camp.leniency - camp.leniency.mean()
        for i, u in enumerate(camp.units):
            r = by_rater.get(u)
            if r is None or r.leniency is None:
                continue
            est_all.append(r.leniency)
            true_all.append(true_len[i])
            if camp.leniency[i] != 0:
                r_planted += 1
                r_hit += int(r.flagged)
            else:
                r_nulls += 1
                r_false += int(r.flagged)
        true_offset = camp.offset + camp.leniency.mean()
        if result.offset.estimate is not None:
            off_err.append(result.offset.estimate - true_offset)
            if result.offset.ci_low is not None and result.offset.ci_low <= true_offset <= result.offset.ci_high:  # type: ignore[operator]
                off_cover += 1
    est, true = np.array(est_all), np.array(true_all)
    corr = None
    if est.size > 2 and np.std(true) > 0 and np.std(est) > 0:
        corr = float(np.corrcoef(est, true)[0, 1])
    return Metrics(
        scenario=scenario.name,
        replicates=replicates,
        recall=hit / planted if planted else None,
        false_flag_rate=false / nulls if nulls else 0.0,
        consistent_rate=consistent / nulls if nulls else 0.0,
        naive_recall=n_hit / planted if planted else None,
        naive_false_flag_rate=n_false / nulls if nulls else 0.0,
        rater_recall=r_hit / r_planted if r_planted else None,
        rater_false_flag_rate=r_false / r_nulls if r_nulls else 0.0,
        leniency_correlation=corr,
        leniency_rmse=float(np.sqrt(np.mean((est - true) ** 2))) if est.size else math.nan,
        offset_bias=float(np.mean(off_err)) if off_err else math.nan,
        offset_coverage=off_cover / replicates,
        seconds_per_campaign=elapsed / replicates,
        oracle_recall=o_hit / planted if planted else None,
        oracle_false_flag_rate=o_false / nulls if nulls else 0.0,
    )


def describe(scenario: Scenario) -> str:
    """Short description of a scenario's design: auditing units per unit and cross interviews per unit."""
    lo, hi = scenario.cross_per_unit
    return f"k={scenario.raters_per_unit}, {lo}-{hi}/unit"


def format_table(rows: Sequence[Metrics], designs: Sequence[str] | None = None) -> str:
    """Render metrics as a Markdown table (recall beside the oracle's, then the naive method's)."""

    def f(v: float | None) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    head = ("| scenario | design | reps | recall | oracle recall | false flags | oracle false flags | consistent | "
            "naive recall | naive false flags | auditor recall | auditor false flags | leniency r | leniency RMSE | "
            "offset bias | offset CI cover | s/campaign |")
    sep = "|" + "---|" * 17
    lines = [head, sep]
    for i, m in enumerate(rows):
        design = designs[i] if designs is not None else "–"
        lines.append(
            f"| {m.scenario} | {design} | {m.replicates} | {f(m.recall)} | {f(m.oracle_recall)} | "
            f"{f(m.false_flag_rate)} | {f(m.oracle_false_flag_rate)} | {f(m.consistent_rate)} | "
            f"{f(m.naive_recall)} | {f(m.naive_false_flag_rate)} | {f(m.rater_recall)} | {f(m.rater_false_flag_rate)} | "
            f"{f(m.leniency_correlation)} | {f(m.leniency_rmse)} | {f(m.offset_bias)} | {f(m.offset_coverage)} | "
            f"{m.seconds_per_campaign:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: simulate campaigns and print operating characteristics of reconcile vs the naive method."""
    parser = argparse.ArgumentParser(prog="python -m scoring.simulate", description=__doc__)
    parser.add_argument("--replicates", type=int, default=200, help="campaigns per scenario (default 200)")
    parser.add_argument("--seed", type=int, default=2017, help="random seed (default 2017)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "base", "design", "all"], default=["all"], nargs="+",
                        help="one or more scenarios, 'base' (planted, lenient, inconsistent, null), 'design' (the k=2 "
                             "per-unit, per-assignment and k=3 variants of planted and inconsistent) or 'all' "
                             "(default)")
    parser.add_argument("--raters-per-unit", type=int, default=None, help="override auditing units per unit")
    parser.add_argument("--cross-per-unit", type=int, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help="override cross interviews per scored unit (uniform LOW..HIGH)")
    parser.add_argument("--cross-per-assignment", type=int, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help="override cross interviews per assignment (per unit = this times auditing units)")
    parser.add_argument("--design-advice", type=int, nargs="+", metavar="BUDGET", default=None,
                        help="instead of the scenarios: planning.design_advice for these cross-interview budgets "
                             "per unit (k = 2, 3, 4 auditing units per unit, --replicates campaigns per design)")
    args = parser.parse_args(argv)
    if args.replicates < 1:
        print("error: --replicates must be at least 1", file=sys.stderr)
        return 2
    if args.design_advice:
        from .planning import design_advice

        for budget in args.design_advice:
            advice = design_advice(budget, (2, 3, 4), replicates=args.replicates, seed=args.seed)
            print(f"budget {budget} cross interviews per unit, {args.replicates} campaigns per design:\n")
            print(advice.table() + "\n")
        return 0
    groups = {"all": [*BASE_SCENARIOS, *DESIGN_SCENARIOS], "base": BASE_SCENARIOS, "design": DESIGN_SCENARIOS}
    names = list(dict.fromkeys(n for choice in args.scenario for n in groups.get(choice, [choice])))
    rows, designs = [], []
    for name in names:
        scenario = SCENARIOS[name]
        if args.raters_per_unit:
            scenario = replace(scenario, raters_per_unit=args.raters_per_unit)
        if args.cross_per_unit:
            scenario = replace(scenario, cross_per_unit=tuple(args.cross_per_unit))
        if args.cross_per_assignment:
            k = scenario.raters_per_unit
            scenario = replace(scenario, cross_per_unit=(k * args.cross_per_assignment[0],
                                                         k * args.cross_per_assignment[1]))
        rows.append(evaluate(scenario, args.replicates, args.seed))
        designs.append(describe(scenario))
        print(format_table(rows[-1:], designs[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_table(rows, designs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
