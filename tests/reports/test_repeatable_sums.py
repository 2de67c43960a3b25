"""The report's SQL sums give the same figures, to the last bit, whatever order the rows are read in
(survey/services/aggregates.py): on PostgreSQL the same responses stored in two orders make the
same report."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Channel, Response, Source, Unit
from survey.services import imports, quotas, reports
from survey.services.aggregates import exact_avg, exact_sum


def _store(campaign, unit_ids: list[int], answers: np.ndarray, order: np.ndarray) -> None:
    n = len(order)
    batch = imports.ResponseBatch(
        unit_ids=[unit_ids[k % len(unit_ids)] for k in order],
        customer_groups=["household" if k % 3 else "business" for k in order],
        # Named in the order stored, so every order the database may read in (by id, by respondent,
        # as stored) is the order given here.
        respondent_ids=[f"respondent-{position:06d}" for position in range(len(order))],
        answers=answers[order],
    )
    assert len(batch) == n
    imports.insert_responses(campaign, batch, source=Source.CONSULTANT, channel=Channel.IMPORT)
    db.session.commit()


def test_the_same_responses_in_another_order_give_the_same_figures(make_campaign, backend):
    if backend == "sqlite":
        pytest.skip("SQLite always reads the report's rows in its covering index's order (by id within a "
                    "group): its sums repeat for the same rows, not for the same values stored in another order")
    forward = make_campaign(code="order-forward", units=4)
    backward = make_campaign(code="order-backward", units=0)
    units = list(db.session.scalars(sa.select(Unit.id).order_by(Unit.id)))
    items = len(forward.questionnaire.items)
    rng = np.random.default_rng(2017)
    # Uneven answers with blanks, so indices and dimension scores are fractions with many digits.
    answers = rng.integers(1, 11, size=(3000, items)).astype(float)
    answers[rng.random(answers.shape) < 0.15] = np.nan
    order = np.arange(len(answers))
    _store(forward, units, answers, order)
    _store(backward, units, answers, order[::-1].copy())

    assert reports.consultant_stats(forward).equals(reports.consultant_stats(backward))
    assert reports.dimension_scores(forward).values == reports.dimension_scores(backward).values
    assert quotas.pooled_unit_sd(forward.id) == quotas.pooled_unit_sd(backward.id)
    a, b = reports.build_report(forward), reports.build_report(backward)
    assert [row["consultant_score"] for row in a.unit_rows("en")] == [row["consultant_score"] for row in b.unit_rows("en")]


def test_exact_sums_are_the_plain_sums_within_rounding(make_campaign, backend):
    """What the exact aggregates return is the sum and mean of the values, to within their rounding."""
    campaign = make_campaign(code="exact", units=1)
    unit = db.session.scalar(sa.select(Unit.id))
    rng = np.random.default_rng(7)
    answers = rng.integers(1, 11, size=(500, len(campaign.questionnaire.items))).astype(float)
    _store(campaign, [unit], answers, np.arange(len(answers)))
    total, mean, count = db.session.execute(
        sa.select(exact_sum(Response.respondent_index), exact_avg(Response.dimension_1),
                  sa.func.count(Response.dimension_1))
    ).one()
    indices = np.array(db.session.scalars(sa.select(Response.respondent_index)).all(), dtype=float)
    first = np.array(db.session.scalars(sa.select(Response.dimension_1)).all(), dtype=float)
    assert isinstance(total, float) and isinstance(mean, float) and count == len(first)
    # Each value is rounded to a multiple of 2⁻⁴⁰ on PostgreSQL: at most half of that per value.
    bound = 1e-12 if backend == "sqlite" else len(indices) * 2.0**-41 + 1e-12
    assert abs(total - float(np.sum(indices))) <= bound * max(1.0, abs(total) if backend == "sqlite" else 1.0)
    assert abs(mean - float(np.mean(first))) <= (1e-12 if backend == "sqlite" else 2.0**-41 + 1e-12) * max(1.0, abs(mean))
