"""The cross-scoring model on cell sufficient statistics: REML variance components and GLS linear functionals.

Model for a cross respondent i of ratee j interviewed by auditing unit r, with z = index - consultant mean of j:

    z_i = theta_r + u_j + e_i,   e_i ~ N(0, sigma^2),   u_j ~ N(0, tau^2 + v_j),

where theta_r = offset + leniency_r (leniencies sum to zero over the estimable auditing units), u_j is the unit's
discrepancy between the programmes (random, so one discrepant unit is not blamed on its auditors) and v_j = s_j^2/n_j
is the known sampling variance of the consultant mean, which every cross respondent of j shares.  Because the fixed
effects are constant within a (rater, ratee) cell, the cell means, cell sizes and the pooled within-cell sum of squares
are sufficient: the row-level restricted likelihood equals the cell-level one up to a constant.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

SIGMA2_FLOOR = 1e-6


@dataclass(frozen=True)
class Cells:
    """Cell sufficient statistics of the cross data of units that have a consultant reference."""

    rater: np.ndarray  # index into raters, per cell
    ratee: np.ndarray  # index into ratees, per cell
    n: np.ndarray  # interviews per cell
    zbar: np.ndarray  # mean of (cross index - consultant mean) per cell
    ybar: np.ndarray  # mean cross index per cell
    ss_within: float  # pooled within-cell sum of squares
    n_rows: int
    raters: tuple[str, ...]
    ratees: tuple[str, ...]
    v: np.ndarray  # consultant variance of the mean, per ratee

    @functools.cached_property
    def pair_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """0/1 matrices over pairs of cells: same ratee, same rater (computed once per campaign)."""
        return ((self.ratee[:, None] == self.ratee[None, :]).astype(float),
                (self.rater[:, None] == self.rater[None, :]).astype(float))

    @property
    def n_cells(self) -> int:
        """Number of (rater, ratee) cells."""
        return int(self.n.size)


@dataclass(frozen=True)
class Design:
    """A design matrix over cells: estimable rater columns, then one column per freed ratee."""

    x: np.ndarray
    estimable: tuple[int, ...]  # rater indices that have their own column
    confounded: tuple[int, ...]  # rater indices whose leniency is taken as zero (cannot be separated)
    freed: tuple[int, ...]  # ratee indices with their own fixed column, in column order


def build_design(cells: Cells, freed: frozenset[int] | set[int] = frozenset()) -> Design | None:
    """Build the design; raters whose leniency cannot be separated from freed units get the average-rater row."""
    n_raters = len(cells.raters)
    present = sorted(set(int(r) for r in cells.rater))
    freed_list = sorted(int(j) for j in freed if j in set(int(x) for x in cells.ratee))
    estimable = list(present)
    confounded: list[int] = []
    for _ in range(n_raters + 1):
        if not estimable:
            return None
        x = _design_matrix(cells, estimable, freed_list)
        rank = np.linalg.matrix_rank(x)
        if rank == x.shape[1]:
            return Design(x, tuple(estimable), tuple(sorted(confounded)), tuple(freed_list))
        # A rater column is non-estimable when it loads on the null space of X.
        _, s, vt = np.linalg.svd(x, full_matrices=True)
        null = vt[rank:, :]
        load = np.abs(null[:, : len(estimable)]).max(axis=0)
        bad = [estimable[i] for i in np.flatnonzero(load > 1e-8)]
        if not bad:
            # Only freed columns are aliased (e.g. a freed unit with no cross data of its own): drop them.
            return None
        confounded.extend(bad)
        estimable = [r for r in estimable if r not in bad]
    return None


def _design_matrix(cells: Cells, estimable: list[int], freed: list[int]) -> np.ndarray:
    col = {r: i for i, r in enumerate(estimable)}
    p = len(estimable) + len(freed)
    x = np.zeros((cells.n_cells, p))
    for c in range(cells.n_cells):
        r = int(cells.rater[c])
        if r in col:
            x[c, col[r]] = 1.0
        else:
            # An auditing unit of unknown leniency is treated as an average one: its row is the offset.
            x[c, : len(estimable)] = 1.0 / len(estimable)
    for k, j in enumerate(freed):
        x[cells.ratee == j, len(estimable) + k] = 1.0
    return x


def _block_terms(cells: Cells, sigma2: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return d = n/sigma^2 per cell, and per ratee S_j = sum d, c_j = t_j / (1 + t_j S_j)."""
    d = cells.n / sigma2
    s = np.bincount(cells.ratee, weights=d, minlength=len(cells.ratees))
    c = t / (1.0 + t * s)
    return d, s, c


def _weighted(cells: Cells, d: np.ndarray, c: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Return W m for the block-diagonal inverse W = diag(d) - sum_j c_j d_j d_j^T (m: cells x q)."""
    dm = d[:, None] * m
    g = np.zeros((len(cells.ratees), m.shape[1]))
    np.add.at(g, cells.ratee, dm)
    return dm - d[:, None] * (c[:, None] * g)[cells.ratee]


def _reml_from_weighted(
    cells: Cells, x: np.ndarray, wx: np.ndarray, wz: np.ndarray, logdet_v: float, sigma2: float
) -> float:
    """Finish the REML log-likelihood from W X, W z and log|V| (shared by both variance-component models)."""
    m = x.T @ wx
    sign, logdet_m = np.linalg.slogdet(m)
    if sign <= 0:
        return -math.inf
    beta = np.linalg.solve(m, x.T @ wz)
    r = cells.zbar - x @ beta
    # r' W r = r' (W z - W X beta), as W is symmetric and r = z - X beta.
    quad = float(r @ (wz - wx @ beta))
    df_w = cells.n_rows - cells.n_cells
    within = df_w * math.log(sigma2) + cells.ss_within / sigma2
    return -0.5 * (within + logdet_v + logdet_m + quad)


def restricted_loglik(cells: Cells, x: np.ndarray, sigma2: float, tau2: float) -> float:
    """REML log-likelihood (up to a constant) of the row-level model, from cell sufficient statistics."""
    t = tau2 + cells.v
    d, s, c = _block_terms(cells, sigma2, t)
    logdet_v = float(np.sum(np.log(sigma2 / cells.n)) + np.sum(np.log1p(t * s)))
    wx = _weighted(cells, d, c, x)
    wz = _weighted(cells, d, c, cells.zbar[:, None])[:, 0]
    return _reml_from_weighted(cells, x, wx, wz, logdet_v, sigma2)


@dataclass(frozen=True)
class VarianceComponents:
    """Residual variance of a cross respondent and excess variance of unit discrepancies."""

    sigma2: float
    tau2: float
    converged: bool
    note: str = ""


def fit_variance_components(cells: Cells, x: np.ndarray) -> VarianceComponents:
    """Maximise the restricted likelihood over (sigma^2, tau^2 >= 0) with scipy's L-BFGS-B."""
    df_w = cells.n_rows - cells.n_cells
    total_var = float(np.var(cells.zbar)) if cells.n_cells > 1 else 0.0
    start_sigma2 = cells.ss_within / df_w if df_w > 0 else max(total_var, 1.0)
    start_sigma2 = max(start_sigma2, SIGMA2_FLOOR)
    if cells.n_rows - x.shape[1] <= 0 or len(cells.ratees) < 2:
        return VarianceComponents(start_sigma2, 0.0, False, "too few interviews to estimate variance components")

    def objective(p: np.ndarray) -> float:
        value = restricted_loglik(cells, x, math.exp(p[0]), max(p[1], 0.0))
        return -value if math.isfinite(value) else 1e300

    # A coarse grid on tau^2 guards against the optimiser starting on the wrong side of a flat ridge.
    grid = [0.0, 0.01, 0.05, 0.2, 1.0]
    starts = sorted(grid, key=lambda t2: objective(np.array([math.log(start_sigma2), t2])))
    best: optimize.OptimizeResult | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t2 in starts[:2]:
            try:
                res = optimize.minimize(
                    objective,
                    np.array([math.log(start_sigma2), t2]),
                    method="L-BFGS-B",
                    bounds=[(math.log(SIGMA2_FLOOR), math.log(1e6)), (0.0, 1e4)],
                )
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
            if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
                best = res
    if best is None or not math.isfinite(best.fun) or best.fun >= 1e299:
        return VarianceComponents(start_sigma2, 0.0, False, "restricted likelihood could not be maximised")
    return VarianceComponents(math.exp(best.x[0]), max(float(best.x[1]), 0.0), bool(best.success))


@dataclass(frozen=True)
class GlsFit:
    """Generalised least squares fit: coefficients, their covariance, and the estimator matrix A (beta = A zbar)."""

    beta: np.ndarray
    cov: np.ndarray
    a: np.ndarray
    design: Design


def gls(cells: Cells, design: Design, sigma2: float, t: np.ndarray) -> GlsFit | None:
    """GLS of cell means on the design with block covariance diag(sigma^2/n) + t_j J per ratee."""
    d, _, c = _block_terms(cells, sigma2, t)
    wx = _weighted(cells, d, c, design.x)
    m = design.x.T @ wx
    try:
        if np.linalg.cond(m) > 1e12:
            return None
        m_inv = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return None
    a = m_inv @ wx.T
    beta = a @ cells.zbar
    return GlsFit(beta, m_inv, a, design)


def quad_form(cells: Cells, h: np.ndarray, sigma2: float, t: np.ndarray) -> float:
    """Variance h^T V h of a linear function h^T zbar under V = diag(sigma^2/n) + t_j J per ratee."""
    sums = np.bincount(cells.ratee, weights=h, minlength=len(cells.ratees))
    return float(np.sum(h * h * sigma2 / cells.n) + np.sum(t * sums * sums))


# ----------------------------------------------------------------------------- crossed random effects
# Leniency as a random effect too (crossed rater and ratee effects).  Adjusting a unit for its auditors' predicted
# (empirical-Bayes) leniency borrows strength from the whole campaign: when most auditors are fair their predictions
# stay near zero with a small error, instead of the large error of a leniency estimated from ~20 interviews elsewhere.


def dense_v(cells: Cells, sigma2: float, t: np.ndarray, lam2: float) -> np.ndarray:
    """Covariance of cell means: diag(sigma^2/n) + t_j on pairs sharing a ratee + lambda^2 on pairs sharing a rater."""
    same_ratee, same_rater = cells.pair_masks
    v = same_ratee * t[cells.ratee][:, None] + lam2 * same_rater
    v[np.diag_indices_from(v)] += sigma2 / cells.n
    return v


def crossed_loglik(cells: Cells, x: np.ndarray, sigma2: float, tau2: float, lam2: float) -> float:
    """REML log-likelihood (up to a constant) with crossed random rater and ratee effects."""
    v = dense_v(cells, sigma2, tau2 + cells.v, lam2)
    try:
        factor = linalg.cho_factor(v, lower=True, check_finite=False)
    except linalg.LinAlgError:
        return -math.inf
    logdet_v = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    # One triangular solve pair for [X, z]: W X and W z, with W = V^-1.
    wxz = linalg.cho_solve(factor, np.column_stack([x, cells.zbar]), check_finite=False)
    wx, wz = wxz[:, :-1], wxz[:, -1]
    return _reml_from_weighted(cells, x, wx, wz, logdet_v, sigma2)


@dataclass(frozen=True)
class CrossedComponents:
    """Residual, unit-discrepancy and auditor-leniency variances."""

    sigma2: float
    tau2: float
    lam2: float
    converged: bool
    note: str = ""


def crossed_loglik_grad(
    cells: Cells, x: np.ndarray, sigma2: float, tau2: float, lam2: float
) -> tuple[float, np.ndarray]:
    """Crossed-effects REML log-likelihood and its gradient in (sigma^2, tau^2, lambda^2).

    With P = W - W X (X'W X)^-1 X'W, each derivative is -1/2 [tr(P dV) - z'P dV P z] (Harville 1977); dV is
    diag(1/n) for sigma^2 (plus the within-cell term), the same-ratee mask for tau^2 and the same-rater mask for
    lambda^2, so the gradient costs one matrix product more than the likelihood.
    """
    nan_grad = np.full(3, np.nan)
    v = dense_v(cells, sigma2, tau2 + cells.v, lam2)
    try:
        factor = linalg.cho_factor(v, lower=True, check_finite=False)
    except linalg.LinAlgError:
        return -math.inf, nan_grad
    logdet_v = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    w = linalg.cho_solve(factor, np.eye(cells.n_cells), check_finite=False)
    wx = w @ x
    m = x.T @ wx
    sign, logdet_m = np.linalg.slogdet(m)
    if sign <= 0:
        return -math.inf, nan_grad
    try:
        m_inv = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return -math.inf, nan_grad
    proj = w - wx @ m_inv @ wx.T
    pz = proj @ cells.zbar
    quad = float(cells.zbar @ pz)
    df_w = cells.n_rows - cells.n_cells
    within = df_w * math.log(sigma2) + cells.ss_within / sigma2
    value = -0.5 * (within + logdet_v + logdet_m + quad)
    same_ratee, same_rater = cells.pair_masks
    n_ratees, n_raters = len(cells.ratees), len(cells.raters)
    by_ratee = np.bincount(cells.ratee, weights=pz, minlength=n_ratees)
    by_rater = np.bincount(cells.rater, weights=pz, minlength=n_raters)
    within_grad = df_w / sigma2 - cells.ss_within / sigma2**2
    grad = np.array([
        float(np.sum(np.diag(proj) / cells.n) - np.sum(pz * pz / cells.n)) + within_grad,
        float(np.sum(proj * same_ratee) - by_ratee @ by_ratee),
        float(np.sum(proj * same_rater) - by_rater @ by_rater),
    ])
    return value, -0.5 * grad


def fit_crossed_components(cells: Cells, x: np.ndarray) -> CrossedComponents:
    """Maximise the crossed-effects restricted likelihood over (sigma^2, tau^2, lambda^2) with L-BFGS-B."""
    df_w = cells.n_rows - cells.n_cells
    start_sigma2 = cells.ss_within / df_w if df_w > 0 else max(float(np.var(cells.zbar)), 1.0)
    start_sigma2 = max(start_sigma2, SIGMA2_FLOOR)
    if cells.n_rows - x.shape[1] <= 0 or len(cells.ratees) < 2:
        return CrossedComponents(start_sigma2, 0.0, 0.0, False, "too few interviews to estimate variance components")

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        sigma2 = math.exp(p[0])
        value, grad = crossed_loglik_grad(cells, x, sigma2, max(p[1], 0.0), max(p[2], 0.0))
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros(3)
        # The optimiser works on log sigma^2: chain rule on the first coordinate.
        return -value, -grad * np.array([sigma2, 1.0, 1.0])

    grid = [(a, b) for a in (0.0, 0.02, 0.1) for b in (0.0, 0.02, 0.1)]
    starts = sorted(grid, key=lambda ab: objective(np.array([math.log(start_sigma2), *ab]))[0])
    best: optimize.OptimizeResult | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ab in starts[:2]:
            try:
                res = optimize.minimize(
                    objective,
                    np.array([math.log(start_sigma2), *ab]),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=[(math.log(SIGMA2_FLOOR), math.log(1e6)), (0.0, 1e4), (0.0, 1e4)],
                )
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
            if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
                best = res
    if best is None or best.fun >= 1e299:
        return CrossedComponents(start_sigma2, 0.0, 0.0, False, "restricted likelihood could not be maximised")
    return CrossedComponents(math.exp(best.x[0]), max(float(best.x[1]), 0.0), max(float(best.x[2]), 0.0),
                             bool(best.success))


@dataclass(frozen=True)
class CrossedFit:
    """GLS fit with crossed random effects: fixed effects, their covariance, the estimator and BLUP operators."""

    beta: np.ndarray
    cov: np.ndarray
    a: np.ndarray  # beta = a @ zbar
    blup: np.ndarray  # leniency prediction per rater = blup @ zbar
    v: np.ndarray


def crossed_gls(cells: Cells, x: np.ndarray, sigma2: float, t: np.ndarray, lam2: float) -> CrossedFit | None:
    """GLS of cell means on x, and the empirical-Bayes leniency of every rater as a linear map of the cell means."""
    v = dense_v(cells, sigma2, t, lam2)
    try:
        w = np.linalg.inv(v)
        m = x.T @ w @ x
        if np.linalg.cond(m) > 1e12:
            return None
        m_inv = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return None
    a = m_inv @ x.T @ w
    z_r = (cells.rater[None, :] == np.arange(len(cells.raters))[:, None]).astype(float)
    resid_op = np.eye(cells.n_cells) - x @ a
    blup = lam2 * z_r @ w @ resid_op
    return CrossedFit(a @ cells.zbar, m_inv, a, blup, v)


@dataclass(frozen=True)
class CrossedBase:
    """GLS with crossed random effects on a base design, kept whole for the per-unit mean-shift updates."""

    beta: np.ndarray
    cov: np.ndarray
    a: np.ndarray  # beta = a @ zbar
    w: np.ndarray  # V^-1
    proj: np.ndarray  # P = W - W X (X'W X)^-1 X'W, so that P zbar is the GLS residual weighted by W
    v: np.ndarray


def crossed_base(cells: Cells, x: np.ndarray, sigma2: float, t: np.ndarray, lam2: float) -> CrossedBase | None:
    """Fit the base design once; each unit's mean-shift test is then a rank-one update of this fit."""
    v = dense_v(cells, sigma2, t, lam2)
    try:
        factor = linalg.cho_factor(v, lower=True, check_finite=False)
        w = linalg.cho_solve(factor, np.eye(cells.n_cells), check_finite=False)
        wx = w @ x
        m = x.T @ wx
        if np.linalg.cond(m) > 1e12:
            return None
        m_inv = np.linalg.inv(m)
    except (linalg.LinAlgError, np.linalg.LinAlgError):
        return None
    a = m_inv @ wx.T
    return CrossedBase(a @ cells.zbar, m_inv, a, w, w - wx @ a, v)
