"""Unit scores from sufficient statistics (COUNT, SUM, SUM of squares), with t-intervals and post-stratification."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

__all__ = ["UnitStats", "Score", "unit_score", "unit_scores", "poststratified_score", "pool_stats"]


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class UnitStats:
    """Sufficient statistics of respondent indices: count, mean and SD (ddof=1; None when undefined)."""

    n: int
    mean: float | None
    sd: float | None

    def __post_init__(self) -> None:
        n = int(self.n) if self.n is not None and math.isfinite(float(self.n)) else 0
        object.__setattr__(self, "n", max(n, 0))
        mean = _finite(self.mean) if self.n else None
        object.__setattr__(self, "mean", mean)
        sd = _finite(self.sd) if self.n and self.n >= 2 else None
        object.__setattr__(self, "sd", None if sd is None else max(sd, 0.0))

    @classmethod
    def from_sums(cls, n: int, total: float | None, total_sq: float | None) -> UnitStats:
        """Build statistics from COUNT, SUM and SUM of squares as computed in SQL."""
        n = int(n or 0)
        if n <= 0 or total is None:
            return cls(0, None, None)
        mean = float(total) / n
        if n < 2 or total_sq is None:
            return cls(n, mean, None)
        # Clip tiny negative values that floating-point cancellation produces for constant data.
        var = max((float(total_sq) - float(total) * mean) / (n - 1), 0.0)
        return cls(n, mean, math.sqrt(var))

    @classmethod
    def from_values(cls, values: object) -> UnitStats:
        """Build statistics from raw respondent indices (NaN ignored)."""
        import numpy as np

        arr = np.asarray(values, dtype=float).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return cls(0, None, None)
        return cls(int(arr.size), float(arr.mean()), float(arr.std(ddof=1)) if arr.size >= 2 else None)

    @property
    def variance_of_mean(self) -> float | None:
        """Squared standard error of the mean, s^2/n (None when n < 2)."""
        if self.sd is None or self.n < 2:
            return None
        return self.sd**2 / self.n


@dataclass(frozen=True)
class Score:
    """A score with its 95 % (or chosen) confidence interval; None where it cannot be computed."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    sd: float | None
    se: float | None
    df: float | None = None
    note: str = ""


def unit_score(stats_: UnitStats, confidence: float = 0.95) -> Score:
    """Score one unit from its sufficient statistics with a t-interval (None where n < 2)."""
    if stats_.n == 0 or stats_.mean is None:
        return Score(0, None, None, None, None, None, None, "no respondents")
    if stats_.n < 2 or stats_.sd is None:
        return Score(stats_.n, stats_.mean, None, None, None, None, None, "one respondent: no interval")
    se = stats_.sd / math.sqrt(stats_.n)
    df = stats_.n - 1
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Score(stats_.n, stats_.mean, stats_.mean - half, stats_.mean + half, stats_.sd, se, float(df))


def pool_stats(groups: Mapping[str, UnitStats] | list[UnitStats]) -> UnitStats:
    """Combine group statistics into the statistics of all respondents together."""
    items = list(groups.values()) if isinstance(groups, Mapping) else list(groups)
    items = [g for g in items if g.n > 0 and g.mean is not None]
    n = sum(g.n for g in items)
    if n == 0:
        return UnitStats(0, None, None)
    total = sum(g.n * g.mean for g in items)  # type: ignore[operator]
    mean = total / n
    if n < 2:
        return UnitStats(n, mean, None)
    if any(g.n >= 2 and g.sd is None for g in items):
        return UnitStats(n, mean, None)
    ss = sum((g.n - 1) * (g.sd or 0.0) ** 2 + g.n * (g.mean - mean) ** 2 for g in items)  # type: ignore[operator]
    return UnitStats(n, mean, math.sqrt(max(ss, 0.0) / (n - 1)))


def poststratified_score(
    stats_by_group: Mapping[str, UnitStats], shares: Mapping[str, float], confidence: float = 0.95
) -> Score:
    """Post-stratified mean over customer groups: sum w_h m_h, variance sum w_h^2 s_h^2/n_h, Satterthwaite df."""
    weights = {g: float(w) for g, w in shares.items() if w is not None and math.isfinite(float(w)) and float(w) > 0}
    total_w = sum(weights.values())
    pooled = pool_stats(stats_by_group)
    if total_w <= 0:
        return _with_note(unit_score(pooled, confidence), "no usable population shares: unweighted score")
    weights = {g: w / total_w for g, w in weights.items()}
    usable = all(
        (s := stats_by_group.get(g)) is not None and s.n >= 2 and s.sd is not None and s.mean is not None
        for g in weights
    )
    if not usable:
        # A stratum with a population share but fewer than two respondents has no variance: weighting is impossible.
        return _with_note(unit_score(pooled, confidence), "a customer group has fewer than 2 respondents: unweighted score")
    mean = sum(w * stats_by_group[g].mean for g, w in weights.items())  # type: ignore[operator]
    parts = {g: w**2 * stats_by_group[g].sd ** 2 / stats_by_group[g].n for g, w in weights.items()}  # type: ignore[operator]
    var = sum(parts.values())
    n = sum(stats_by_group[g].n for g in weights)
    if var <= 0:
        return Score(n, mean, mean, mean, 0.0, 0.0, None, "post-stratified; zero variance")
    denom = sum(a**2 / (stats_by_group[g].n - 1) for g, a in parts.items())
    df = var**2 / denom
    se = math.sqrt(var)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Score(n, mean, mean - half, mean + half, se * math.sqrt(n), se, df, "post-stratified")


def _with_note(score: Score, note: str) -> Score:
    return Score(score.n, score.mean, score.ci_low, score.ci_high, score.sd, score.se, score.df, note)


def unit_scores(
    stats_by_group: Mapping[str, UnitStats], shares: Mapping[str, float] | None = None, confidence: float = 0.95
) -> Score:
    """Score a unit from per-customer-group statistics: post-stratified when shares are given, else pooled."""
    if shares:
        return poststratified_score(stats_by_group, shares, confidence)
    return unit_score(pool_stats(stats_by_group), confidence)
