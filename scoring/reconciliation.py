"""Reconcile consultant and cross scores: offset, auditor leniency, per-unit differences, status, reconciled score."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from . import _model
from ._text import ReasonFacts, reason
from .agreement import benjamini_hochberg
from .scores import Score, UnitStats, poststratified_score, pool_stats, unit_score

__all__ = [
    "UNIT_COLUMNS",
    "RATER_COLUMNS",
    "STATUSES",
    "UnitResult",
    "RaterResult",
    "Offset",
    "Reconciliation",
    "reconcile",
]

UNIT_COLUMNS = (
    "unit_code",
    "consultant_n",
    "consultant_score",
    "consultant_ci_low",
    "consultant_ci_high",
    "cross_n",
    "cross_raters",
    "cross_score",
    "cross_score_adjusted",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "p_value",
    "p_adjusted",
    "status",
    "reason",
    "reconciled_score",
    "reconciled_ci_low",
    "reconciled_ci_high",
    "rank",
)
RATER_COLUMNS = ("rater_unit", "leniency", "leniency_se", "p_value", "p_adjusted", "flagged")
STATUSES = ("inconsistent", "consistent", "inconclusive")
MIN_MODEL_UNITS = 3
MAX_ROUNDS = 5


@dataclass(frozen=True)
class UnitResult:
    """Everything the report says about one scored unit (None where a value cannot be computed)."""

    unit_code: str
    consultant_n: int
    consultant_score: float | None
    consultant_ci_low: float | None
    consultant_ci_high: float | None
    cross_n: int
    cross_raters: int
    cross_score: float | None
    cross_score_adjusted: float | None
    difference: float | None
    difference_ci_low: float | None
    difference_ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    status: str
    reason: str
    reconciled_score: float | None
    reconciled_ci_low: float | None
    reconciled_ci_high: float | None
    rank: int | None
    reason_vi: str = ""
    reason_code: str = ""
    difference_se: float | None = None
    p_equivalence: float | None = None
    auditing_units: tuple[str, ...] = ()
    auditors_disagree: bool | None = None


@dataclass(frozen=True)
class RaterResult:
    """One auditing unit's leniency (cross points above the average auditor) with its test."""

    rater_unit: str
    leniency: float | None
    leniency_se: float | None
    p_value: float | None
    p_adjusted: float | None
    flagged: bool
    n: int = 0
    units_scored: int = 0
    note: str = ""


@dataclass(frozen=True)
class Offset:
    """Campaign-wide difference between the programmes: all auditors together minus the consultant."""

    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


@dataclass(frozen=True)
class Reconciliation:
    """The result of reconciling a campaign: per-unit and per-auditor results, the offset, method and warnings."""

    units: tuple[UnitResult, ...]
    raters: tuple[RaterResult, ...]
    offset: Offset
    method: str
    warnings: tuple[str, ...] = ()
    margin: float = 0.3
    alpha: float = 0.05
    residual_sd: float | None = None
    discrepancy_sd: float | None = None
    leniency_sd: float | None = None
    rounds: int = 0
    extra: Mapping[str, float] = field(default_factory=dict)

    def units_frame(self) -> pd.DataFrame:
        """Return the per-unit report table in contract column order (None, never NaN, for missing values)."""
        records = [[getattr(u, c) for c in UNIT_COLUMNS] for u in self.units]
        return pd.DataFrame(records, columns=list(UNIT_COLUMNS), dtype=object)

    def raters_frame(self) -> pd.DataFrame:
        """Return the per-auditing-unit leniency table in contract column order."""
        records = [[getattr(r, c) for c in RATER_COLUMNS] for r in self.raters]
        return pd.DataFrame(records, columns=list(RATER_COLUMNS), dtype=object)

    def unit(self, code: str) -> UnitResult:
        """Return the result of one unit by code."""
        for u in self.units:
            if u.unit_code == code:
                return u
        raise KeyError(f"unit {code!r} is not in this reconciliation")


def _fin(value: object) -> float | None:
    if value is None:
        return None
    value = float(value)  # type: ignore[arg-type]
    return value if math.isfinite(value) else None


def _column(frame: pd.DataFrame, names: Sequence[str], what: str, required: bool = True) -> str | None:
    for name in names:
        if name in frame.columns:
            return name
    if required and len(frame.columns):
        raise ValueError(f"{what} data need a column {names[0]!r}; add it (columns found: {list(frame.columns)})")
    return None


# --------------------------------------------------------------------------- inputs


def _consultant_scores(
    consultant: pd.DataFrame | None, shares: Mapping[str, float] | None, notes: list[str], confidence: float
) -> dict[str, Score]:
    if consultant is None or len(consultant) == 0:
        return {}
    unit_col = _column(consultant, ("unit", "unit_code"), "consultant")
    n_col = _column(consultant, ("n",), "consultant")
    mean_col = _column(consultant, ("mean",), "consultant")
    sd_col = _column(consultant, ("sd",), "consultant", required=False)
    group_col = _column(consultant, ("customer_group",), "consultant", required=False)
    by_unit: dict[str, dict[str, UnitStats]] = {}
    for i, row in enumerate(consultant.itertuples(index=False)):
        rec = row._asdict()
        unit = str(rec[unit_col])
        group = str(rec[group_col]) if group_col else "all"
        n = rec[n_col]
        n = int(n) if n is not None and _fin(n) is not None else 0
        stats_ = UnitStats(n, _fin(rec[mean_col]), _fin(rec[sd_col]) if sd_col else None)
        groups = by_unit.setdefault(unit, {})
        if group in groups:
            groups[group] = pool_stats([groups[group], stats_])
        else:
            groups[group] = stats_
    out = {}
    for unit, groups in by_unit.items():
        if shares and group_col:
            out[unit] = poststratified_score(groups, shares, confidence)
            if out[unit].note and out[unit].note != "post-stratified":
                notes.append(f"{unit}: {out[unit].note}")
        else:
            out[unit] = unit_score(pool_stats(groups), confidence)
    return out


@dataclass(frozen=True)
class _CrossCells:
    """Cross respondents reduced to (auditing unit, scored unit) cells: count, mean and within-cell sum of squares.

    Everything after input cleaning works on these, so a campaign costs one vectorised pass over its rows.
    """

    rater: np.ndarray  # auditing unit code per cell (object array of str)
    ratee: np.ndarray  # scored unit code per cell
    n: np.ndarray
    mean: np.ndarray
    ss: np.ndarray

    def where(self, keep: np.ndarray) -> _CrossCells:
        """The cells selected by a boolean mask."""
        return _CrossCells(self.rater[keep], self.ratee[keep], self.n[keep], self.mean[keep], self.ss[keep])

    def unit(self, code: str) -> _UnitCross | None:
        """One scored unit's cross data, or None when it has none."""
        mine = self.ratee == code
        if not mine.any():
            return None
        return _UnitCross(tuple(str(r) for r in self.rater[mine]), self.n[mine], self.mean[mine])


@dataclass(frozen=True)
class _UnitCross:
    """A scored unit's cross respondents by auditing unit (raters in code order)."""

    raters: tuple[str, ...]
    n: np.ndarray
    mean: np.ndarray

    @property
    def size(self) -> int:
        """Number of cross respondents."""
        return int(self.n.sum())

    def score(self) -> float:
        """Mean cross index of the unit."""
        return float(np.sum(self.n * self.mean) / self.n.sum())

    def adjusted(self, leniency: Mapping[str, float]) -> float:
        """Mean cross index after removing each respondent's auditing unit's leniency."""
        lens = np.array([leniency[r] for r in self.raters], dtype=float)
        return self.score() - float(np.sum(self.n * lens) / self.n.sum())


def _factor(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column and the text of each code (missing values become the text 'nan', as str() does)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _clean_cross(cross: pd.DataFrame | None, notes: list[str]) -> _CrossCells:
    """Drop unusable and self-scoring rows (saying so in notes) and reduce the rest to cells."""
    no_cells = _CrossCells(np.array([], dtype=object), np.array([], dtype=object), np.zeros(0), np.zeros(0),
                           np.zeros(0))
    if cross is None or len(cross) == 0:
        return no_cells
    rater_col = _column(cross, ("rater", "rater_unit"), "cross")
    ratee_col = _column(cross, ("ratee", "ratee_unit"), "cross")
    index_col = _column(cross, ("index",), "cross")
    rater_codes, rater_text = _factor(cross[rater_col])
    ratee_codes, ratee_text = _factor(cross[ratee_col])
    # One code space for both columns, in text order (so cells come out sorted by auditing unit, then scored unit).
    joint, names = pd.factorize(np.array(rater_text + ratee_text, dtype=object), sort=True)
    rater = joint[: len(rater_text)][rater_codes]
    ratee = joint[len(rater_text):][ratee_codes]
    index = pd.to_numeric(cross[index_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(index)
    if bad.any():
        notes.append(f"{int(bad.sum())} cross rows without a usable index were ignored")
    own = rater == ratee
    if own.any():
        notes.append(f"{int(own.sum())} cross rows where a unit scored itself were ignored")
    keep = ~bad & ~own
    if not keep.any():
        return no_cells
    rater, ratee, index = rater[keep], ratee[keep], index[keep]
    key = rater * len(names) + ratee
    cell_keys, cell_of_row = np.unique(key, return_inverse=True)
    n = np.bincount(cell_of_row).astype(float)
    mean = np.bincount(cell_of_row, weights=index) / n
    dev = index - mean[cell_of_row]
    ss = np.bincount(cell_of_row, weights=dev * dev, minlength=cell_keys.size)
    names = np.asarray(names, dtype=object)
    return _CrossCells(names[cell_keys // len(names)], names[cell_keys % len(names)], n, mean, ss)


def _build_cells(rows: _CrossCells, model_units: list[str], cons: Mapping[str, Score]) -> _model.Cells | None:
    data = rows.where(np.isin(rows.ratee, np.asarray(model_units, dtype=object)))
    if data.n.size == 0:
        return None
    raters = tuple(sorted(set(str(r) for r in data.rater)))
    ratees = tuple(model_units)
    r_idx = {r: i for i, r in enumerate(raters)}
    j_idx = {u: i for i, u in enumerate(ratees)}
    means = np.array([cons[u].mean for u in ratees], dtype=float)
    v = np.array([cons[u].se ** 2 for u in ratees], dtype=float)  # type: ignore[operator]
    rater = np.array([r_idx[r] for r in data.rater], dtype=int)
    ratee = np.array([j_idx[u] for u in data.ratee], dtype=int)
    return _model.Cells(
        rater=rater,
        ratee=ratee,
        n=data.n.copy(),
        zbar=data.mean - means[ratee],
        ybar=data.mean.copy(),
        ss_within=float(np.sum(data.ss)),
        n_rows=int(data.n.sum()),
        raters=raters,
        ratees=ratees,
        v=v,
    )


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _UnitTest:
    difference: float | None
    se: float | None
    leniency: Mapping[str, float]  # per auditing unit of this unit, as used for its adjustment
    offset: float | None
    unadjusted: tuple[str, ...]
    disagree_p: float | None


def _theta_functionals(design: _model.Design) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Coefficient vectors giving the offset (mean theta) and each estimable rater's leniency."""
    p = design.x.shape[1]
    k = len(design.estimable)
    off = np.zeros(p)
    off[:k] = 1.0 / k
    lens = {}
    for i, r in enumerate(design.estimable):
        g = -off.copy()
        g[i] += 1.0
        lens[r] = g
    return off, lens


def _freed_design(cells: _model.Cells, freed: Sequence[int], fixed_raters: Sequence[int] = ()) -> np.ndarray:
    """Intercept (the offset), a column per freed unit, and a fixed leniency column per flagged auditing unit."""
    x = np.zeros((cells.n_cells, 1 + len(freed) + len(fixed_raters)))
    x[:, 0] = 1.0
    for k, j in enumerate(freed):
        x[cells.ratee == j, 1 + k] = 1.0
    for k, r in enumerate(fixed_raters):
        x[cells.rater == r, 1 + len(freed) + k] = 1.0
    return x


def _unit_test(
    cells: _model.Cells,
    j: int,
    freed: frozenset[int],
    comps: _model.CrossedComponents,
    fixed_raters: frozenset[int] = frozenset(),
) -> _UnitTest | None:
    freed_list = sorted(freed | {j})
    if len(freed_list) >= len(cells.ratees):
        return None  # every unit free: nothing left to anchor the campaign-wide offset
    # A flagged auditing unit keeps a fixed leniency only if it also scored a unit that is not free.
    fixed = sorted(r for r in fixed_raters if np.any(~np.isin(cells.ratee[cells.rater == r], freed_list)))
    x = _freed_design(cells, freed_list, fixed)
    t = comps.tau2 + cells.v
    # Conditional on the unit's own discrepancy only the consultant's sampling error remains random in its block;
    # the unit's fixed column makes the estimates themselves independent of this choice.
    t[j] = cells.v[j]
    fit = _model.crossed_gls(cells, x, comps.sigma2, t, comps.lam2)
    if fit is None:
        return None
    col = 1 + freed_list.index(j)
    var = float(fit.cov[col, col])
    if not (math.isfinite(var) and var > 0):
        return None
    predicted = fit.blup @ cells.zbar
    for k, r in enumerate(fixed):
        predicted[r] += fit.beta[1 + len(freed_list) + k]
    mine = np.flatnonzero(cells.ratee == j)
    leniency = {cells.raters[int(cells.rater[c])]: float(predicted[int(cells.rater[c])]) for c in mine}
    # An auditing unit that scored no other unit: its leniency can only be assumed typical.
    unadjusted = tuple(sorted(
        cells.raters[r] for r in set(int(cells.rater[c]) for c in mine) if np.all(cells.ratee[cells.rater == r] == j)
    ))
    disagree_p = None
    if mine.size >= 2:
        # Do the unit's auditors agree once their predicted leniency is removed?  Chi-square on the n-weighted
        # deviations of the adjusted cell means, with their exact covariance under the model.
        lin = fit.blup.copy()
        for k, r in enumerate(fixed):
            lin[r] += fit.a[1 + len(freed_list) + k]
        h = np.eye(cells.n_cells)[mine] - lin[cells.rater[mine]]
        w = cells.n[mine] / cells.n[mine].sum()
        centre = np.eye(mine.size) - np.outer(np.ones(mine.size), w)
        op = centre @ h
        cov = op @ fit.v @ op.T
        dev = op @ cells.zbar
        scale = max(float(np.abs(cov).max()), 1e-300)
        rank = int(np.linalg.matrix_rank(cov, tol=1e-9 * scale))
        if rank >= 1:
            q = float(dev @ np.linalg.pinv(cov, rcond=1e-9, hermitian=True) @ dev)
            disagree_p = float(stats.chi2.sf(max(q, 0.0), rank))
    return _UnitTest(float(fit.beta[col]), math.sqrt(var), leniency, float(fit.beta[0]), unadjusted, disagree_p)


def _fixed_for(ratees_of: Sequence[frozenset[int]], fixed_raters: frozenset[int], freed: set[int]) -> list[int]:
    """Flagged auditing units that keep a fixed leniency: those that also scored a unit that is not free."""
    return sorted(r for r in fixed_raters if ratees_of[r] - freed)


def _unit_tests(
    cells: _model.Cells,
    freed: frozenset[int],
    comps: _model.CrossedComponents,
    fixed_raters: frozenset[int] = frozenset(),
) -> list[_UnitTest | None]:
    """Mean-shift test of every unit from one GLS fit of the base design and a rank-one update per unit.

    Freeing unit j adds its cell indicator e_j to the base design.  By partitioned GLS, with P the base fit's
    projection, d_j = e_j'P z / e_j'P e_j with variance 1/e_j'P e_j, and the other coefficients, P and the BLUPs
    change by rank-one terms in P e_j.  Removing tau^2 from the unit's own block subtracts tau^2 e_j e_j', a term
    inside the design's column space: it leaves the estimates, P and the BLUPs unchanged and lowers Var(d_j) by
    exactly tau^2.  Units outside these conditions (a flagged auditing unit whose only unfreed unit is j, a column
    aliased with the design) are refitted directly by `_unit_test`, which this reproduces otherwise.
    """
    n_ratees, n_raters = len(cells.ratees), len(cells.raters)
    ratees_of = [frozenset(int(j) for j in cells.ratee[cells.rater == r]) for r in range(n_raters)]
    freed_set = set(freed)
    freed_list = sorted(freed_set)
    fixed = _fixed_for(ratees_of, fixed_raters, freed_set)
    x0 = _freed_design(cells, freed_list, fixed)
    base = _model.crossed_base(cells, x0, comps.sigma2, comps.tau2 + cells.v, comps.lam2)
    if base is None:
        return [_unit_test(cells, j, freed, comps, fixed_raters) for j in range(n_ratees)]
    fixed_cols = np.arange(len(fixed)) + 1 + len(freed_list)
    fixed_pos = {r: k for k, r in enumerate(fixed)}
    e = (cells.ratee[:, None] == np.arange(n_ratees)[None, :]).astype(float)
    g = base.proj @ e  # P e_j, one column per unit
    q = np.einsum("cj,cj->j", e, g)
    scale = np.einsum("cj,cj->j", e, base.w @ e)
    num = g.T @ cells.zbar
    ae = base.a @ e
    lam_z = comps.lam2 * (cells.rater[None, :] == np.arange(n_raters)[:, None]).astype(float)
    blup = lam_z @ base.proj  # rater x cell: empirical-Bayes leniency of every rater as a map of zbar
    blup_g = lam_z @ g
    predicted0 = blup @ cells.zbar
    out: list[_UnitTest | None] = []
    chi_stat: list[float] = []
    chi_df: list[int] = []
    chi_at: list[int] = []
    for j in range(n_ratees):
        if len(freed_set | {j}) >= n_ratees:
            out.append(None)  # every unit free: nothing left to anchor the campaign-wide offset
            continue
        aliased = j not in freed_set and not q[j] > 1e-8 * scale[j]
        if aliased or _fixed_for(ratees_of, fixed_raters, freed_set | {j}) != fixed:
            out.append(_unit_test(cells, j, freed, comps, fixed_raters))
            continue
        if j in freed_set:
            col = 1 + freed_list.index(j)
            d, var = float(base.beta[col]), float(base.cov[col, col]) - comps.tau2
            gj, qj, shift = np.zeros(cells.n_cells), 1.0, np.zeros(len(base.beta))
        else:
            d, var = float(num[j] / q[j]), float(1.0 / q[j]) - comps.tau2
            gj, qj, shift = g[:, j], float(q[j]), ae[:, j]
        if not (math.isfinite(var) and var > 0):
            out.append(None)
            continue
        beta = base.beta - shift * d
        predicted = predicted0 - blup_g[:, j] * d if j not in freed_set else predicted0.copy()
        for r, k in fixed_pos.items():
            predicted[r] += beta[fixed_cols[k]]
        mine = np.flatnonzero(cells.ratee == j)
        mine_raters = cells.rater[mine]
        leniency = {cells.raters[int(r)]: float(predicted[int(r)]) for r in mine_raters}
        # An auditing unit that scored no other unit: its leniency can only be assumed typical.
        unadjusted = tuple(sorted(cells.raters[int(r)] for r in set(mine_raters.tolist()) if ratees_of[r] == {j}))
        if mine.size >= 2:
            # Do the unit's auditors agree once their predicted leniency is removed?  Chi-square on the n-weighted
            # deviations of the adjusted cell means, with their exact covariance under the model.
            lin = blup[mine_raters] - np.outer(blup_g[mine_raters, j], gj) / qj
            for i, r in enumerate(mine_raters):
                if int(r) in fixed_pos:
                    col_r = fixed_cols[fixed_pos[int(r)]]
                    lin[i] += base.a[col_r] - ae[col_r, j] * gj / qj
            h = -lin
            h[np.arange(mine.size), mine] += 1.0
            w = cells.n[mine] / cells.n[mine].sum()
            op = h - np.outer(np.ones(mine.size), w @ h)
            cov = op @ base.v @ op.T
            dev = op @ cells.zbar
            size = max(float(np.abs(cov).max()), 1e-300)
            rank = int(np.linalg.matrix_rank(cov, tol=1e-9 * size))
            if rank >= 1:
                chi_stat.append(max(float(dev @ np.linalg.pinv(cov, rcond=1e-9, hermitian=True) @ dev), 0.0))
                chi_df.append(rank)
                chi_at.append(len(out))
        out.append(_UnitTest(d, math.sqrt(var), leniency, float(beta[0]), unadjusted, None))
    if chi_at:
        for i, p in zip(chi_at, stats.chi2.sf(chi_stat, chi_df)):
            out[i] = replace(out[i], disagree_p=float(p))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class _Decision:
    status: str
    code: str
    p_adjusted: float | None
    p_equivalence: float | None


def _decide(
    tests: Mapping[str, _UnitTest], df: float, margin: float, alpha: float, cross_n: Mapping[str, int]
) -> dict[str, _Decision]:
    codes = list(tests)
    est = np.array([float(tests[u].difference) for u in codes], dtype=float)  # type: ignore[arg-type]
    ses = np.array([float(tests[u].se) for u in codes], dtype=float)  # type: ignore[arg-type]
    # One vectorised call per tail (scipy's per-call overhead dominates at 27 units and several rounds).
    p_raw = [float(p) for p in 2 * stats.t.sf(np.abs(est) / ses, df)] if codes else []
    # TOST: both one-sided tests against the margins, i.e. the 1-2alpha interval inside (-margin, margin).
    p_tost = (np.maximum(stats.t.sf((est + margin) / ses, df), stats.t.cdf((est - margin) / ses, df))
              if codes else np.zeros(0))
    bh = benjamini_hochberg(p_raw, alpha)
    out = {}
    for i, (u, p_adj) in enumerate(zip(codes, bh.p_adjusted)):
        t = tests[u]
        d = t.difference
        assert d is not None
        p_eq = float(p_tost[i])
        if t.unadjusted:
            status, code = "inconclusive", "leniency_unestimable"
        elif cross_n.get(u, 0) < 2:
            status, code = "inconclusive", "cross_one_respondent"
        elif p_adj is not None and p_adj < alpha and abs(d) >= margin:
            status, code = "inconsistent", "inconsistent"
        elif p_eq < alpha:
            status, code = "consistent", "consistent"
        elif p_adj is not None and p_adj < alpha:
            status, code = "inconclusive", "within_margin"
        elif abs(d) >= margin:
            status, code = "inconclusive", "not_significant"
        else:
            status, code = "inconclusive", "too_wide"
        out[u] = _Decision(status, code, p_adj, p_eq)
    return out


# --------------------------------------------------------------------------- entry point


def reconcile(
    consultant: pd.DataFrame | None,
    cross: pd.DataFrame | None,
    *,
    margin: float = 0.3,
    alpha: float = 0.05,
    units: Sequence[str] | None = None,
    shares: Mapping[str, float] | None = None,
    robust: bool = True,
    confidence: float = 0.95,
) -> Reconciliation:
    """Reconcile consultant sufficient statistics with cross respondents' indices for every unit of a campaign."""
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a non-negative number of points, got {margin!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    notes: list[str] = []
    cons = _consultant_scores(consultant, shares, notes, confidence)
    rows = _clean_cross(cross, notes)
    if units is None:
        unit_list = sorted(set(cons) | set(str(u) for u in rows.ratee))
    else:
        unit_list = list(dict.fromkeys(str(u) for u in units))
        outside = ~np.isin(rows.ratee, np.asarray(unit_list, dtype=object))
        if outside.any():
            notes.append(f"{int(rows.n[outside].sum())} cross rows for units outside the campaign's unit list were "
                         "ignored")
            rows = rows.where(~outside)
        extra = sorted(set(cons) - set(unit_list))
        if extra:
            notes.append(f"consultant data for units outside the unit list were ignored: {', '.join(extra)}")

    by_unit = {u: data for u in unit_list if (data := rows.unit(u)) is not None}

    pre: dict[str, str] = {}
    for u in unit_list:
        c = cons.get(u)
        has_cross = u in by_unit
        if (c is None or c.n == 0) and not has_cross:
            pre[u] = "no_data"
        elif c is None or c.n == 0:
            pre[u] = "no_consultant_data"
        elif c.n < 2 or c.se is None:
            pre[u] = "consultant_one_respondent"
        elif c.se <= 0:
            pre[u] = "consultant_zero_variance"
        elif not has_cross:
            pre[u] = "no_cross_data"
    model_units = [u for u in unit_list if u not in pre]

    cells = _build_cells(rows, model_units, cons) if model_units else None
    counts = _rater_counts(rows)
    sigma2 = tau2 = lam2 = None
    tests: dict[str, _UnitTest] = {}
    decisions: dict[str, _Decision] = {}
    freed: frozenset[int] = frozenset()
    fixed_raters: frozenset[int] = frozenset()
    rounds = 0
    df_resid = 1.0
    no_leniency = cells is None or len(cells.raters) < 2
    if cells is not None and len(model_units) < MIN_MODEL_UNITS:
        for u in model_units:
            pre[u] = "too_few_units"
        notes.append(
            f"only {len(model_units)} unit(s) have both consultant and cross data; at least {MIN_MODEL_UNITS} are "
            "needed to separate the campaign-wide offset from a unit's own difference"
        )
    elif cells is not None:
        if no_leniency:
            notes.append("only one auditing unit has usable cross data: no leniency adjustment is possible")
        df_resid = float(max(cells.n_rows - len(cells.raters) - 1, 1))
        for rounds in range(1, MAX_ROUNDS + 1):
            x = _freed_design(cells, sorted(freed), sorted(fixed_raters))
            if no_leniency:
                vc = _model.fit_variance_components(cells, x)
                comps = _model.CrossedComponents(vc.sigma2, vc.tau2, 0.0, vc.converged, vc.note)
            else:
                comps = _model.fit_crossed_components(cells, x)
            if comps.note:
                notes.append(comps.note)
            elif not comps.converged:
                notes.append("the variance components did not converge; estimates may be imprecise")
            comps = _model.CrossedComponents(max(comps.sigma2, _model.SIGMA2_FLOOR), comps.tau2, comps.lam2,
                                             comps.converged, comps.note)
            sigma2, tau2, lam2 = comps.sigma2, comps.tau2, comps.lam2
            tests = {}
            for u, result in zip(cells.ratees, _unit_tests(cells, freed, comps, fixed_raters)):
                if result is None:
                    pre[u] = "model_failed"
                else:
                    pre.pop(u, None)
                    tests[u] = result
            decisions = _decide(tests, df_resid, margin, alpha, {u: v.size for u, v in by_unit.items()})
            flagged = frozenset(cells.ratees.index(u) for u, d in decisions.items() if d.status == "inconsistent")
            lenient = frozenset()
            if not no_leniency:
                # Auditing units flagged by the fixed-effect leniency test keep their own (fixed) leniency in the
                # next round, so the random leniency variance describes the typical auditors only.
                flagged_raters, _, _, _ = _raters_and_offset(cells, flagged, sigma2, tau2, df_resid, alpha, counts)
                lenient = frozenset(cells.raters.index(r.rater_unit) for r in flagged_raters
                                    if r.flagged and r.rater_unit in cells.raters)
                if len(lenient) > len(cells.raters) - 2:
                    lenient = frozenset()
            if not robust or (flagged == freed and lenient == fixed_raters):
                break
            freed, fixed_raters = flagged, lenient
        else:
            notes.append("the set of inconsistent units did not settle; the last round is reported")
        notes[:] = list(dict.fromkeys(notes))

    # Leniency, offset and adjusted cross from the model that frees the units judged inconsistent.
    rater_results, offset, leniency_all, base = _raters_and_offset(cells, freed, sigma2, tau2, df_resid, alpha, counts)
    if no_leniency and rater_results:
        rater_results = tuple(
            RaterResult(r.rater_unit, None, None, None, None, False, r.n, r.units_scored, "leniency not estimable")
            for r in rater_results
        )

    n_tested = len(tests)
    results: list[UnitResult] = []
    for u in unit_list:
        results.append(
            _unit_result(u, cons.get(u), by_unit.get(u), pre.get(u), tests.get(u), decisions.get(u), margin,
                         n_tested, no_leniency, leniency_all, base, sigma2, confidence, df_resid)
        )
    results = _rank(results)
    return Reconciliation(
        units=tuple(results),
        raters=rater_results,
        offset=offset,
        method=method_text(margin, alpha),
        warnings=tuple(notes),
        margin=margin,
        alpha=alpha,
        residual_sd=None if sigma2 is None else math.sqrt(sigma2),
        discrepancy_sd=None if tau2 is None else math.sqrt(tau2),
        leniency_sd=None if lam2 is None else math.sqrt(lam2),
        rounds=rounds,
    )


@dataclass(frozen=True)
class _Base:
    offset: float
    cov_functional: object  # callable(rater_weights: Mapping[str, float]) -> variance of sum w_r L_r + offset


def _rater_counts(rows: _CrossCells) -> tuple[dict[str, int], dict[str, int]]:
    """Interviews and scored units per auditing unit."""
    n: dict[str, int] = {}
    k: dict[str, int] = {}
    for r, m in zip(rows.rater, rows.n):
        n[str(r)] = n.get(str(r), 0) + int(m)
        k[str(r)] = k.get(str(r), 0) + 1
    return n, k


def _raters_and_offset(cells, freed, sigma2, tau2, df, alpha, counts):  # type: ignore[no-untyped-def]
    n_of, k_of = counts
    empty_offset = Offset(None, None, None, None, None)
    leniency: dict[str, float] = {}
    base = None
    fit = design = None
    if cells is not None and sigma2 is not None and len(cells.ratees) >= MIN_MODEL_UNITS:
        design = _model.build_design(cells, freed)
        if design is not None:
            fit = _model.gls(cells, design, sigma2, tau2 + cells.v)
    estimates: dict[str, tuple[float, float]] = {}
    offset = empty_offset
    if fit is not None and design is not None:
        off_g, len_g = _theta_functionals(design)
        tq = float(stats.t.ppf(0.975, df))
        est = float(off_g @ fit.beta)
        se = math.sqrt(max(float(off_g @ fit.cov @ off_g), 0.0))
        if se > 0:
            offset = Offset(est, se, est - tq * se, est + tq * se, float(2 * stats.t.sf(abs(est) / se, df)))
        else:
            offset = Offset(est, None, None, None, None)
        for r, g in len_g.items():
            value = float(g @ fit.beta)
            var = float(g @ fit.cov @ g)
            estimates[cells.raters[r]] = (value, math.sqrt(max(var, 0.0)))
            leniency[cells.raters[r]] = value
        cov, beta = fit.cov, fit.beta
        index_of = {cells.raters[r]: i for i, r in enumerate(design.estimable)}

        def variance_of(weights: Mapping[str, float]) -> float | None:
            g = off_g.copy()
            for rater, w in weights.items():
                if rater not in index_of:
                    return None
                g = g + w * len_g[design.estimable[index_of[rater]]]
            return float(g @ cov @ g)

        base = _Base(est, variance_of)
        del beta
    raters = sorted(n_of)
    testable = [r for r in raters if r in estimates and estimates[r][1] > 0]
    t_abs = np.array([abs(estimates[r][0]) / estimates[r][1] for r in testable], dtype=float)
    p_of = dict(zip(testable, (float(p) for p in 2 * stats.t.sf(t_abs, df)))) if testable else {}
    p_raw = [p_of.get(r) for r in raters]
    bh = benjamini_hochberg(p_raw, alpha)
    out = []
    for r, p, p_adj in zip(raters, p_raw, bh.p_adjusted):
        value = estimates.get(r)
        n, k = int(n_of[r]), int(k_of[r])
        if value is None:
            out.append(RaterResult(r, None, None, None, None, False, n, k, "leniency not estimable from these data"))
        else:
            out.append(RaterResult(r, value[0], value[1] if value[1] > 0 else None, p, p_adj,
                                   bool(p_adj is not None and p_adj < alpha), n, k))
    return tuple(out), offset, leniency, base


@functools.lru_cache(maxsize=64)
def _t_quantile(q: float, df: float) -> float:
    return float(stats.t.ppf(q, df))


def _unit_result(u, score, data, pre, test, decision, margin, n_tested, no_leniency, leniency_all, base, sigma2,
                 confidence, df):  # type: ignore[no-untyped-def]
    score = score or Score(0, None, None, None, None, None)
    raters = () if data is None else data.raters
    cross_n = 0 if data is None else data.size
    cross_score = None if not cross_n else data.score()
    z = _t_quantile(0.5 + confidence / 2, df)
    facts = dict(margin=margin, n_units_tested=n_tested, n_raters=len(raters), consultant_n=score.n, cross_n=cross_n,
                 no_leniency_model=no_leniency and pre is None)
    diff = d_low = d_high = p = p_adj = p_eq = se = None
    adjusted = None
    disagree = None
    rec = rec_low = rec_high = None
    status = "inconclusive"
    if pre is not None or test is None or decision is None:
        code = pre or "model_failed"
        # A cross-only estimate on the consultant scale when the auditors' leniency is known.
        if cross_n and base is not None and all(r in leniency_all for r in raters):
            adjusted = data.adjusted(leniency_all)
            weights = {r: float(m) / cross_n for r, m in zip(data.raters, data.n)}
            var_l = base.cov_functional(weights)
            if var_l is not None and sigma2 is not None:
                x = adjusted - base.offset
                sx = math.sqrt(sigma2 / cross_n + var_l)
                if code in ("no_consultant_data", "consultant_one_respondent", "consultant_zero_variance"):
                    rec, rec_low, rec_high = x, x - z * sx, x + z * sx
        if rec is None:
            rec, rec_low, rec_high = score.mean, score.ci_low, score.ci_high
        text_facts = ReasonFacts(code=code, **facts)
    else:
        code = decision.code
        status = decision.status
        diff, se = test.difference, test.se
        d_low, d_high = diff - z * se, diff + z * se
        p = float(2 * stats.t.sf(abs(diff) / se, df))
        p_adj, p_eq = decision.p_adjusted, decision.p_equivalence
        adjusted = data.adjusted(test.leniency)
        if len(raters) >= 2 and test.disagree_p is not None:
            disagree = test.disagree_p < 0.05
        if status == "inconsistent":
            rec, rec_low, rec_high = score.mean, score.ci_low, score.ci_high
        else:
            v = score.se**2  # type: ignore[operator]
            x = score.mean + diff  # type: ignore[operator]  # adjusted cross minus offset, on the consultant scale
            vx = se**2 - v
            if vx > 0 and v > 0:
                w = (1 / v) / (1 / v + 1 / vx)
                rec = w * score.mean + (1 - w) * x  # type: ignore[operator]
                s = math.sqrt(1 / (1 / v + 1 / vx))
                rec_low, rec_high = rec - z * s, rec + z * s
            else:
                rec, rec_low, rec_high = score.mean, score.ci_low, score.ci_high
        text_facts = ReasonFacts(code=code, difference=diff, ci_low=d_low, ci_high=d_high, p_adjusted=p_adj,
                                 raters_disagree=disagree, disagreement_p=test.disagree_p,
                                 unadjusted_raters=test.unadjusted, **facts)
    return UnitResult(
        unit_code=u,
        consultant_n=int(score.n),
        consultant_score=_fin(score.mean),
        consultant_ci_low=_fin(score.ci_low),
        consultant_ci_high=_fin(score.ci_high),
        cross_n=cross_n,
        cross_raters=len(raters),
        cross_score=_fin(cross_score),
        cross_score_adjusted=_fin(adjusted),
        difference=_fin(diff),
        difference_ci_low=_fin(d_low),
        difference_ci_high=_fin(d_high),
        p_value=_fin(p),
        p_adjusted=_fin(p_adj),
        status=status,
        reason=reason(text_facts, "en"),
        reconciled_score=_fin(rec),
        reconciled_ci_low=_fin(rec_low),
        reconciled_ci_high=_fin(rec_high),
        rank=None,
        reason_vi=reason(text_facts, "vi"),
        reason_code=code,
        difference_se=_fin(se),
        p_equivalence=_fin(p_eq),
        auditing_units=tuple(raters),
        auditors_disagree=disagree,
    )


def _rank(results: list[UnitResult]) -> list[UnitResult]:
    scored = sorted((r for r in results if r.reconciled_score is not None),
                    key=lambda r: (-r.reconciled_score, r.unit_code))  # type: ignore[operator]
    ranks = {r.unit_code: i + 1 for i, r in enumerate(scored)}
    return [replace(r, rank=ranks.get(r.unit_code)) for r in results]


def method_text(margin: float, alpha: float) -> str:
    """Describe the reconciliation method in one paragraph for the report's method page."""
    return (
        "Each cross respondent's index is compared with the consultant's mean for the scored unit. The differences "
        "are modelled as: campaign-wide offset + the auditing unit's leniency + the scored unit's own discrepancy + "
        "noise. Leniencies sum to zero, so the offset is how far all auditors together score above (or below) the "
        "consultant. Unit discrepancies are a random effect whose variance includes the consultant's own sampling "
        "error, so a single discrepant unit is not blamed on its auditors; the variances are estimated by restricted "
        "maximum likelihood and the effects by generalised least squares. Each unit is then judged against "
        "leniencies estimated with its own level left free (a mean-shift test), so its own discrepancy cannot leak "
        "into its auditors' leniency. The difference is the leniency-adjusted cross score minus the consultant "
        "score minus the offset, with a 95% interval; p-values are adjusted across units by Benjamini-Hochberg. "
        f"A unit is inconsistent when the adjusted p-value is below {alpha:g} and the difference is at least "
        f"{margin:g} points; consistent when two one-sided tests show it lies within ±{margin:g} points; otherwise "
        "inconclusive. Units judged inconsistent are then excluded from the estimation of leniency and offset and "
        "the analysis repeated until the set is stable. Auditing units whose leniency differs from zero after "
        "Benjamini-Hochberg adjustment are flagged. The reconciled score is the precision-weighted mean of the "
        "consultant score and the adjusted cross score (offset removed) for units that are not inconsistent, and "
        "the consultant score for inconsistent units; units are ranked by it."
    )
