"""Agreement and reliability statistics: Bland-Altman, ICC (Shrout-Fleiss), Cronbach's alpha, Lin's CCC, BH."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "BlandAltman",
    "IccResult",
    "AlphaResult",
    "CccResult",
    "BHResult",
    "ICC_FORMS",
    "bland_altman",
    "icc",
    "cronbach_alpha",
    "alpha_ci",
    "lin_ccc",
    "benjamini_hochberg",
]


def _f(value: float) -> float | None:
    """Map a computed number to a float, or None when it is NaN/inf (outputs never carry NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class BlandAltman:
    """Bias, SD of differences, limits of agreement, and their confidence intervals."""

    n: int
    bias: float | None
    sd: float | None
    loa_low: float | None
    loa_high: float | None
    bias_ci_low: float | None
    bias_ci_high: float | None
    loa_low_ci_low: float | None
    loa_low_ci_high: float | None
    loa_high_ci_low: float | None
    loa_high_ci_high: float | None
    multiplier: float


def bland_altman(a: object, b: object, *, multiplier: float = 1.96, confidence: float = 0.95) -> BlandAltman:
    """Bland-Altman analysis of a - b with approximate CIs of the limits, SE = sqrt(3 s^2 / n) (Bland & Altman 1986)."""
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    n = int(d.size)
    none = (None,) * 10
    if n == 0:
        return BlandAltman(0, *none, multiplier)
    bias = float(d.mean())
    if n < 2:
        return BlandAltman(n, bias, *none[1:], multiplier)
    sd = float(d.std(ddof=1))
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    se_bias = sd / math.sqrt(n)
    se_loa = math.sqrt(3 * sd**2 / n)
    low, high = bias - multiplier * sd, bias + multiplier * sd
    return BlandAltman(
        n,
        bias,
        sd,
        low,
        high,
        bias - t * se_bias,
        bias + t * se_bias,
        low - t * se_loa,
        low + t * se_loa,
        high - t * se_loa,
        high + t * se_loa,
        multiplier,
    )


ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


@dataclass(frozen=True)
class IccResult:
    """An intraclass correlation of one Shrout-Fleiss form with its F-based CI and F test."""

    form: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    f: float | None
    df1: float
    df2: float
    p_value: float | None
    n_targets: int
    k_raters: int


def _normalise_form(form: str) -> str:
    text = form.replace(" ", "").upper()
    if not text.startswith("ICC("):
        text = f"ICC({text})"
    body = text[4:-1] if text.endswith(")") else text[4:]
    model, _, raters = body.partition(",")
    raters = "k" if raters not in ("1",) else "1"
    normal = f"ICC({model},{raters})"
    if normal not in ICC_FORMS:
        raise ValueError(f"unknown ICC form {form!r}; use one of {', '.join(ICC_FORMS)} (a number of raters means k)")
    return normal


def icc(matrix: object, form: str = "ICC(2,1)", *, confidence: float = 0.95) -> IccResult:
    """Intraclass correlation (Shrout & Fleiss 1979) of an n_targets x k_raters matrix, with McGraw & Wong CIs."""
    form = _normalise_form(form)
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError("icc needs a 2-D matrix: rows are targets, columns are raters")
    data = data[np.all(np.isfinite(data), axis=1)]  # listwise deletion: the ANOVA needs a complete table
    n, k = data.shape if data.size else (0, data.shape[1])
    df_r, df_c, df_e = n - 1, k - 1, (n - 1) * (k - 1)
    df_w = n * (k - 1)
    empty = IccResult(form, None, None, None, None, float(df_r), float(df_e), None, n, k)
    if n < 2 or k < 2:
        return empty
    grand = data.mean()
    ss_r = k * float(((data.mean(axis=1) - grand) ** 2).sum())
    ss_c = n * float(((data.mean(axis=0) - grand) ** 2).sum())
    ss_t = float(((data - grand) ** 2).sum())
    ss_e = max(ss_t - ss_r - ss_c, 0.0)
    msr, msc, mse = ss_r / df_r, ss_c / df_c, ss_e / df_e
    msw = (ss_c + ss_e) / df_w
    q = 0.5 + confidence / 2
    model, raters = form[4], form[6]
    with np.errstate(divide="ignore", invalid="ignore"):
        if model == "1":
            within, df2 = msw, df_w
        else:
            within, df2 = mse, df_e
        if within <= 0 or msr <= 0:
            return IccResult(form, None, None, None, None, float(df_r), float(df2), None, n, k)
        f0 = msr / within
        p = float(stats.f.sf(f0, df_r, df2))
        if model == "2":
            value1 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
            # Satterthwaite df for the ICC(2,1) interval (McGraw & Wong 1996, Table 7; Shrout & Fleiss 1979 eq. 6).
            a = k * value1 / (n * (1 - value1)) if value1 < 1 else math.inf
            b = 1 + k * value1 * (n - 1) / (n * (1 - value1)) if value1 < 1 else math.inf
            num = (a * msc + b * mse) ** 2
            den = (a * msc) ** 2 / df_c + (b * mse) ** 2 / df_e
            v = num / den if den > 0 and math.isfinite(num) else math.nan
            if math.isfinite(v) and v > 0:
                f_star = float(stats.f.ppf(q, df_r, v))
                f_star2 = float(stats.f.ppf(q, v, df_r))
                low1 = n * (msr - f_star * mse) / (f_star * (k * msc + (k * n - k - n) * mse) + n * msr)
                high1 = n * (f_star2 * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_star2 * msr)
            else:
                low1 = high1 = math.nan
            if raters == "1":
                value, low, high = value1, low1, high1
            else:
                value = (msr - mse) / (msr + (msc - mse) / n)
                # Spearman-Brown step-up of the single-rater bounds (McGraw & Wong 1996).
                low, high = (k * x / (1 + (k - 1) * x) for x in (low1, high1))
        else:
            f_low = f0 / float(stats.f.ppf(q, df_r, df2))
            f_high = f0 * float(stats.f.ppf(q, df2, df_r))
            if raters == "1":
                value = (msr - within) / (msr + (k - 1) * within)
                low, high = (f_low - 1) / (f_low + k - 1), (f_high - 1) / (f_high + k - 1)
            else:
                value = (msr - within) / msr
                low, high = 1 - 1 / f_low, 1 - 1 / f_high
    return IccResult(form, _f(value), _f(low), _f(high), _f(f0), float(df_r), float(df2), _f(p), n, k)


@dataclass(frozen=True)
class AlphaResult:
    """Cronbach's alpha with its Feldt (1965) F-based confidence interval."""

    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    k: int


def alpha_ci(alpha: float, n: int, k: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Feldt's CI of alpha: 1 - (1 - alpha) F quantiles with df (n-1, (n-1)(k-1)) (Feldt, Woodruff & Salih 1987)."""
    if n < 2 or k < 2 or not math.isfinite(alpha):
        return None, None
    df1, df2 = n - 1, (n - 1) * (k - 1)
    q = 0.5 + confidence / 2
    low = 1 - (1 - alpha) * float(stats.f.ppf(q, df1, df2))
    high = 1 - (1 - alpha) * float(stats.f.ppf(1 - q, df1, df2))
    return _f(low), _f(high)


def cronbach_alpha(items: object, *, confidence: float = 0.95) -> AlphaResult:
    """Cronbach's alpha of an n x k item matrix (listwise deletion) with Feldt's CI."""
    data = np.asarray(items, dtype=float)
    if data.ndim != 2:
        raise ValueError("cronbach_alpha needs an n x k matrix of item scores")
    data = data[np.all(np.isfinite(data), axis=1)]
    n, k = data.shape
    if n < 2 or k < 2:
        return AlphaResult(None, None, None, n, k)
    item_var = data.var(axis=0, ddof=1).sum()
    total_var = data.sum(axis=1).var(ddof=1)
    if total_var <= 0:
        return AlphaResult(None, None, None, n, k)
    value = k / (k - 1) * (1 - item_var / total_var)
    low, high = alpha_ci(value, n, k, confidence)
    return AlphaResult(_f(value), low, high, n, k)


@dataclass(frozen=True)
class CccResult:
    """Lin's concordance correlation coefficient with its Fisher-z CI, Pearson r and bias factor C_b."""

    ccc: float | None
    ci_low: float | None
    ci_high: float | None
    pearson_r: float | None
    bias_correction: float | None
    n: int


def lin_ccc(x: object, y: object, *, confidence: float = 0.95) -> CccResult:
    """Lin's (1989) CCC with a CI from the Fisher z transform and Lin's asymptotic variance (as corrected in 2000)."""
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3:
        return CccResult(None, None, None, None, None, n)
    # Lin uses the maximum-likelihood (divide by n) moments.
    mx, my = a.mean(), b.mean()
    sx2, sy2 = a.var(), b.var()
    sxy = float(((a - mx) * (b - my)).mean())
    denom = sx2 + sy2 + (mx - my) ** 2
    if denom <= 0:
        return CccResult(None, None, None, None, None, n)
    rc = 2 * sxy / denom
    if sx2 <= 0 or sy2 <= 0:
        return CccResult(_f(rc), None, None, None, None, n)
    r = sxy / math.sqrt(sx2 * sy2)
    cb = rc / r if r != 0 else None
    low = high = None
    if abs(rc) < 1 and r != 0 and n > 2:
        u2 = (mx - my) ** 2 / math.sqrt(sx2 * sy2)
        one = 1 - rc**2
        var_z = (
            (1 - r**2) * rc**2 / (one * r**2)
            + 2 * rc**3 * (1 - rc) * u2 / (r * one**2)
            - rc**4 * u2**2 / (2 * r**2 * one**2)
        ) / (n - 2)
        if var_z > 0:
            z = math.atanh(rc)
            half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(var_z)
            low, high = math.tanh(z - half), math.tanh(z + half)
    return CccResult(_f(rc), low, high, _f(r), None if cb is None else _f(cb), n)


@dataclass(frozen=True)
class BHResult:
    """Benjamini-Hochberg adjusted p-values and rejections (None where the input p-value was missing)."""

    p_adjusted: tuple[float | None, ...]
    rejected: tuple[bool, ...]
    alpha: float

    @property
    def n_rejected(self) -> int:
        """Number of rejected hypotheses."""
        return int(sum(self.rejected))


def benjamini_hochberg(p_values: object, alpha: float = 0.05) -> BHResult:
    """Benjamini-Hochberg (1995) step-up adjustment via statsmodels; missing p-values are left out."""
    raw = [None if v is None else float(v) for v in np.asarray(p_values, dtype=object).ravel()]
    idx = [i for i, v in enumerate(raw) if v is not None and math.isfinite(v)]
    adjusted: list[float | None] = [None] * len(raw)
    rejected = [False] * len(raw)
    if idx:
        values = np.clip(np.array([raw[i] for i in idx], dtype=float), 0.0, 1.0)
        # Imported here: statsmodels is large, and only a report needs it.
        from statsmodels.stats.multitest import multipletests

        rej, p_adj, _, _ = multipletests(values, alpha=alpha, method="fdr_bh")
        for j, i in enumerate(idx):
            adjusted[i] = float(p_adj[j])
            rejected[i] = bool(rej[j])
    return BHResult(tuple(adjusted), tuple(rejected), alpha)
