"""Respondent-level indices: dimension scores and the weighted respondent index (DESIGN "Scores")."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "Dimension",
    "Structure",
    "IndexResult",
    "RespondentScore",
    "respondent_indices",
    "respondent_index",
    "dimension_scores",
    "score_respondent",
]


@dataclass(frozen=True)
class Dimension:
    """One questionnaire dimension: its code, weight and item codes."""

    code: str
    weight: float
    items: tuple[str, ...]

    def __post_init__(self) -> None:
        # Tuples keep the dataclass hashable even when callers pass lists.
        object.__setattr__(self, "items", tuple(self.items))
        if not self.items:
            raise ValueError(f"dimension {self.code!r} has no items; give it at least one item code")
        if not (np.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"dimension {self.code!r} needs a positive finite weight, got {self.weight!r}")


@dataclass(frozen=True)
class Structure:
    """The scoring structure of a questionnaire: its dimensions in order."""

    dimensions: tuple[Dimension, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        if not self.dimensions:
            raise ValueError("a structure needs at least one dimension")
        items = self.item_codes
        if len(set(items)) != len(items):
            raise ValueError("an item code appears in more than one place; item codes must be unique")

    @property
    def item_codes(self) -> tuple[str, ...]:
        """All item codes in dimension order."""
        return tuple(code for dim in self.dimensions for code in dim.items)

    @property
    def weights(self) -> np.ndarray:
        """Dimension weights as an array."""
        return np.array([dim.weight for dim in self.dimensions], dtype=float)


@dataclass(frozen=True)
class IndexResult:
    """Per-respondent dimension scores and index; NaN marks an incomplete respondent or unanswered dimension."""

    index: np.ndarray
    dimension_scores: np.ndarray
    answered_dimensions: np.ndarray
    complete: np.ndarray

    @property
    def n_complete(self) -> int:
        """Number of complete respondents."""
        return int(self.complete.sum())

    @property
    def n_incomplete(self) -> int:
        """Number of incomplete respondents."""
        return int((~self.complete).sum())


def _as_matrix(answers: np.ndarray | pd.DataFrame, structure: Structure) -> np.ndarray:
    items = structure.item_codes
    if isinstance(answers, pd.DataFrame):
        missing = [code for code in items if code not in answers.columns]
        if missing:
            raise ValueError(f"answers lack item columns {missing}; add them (empty = not applicable)")
        matrix = answers.loc[:, list(items)].to_numpy(dtype=float, na_value=np.nan)
    else:
        matrix = np.asarray(answers, dtype=float)
        if matrix.ndim == 1 and matrix.size == 0:
            matrix = matrix.reshape(0, len(items))
        if matrix.ndim != 2 or matrix.shape[1] != len(items):
            raise ValueError(
                f"answers must be an n x {len(items)} array in structure item order, got shape {matrix.shape}"
            )
    # Infinite answers are not answers: treat them as blanks rather than let them poison means.
    infinite = np.isinf(matrix)
    if infinite.any():
        matrix = np.where(infinite, np.nan, matrix)
    return matrix


def dimension_scores(answers: np.ndarray | pd.DataFrame, structure: Structure) -> np.ndarray:
    """Return the n x dimensions matrix of dimension scores (mean of answered items, NaN if none)."""
    matrix = _as_matrix(answers, structure)
    n = matrix.shape[0]
    out = np.full((n, len(structure.dimensions)), np.nan)
    if n == 0:
        return out
    totals = np.zeros((n, len(structure.dimensions)))
    counts = np.zeros((n, len(structure.dimensions)))
    start = 0
    # Column by column: small temporaries instead of several n x items copies keep a million rows fast.
    for j, dim in enumerate(structure.dimensions):
        for c in range(start, start + len(dim.items)):
            column = matrix[:, c]
            seen = ~np.isnan(column)
            totals[:, j] += np.where(seen, column, 0.0)
            counts[:, j] += seen
        start += len(dim.items)
    # Divide only where something was answered, so no 0/0 warning is ever raised.
    np.divide(totals, counts, out=out, where=counts > 0)
    return out


def respondent_indices(answers: np.ndarray | pd.DataFrame, structure: Structure) -> IndexResult:
    """Score many respondents at once: dimension scores, weighted index, completeness."""
    scores = dimension_scores(answers, structure)
    n_dims = len(structure.dimensions)
    answered = ~np.isnan(scores)
    answered_dims = answered.sum(axis=1, dtype=np.int64)
    # DESIGN: fewer than half of the dimensions answered means incomplete (3 of 7 is incomplete, 4 of 7 is not).
    complete = (answered_dims * 2 >= n_dims) & (answered_dims > 0)
    weights = np.where(answered, structure.weights[np.newaxis, :], 0.0)
    weight_sum = weights.sum(axis=1)
    weighted = np.where(answered, scores, 0.0) * weights
    index = np.full(scores.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.divide(weighted.sum(axis=1), weight_sum, out=index, where=complete & (weight_sum > 0))
    return IndexResult(index=index, dimension_scores=scores, answered_dimensions=answered_dims, complete=complete)


def respondent_index(answers: Mapping[str, int | float | None], structure: Structure) -> float | None:
    """Score one respondent given {item code: answer or None}; None if incomplete."""
    row = np.array(
        [[np.nan if answers.get(code) is None else float(answers[code]) for code in structure.item_codes]],
        dtype=float,
    )
    result = respondent_indices(row, structure)
    return float(result.index[0]) if bool(result.complete[0]) else None


@dataclass(frozen=True)
class RespondentScore:
    """One respondent's scores: the index (None if incomplete), dimension scores (NaN if unanswered), count."""

    index: float | None
    dimension_scores: tuple[float, ...]
    answered_dimensions: int


def _row_sum(values: Sequence[float]) -> float:
    """Sum a short row exactly as numpy's ``sum(axis=1)`` does (its pairwise sum), so results match to the bit.

    Below 8 values numpy adds them in order from -0.0; up to 128 it keeps 8 running sums, combines
    them as a tree, then adds the remainder.
    """
    n = len(values)
    if n < 8:
        total = -0.0
        for value in values:
            total += value
        return total
    if n > 128:
        return float(np.sum(np.asarray(values, dtype=float)))
    r = list(values[:8])
    i = 8
    whole = n - n % 8
    while i < whole:
        for j in range(8):
            r[j] += values[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += values[i]
        i += 1
    return total


def score_respondent(answers: Mapping[str, int | float | None], structure: Structure) -> RespondentScore:
    """Score one respondent in plain Python: the same numbers as `respondent_indices` on a one-row matrix.

    For a single response (a web submission) numpy's set-up costs more than the arithmetic;
    this gives bit-identical results (tests compare the two on many random answer sets).
    """
    scores: list[float] = []
    weights: list[float] = []
    weighted: list[float] = []
    answered = 0
    for dim in structure.dimensions:
        total = 0.0
        count = 0
        for code in dim.items:
            value = answers.get(code)
            if value is None:
                continue
            value = float(value)
            if value != value or value in (math.inf, -math.inf):  # NaN and infinities are blanks, as in numpy
                continue
            total += value
            count += 1
        if count:
            score = total / count
            answered += 1
            scores.append(score)
            weights.append(dim.weight)
            weighted.append(score * dim.weight)
        else:
            scores.append(math.nan)
            weights.append(0.0)
            weighted.append(0.0)
    index: float | None = None
    if answered * 2 >= len(structure.dimensions) and answered > 0:
        weight_sum = _row_sum(weights)
        if weight_sum > 0:
            index = _row_sum(weighted) / weight_sum
    return RespondentScore(index, tuple(scores), answered)


def structure_from_mapping(dimensions: Sequence[Mapping[str, object]]) -> Structure:
    """Build a Structure from parsed questionnaire dimensions ({code, weight, items: [{code}|str]})."""
    dims = []
    for dim in dimensions:
        items = tuple(item["code"] if isinstance(item, Mapping) else str(item) for item in dim["items"])  # type: ignore[index,union-attr,attr-defined]
        dims.append(Dimension(code=str(dim["code"]), weight=float(dim.get("weight", 1.0)), items=items))  # type: ignore[arg-type]
    return Structure(dimensions=tuple(dims))
