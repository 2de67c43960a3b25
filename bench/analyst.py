"""The straightforward analyst's route, the report's yardstick: the responses table into pandas, then scipy.

It reads only the columns the scores need (the lightest pandas route; reading whole rows with
their answers would be slower still), then computes per unit the consultant and cross scores
with 95% t-intervals and a Welch test of cross against consultant, BH-adjusted across units.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import stats

QUERY = """
SELECT u.code AS unit, r.source, r.customer_group, r.review_state, r.respondent_index, r.rater_unit_id
FROM response r JOIN unit u ON u.id = r.unit_id
WHERE r.campaign_id = :campaign
"""


def read_responses(engine: sa.Engine, campaign_id: int) -> pd.DataFrame:
    """The campaign's responses, one row each, as a DataFrame."""
    with engine.connect() as connection:
        return pd.read_sql(sa.text(QUERY), connection, params={"campaign": campaign_id})


def _score(values: np.ndarray) -> tuple[int, float, float, float]:
    n = len(values)
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    mean = float(values.mean())
    if n < 2:
        return n, mean, np.nan, np.nan
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return n, mean, mean - half, mean + half


def unit_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per unit: consultant and cross n, score and CI; Welch t-test p-value and BH-adjusted p-value."""
    counted = frame[frame["respondent_index"].notna() & (frame["review_state"] != "rejected")]
    by_source = {source: dict(tuple(group.groupby("unit")["respondent_index"]))
                 for source, group in counted.groupby("source")}
    consultant, cross = by_source.get("consultant", {}), by_source.get("cross", {})
    records: list[dict[str, Any]] = []
    for unit in sorted(set(frame["unit"])):
        a = consultant.get(unit, pd.Series(dtype=float)).to_numpy(dtype=float)
        b = cross.get(unit, pd.Series(dtype=float)).to_numpy(dtype=float)
        c_n, c_mean, c_low, c_high = _score(a)
        x_n, x_mean, x_low, x_high = _score(b)
        p_value = np.nan
        if c_n >= 2 and x_n >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
        records.append({"unit_code": unit, "consultant_n": c_n, "consultant_score": c_mean,
                        "consultant_ci_low": c_low, "consultant_ci_high": c_high, "cross_n": x_n,
                        "cross_score": x_mean, "cross_ci_low": x_low, "cross_ci_high": x_high,
                        "p_value": p_value})
    result = pd.DataFrame.from_records(records)
    tested = result["p_value"].notna()
    result["p_adjusted"] = np.nan
    if tested.any():
        result.loc[tested, "p_adjusted"] = stats.false_discovery_control(result.loc[tested, "p_value"].to_numpy())
    return result


def analyst_report(engine: sa.Engine, campaign_id: int) -> pd.DataFrame:
    """Read and compute, as an analyst with pandas would."""
    return unit_scores(read_responses(engine, campaign_id))
