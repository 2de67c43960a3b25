"""Scoring for the satisfaction survey: indices, unit scores, agreement statistics, reconciliation, planning.

Pure and typed: arrays or DataFrames in, frozen dataclasses out; no web framework, no database.
"""

from .agreement import (
    ICC_FORMS,
    AlphaResult,
    BHResult,
    BlandAltman,
    CccResult,
    IccResult,
    alpha_ci,
    benjamini_hochberg,
    bland_altman,
    cronbach_alpha,
    icc,
    lin_ccc,
)
from .indices import (
    Dimension,
    IndexResult,
    RespondentScore,
    Structure,
    dimension_scores,
    respondent_index,
    respondent_indices,
    score_respondent,
    structure_from_mapping,
)
from .reconciliation import (
    RATER_COLUMNS,
    STATUSES,
    UNIT_COLUMNS,
    Offset,
    RaterResult,
    Reconciliation,
    UnitResult,
    reconcile,
)
from .scores import Score, UnitStats, pool_stats, poststratified_score, unit_score, unit_scores

__all__ = [
    "ICC_FORMS",
    "RATER_COLUMNS",
    "STATUSES",
    "UNIT_COLUMNS",
    "AlphaResult",
    "BHResult",
    "BlandAltman",
    "CccResult",
    "Dimension",
    "IccResult",
    "IndexResult",
    "RespondentScore",
    "Offset",
    "RaterResult",
    "Reconciliation",
    "Score",
    "Structure",
    "UnitResult",
    "UnitStats",
    "alpha_ci",
    "benjamini_hochberg",
    "bland_altman",
    "cronbach_alpha",
    "dimension_scores",
    "icc",
    "lin_ccc",
    "pool_stats",
    "poststratified_score",
    "reconcile",
    "respondent_index",
    "respondent_indices",
    "score_respondent",
    "structure_from_mapping",
    "unit_score",
    "unit_scores",
]
