"""Agreement statistics reproduce published tables."""

import math

import numpy as np
import pytest
from scipy import stats

from scoring import benjamini_hochberg, bland_altman, cronbach_alpha, icc, lin_ccc

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])

# Bland & Altman (1986) Lancet, Table 1: first reading of the Wright and the mini Wright peak flow meters (l/min).
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]

# Benjamini & Hochberg (1995), section 4.
BH_P = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
        0.7590, 1.000]


@pytest.mark.parametrize(
    ("form", "published"),
    [("ICC(1,1)", 0.17), ("ICC(2,1)", 0.29), ("ICC(3,1)", 0.71), ("ICC(1,4)", 0.44), ("ICC(2,4)", 0.62),
     ("ICC(3,4)", 0.91)],
)
def test_icc_reproduces_shrout_fleiss_table(form, published):
    result = icc(SHROUT_FLEISS, form)
    assert result.value == pytest.approx(published, abs=0.005)
    assert result.ci_low < result.value < result.ci_high


@pytest.mark.parametrize("form", ["ICC(1,1)", "ICC(3,1)"])
def test_icc_interval_matches_independent_f_formula(form):
    # One-way / consistency forms: bounds (F_L - 1)/(F_L + k - 1) with F_L = F0 / F_{.975} (Shrout & Fleiss eq. 4, 8).
    x = SHROUT_FLEISS.astype(float)
    n, k = x.shape
    grand = x.mean()
    msr = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ss_c = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_e = ((x - grand) ** 2).sum() - msr * (n - 1) - ss_c
    if form == "ICC(1,1)":
        within, df2 = (ss_c + ss_e) / (n * (k - 1)), n * (k - 1)
    else:
        within, df2 = ss_e / ((n - 1) * (k - 1)), (n - 1) * (k - 1)
    f0 = msr / within
    fl = f0 / stats.f.ppf(0.975, n - 1, df2)
    fu = f0 * stats.f.ppf(0.975, df2, n - 1)
    result = icc(x, form)
    assert result.ci_low == pytest.approx((fl - 1) / (fl + k - 1))
    assert result.ci_high == pytest.approx((fu - 1) / (fu + k - 1))


def test_icc_degenerate_input_gives_none():
    assert icc(np.ones((5, 3))).value is None
    assert icc(np.ones((1, 3))).value is None


@pytest.mark.parametrize(
    ("field", "published"),
    [("bias", -2.1), ("sd", 38.8), ("loa_low", -79.7), ("loa_high", 75.5), ("bias_ci_low", -22.0),
     ("bias_ci_high", 17.8), ("loa_low_ci_low", -114.3), ("loa_low_ci_high", -45.1), ("loa_high_ci_low", 40.9),
     ("loa_high_ci_high", 110.1)],
)
def test_bland_altman_reproduces_peak_flow_example(field, published):
    # The paper uses 2 SD for the limits and rounds intermediate values, hence the 0.25 l/min tolerance.
    result = bland_altman(WRIGHT, MINI_WRIGHT, multiplier=2.0)
    assert getattr(result, field) == pytest.approx(published, abs=0.25)


def test_bland_altman_degenerate():
    assert bland_altman([], []).bias is None
    one = bland_altman([1.0], [2.0])
    assert one.bias == -1.0 and one.sd is None


def test_benjamini_hochberg_example():
    bh = benjamini_hochberg(BH_P, 0.05)
    assert bh.n_rejected == 4
    bonferroni = sum(p < 0.05 / len(BH_P) for p in BH_P)
    assert bonferroni == 3


def test_benjamini_hochberg_skips_missing():
    bh = benjamini_hochberg([0.01, None, float("nan"), 0.04])
    assert bh.p_adjusted[1] is None and bh.p_adjusted[2] is None
    assert bh.p_adjusted[0] == pytest.approx(0.02) and bh.p_adjusted[3] == pytest.approx(0.04)


def _data_with_covariance(cov, n=50, seed=1):
    # Data whose sample covariance is exactly `cov`, so alpha depends on `cov` alone.
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, cov.shape[0]))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ np.linalg.cholesky(cov).T + 5.0


@pytest.mark.parametrize(
    ("cov", "published"),
    [
        # StatsBase.jl documentation example for cronbachalpha: 0.8136.
        (np.array([[10, 6, 6, 6], [6, 11, 6, 6], [6, 6, 12, 6], [6, 6, 6, 13]], dtype=float), 0.8136),
        # Parallel items with unit variance and correlation .5: alpha = k r / (1 + (k-1) r) = 3*.5/2 = .75.
        (np.array([[1, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 1]]), 0.75),
    ],
)
def test_cronbach_alpha_published_examples(cov, published):
    assert cronbach_alpha(_data_with_covariance(cov)).alpha == pytest.approx(published, abs=5e-5)


# Denis, D. J., "Applied Univariate, Bivariate, and Multivariate Statistics" (Wiley), section on Cronbach's alpha:
# a five-item test taken by ten people, with the SPSS RELIABILITY output printed beside the raw scores.
DENIS_ITEMS = np.array([
    [10, 12, 15, 11, 12],
    [12, 18, 12, 12, 1],
    [8, 16, 14, 14, 4],
    [6, 8, 16, 8, 6],
    [4, 7, 8, 7, 5],
    [6, 6, 3, 7, 3],
    [3, 4, 6, 5, 8],
    [7, 3, 7, 9, 9],
    [8, 9, 4, 10, 10],
    [9, 5, 6, 11, 12],
], dtype=float)


def test_cronbach_alpha_textbook_example():
    """Denis's printed output: alpha 0.633, alpha on standardized items 0.691, item SDs, item 1 deleted.

    Source: D. J. Denis, Applied Univariate, Bivariate, and Multivariate Statistics (Wiley), the Cronbach's alpha
    example with SPSS tables "Reliability Statistics" (0.633, 0.691, 5 items), "Item Statistics" (SDs 2.71006,
    5.05085, 4.74810, 2.71621, 3.80058) and "Item-Total Statistics" (item 1 deleted: scale mean 34.3000, scale
    variance 108.900).  The book prints no confidence interval for this example.
    """
    res = cronbach_alpha(DENIS_ITEMS)
    assert (res.n, res.k) == (10, 5)
    assert round(res.alpha, 3) == 0.633
    standardized = (DENIS_ITEMS - DENIS_ITEMS.mean(axis=0)) / DENIS_ITEMS.std(axis=0, ddof=1)
    assert round(cronbach_alpha(standardized).alpha, 3) == 0.691
    # The transcription of the data matches the book's item statistics and its item-deleted scale statistics.
    assert DENIS_ITEMS.std(axis=0, ddof=1) == pytest.approx([2.71006, 5.05085, 4.74810, 2.71621, 3.80058], abs=5e-6)
    rest = DENIS_ITEMS[:, 1:].sum(axis=1)
    assert rest.mean() == pytest.approx(34.3) and rest.var(ddof=1) == pytest.approx(108.9)
    # Feldt's interval (no printed value for these data): it contains alpha, and is the ICC(3,k) interval.
    assert res.ci_low < res.alpha < res.ci_high
    assert res.ci_low == pytest.approx(icc(DENIS_ITEMS, "ICC(3,k)").ci_low)
    assert res.ci_high == pytest.approx(icc(DENIS_ITEMS, "ICC(3,k)").ci_high)


def test_cronbach_alpha_equals_icc_3k_and_feldt_ci():
    # Alpha is the consistency ICC of the mean of k items (McGraw & Wong 1996): .91 on the Shrout-Fleiss data.
    res = cronbach_alpha(SHROUT_FLEISS)
    assert res.alpha == pytest.approx(icc(SHROUT_FLEISS, "ICC(3,k)").value)
    assert res.alpha == pytest.approx(0.91, abs=0.005)
    # Feldt (1965): 1 - (1 - alpha) F with df (n-1, (n-1)(k-1)); same as the ICC(3,k) interval.
    assert res.ci_low == pytest.approx(icc(SHROUT_FLEISS, "ICC(3,k)").ci_low)
    assert res.ci_high == pytest.approx(icc(SHROUT_FLEISS, "ICC(3,k)").ci_high)


def test_lin_ccc_matches_decomposition_r_times_cb():
    # Lin (1989): rho_c = r * C_b with C_b = 2 / (v + 1/v + u^2), v = s_x/s_y, u = (m_x - m_y)/sqrt(s_x s_y).
    x, y = np.array(WRIGHT, float), np.array(MINI_WRIGHT, float)
    r = np.corrcoef(x, y)[0, 1]
    v = x.std() / y.std()
    u = (x.mean() - y.mean()) / math.sqrt(x.std() * y.std())
    expected = r * 2 / (v + 1 / v + u**2)
    res = lin_ccc(x, y)
    assert res.ccc == pytest.approx(expected)
    assert res.pearson_r == pytest.approx(r)
    assert res.ci_low < res.ccc < res.ci_high


def test_lin_ccc_ci_without_bias_reduces_to_fisher_z():
    # With equal means and SDs the CCC equals r and Lin's variance of z reduces to 1/(n-2).
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = x + rng.normal(scale=0.5, size=40)
    y = (y - y.mean()) / y.std() * x.std() + x.mean()
    res = lin_ccc(x, y)
    half = stats.norm.ppf(0.975) / math.sqrt(40 - 2)
    assert res.ci_low == pytest.approx(math.tanh(math.atanh(res.ccc) - half))
    assert res.ci_high == pytest.approx(math.tanh(math.atanh(res.ccc) + half))
