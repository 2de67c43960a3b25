"""The report service: SQL aggregates against an independent pandas computation, and the reconciliation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import scoring
from survey.extensions import db
from survey.models import Response, ReviewState, Source
from survey.services import reports

from .conftest import assert_close, reference_reconciliation, stored_responses


def test_consultant_stats_match_pandas(seeded):
    stats = reports.consultant_stats(seeded.campaign).set_index(["unit", "customer_group"]).sort_index()
    frame = stored_responses(seeded.campaign)
    frame = frame[(frame["source"] == "consultant") & frame["index"].notna()]
    expected = frame.groupby(["unit", "customer_group"])["index"].agg(n="count", mean="mean", sd="std").sort_index()
    assert list(stats.index) == list(expected.index)
    np.testing.assert_array_equal(stats["n"].to_numpy(dtype=int), expected["n"].to_numpy(dtype=int))
    np.testing.assert_allclose(stats["mean"].to_numpy(dtype=float), expected["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats["sd"].to_numpy(dtype=float), expected["sd"].to_numpy(), rtol=1e-9)


def test_cross_rows_leave_out_rejected_and_incomplete(seeded):
    rows = reports.cross_rows(seeded.campaign)
    frame = stored_responses(seeded.campaign)
    cross = frame[(frame["source"] == "cross")]
    rejected = int((cross["review_state"] == "rejected").sum())
    assert rejected > 0
    assert len(rows) == int(((cross["review_state"] != "rejected") & cross["index"].notna()).sum())
    assert set(rows.columns) == {"rater", "ratee", "index"}
    assert not (rows["rater"] == rows["ratee"]).any()


def test_count_only_approved_counts_only_approved(seeded):
    campaign = seeded.campaign
    first = db.session.scalars(
        sa.select(Response.id).where(Response.campaign_id == campaign.id, Response.source == Source.CROSS,
                                     Response.review_state == ReviewState.RECEIVED).order_by(Response.id).limit(7)
    ).all()
    db.session.execute(sa.update(Response).where(Response.id.in_(first)).values(review_state=ReviewState.APPROVED))
    campaign.count_only_approved = True
    db.session.commit()
    rows = reports.cross_rows(campaign)
    assert len(rows) == 7


def test_report_equals_scoring_on_independent_statistics(seeded):
    report = reports.build_report(seeded.campaign)
    expected = reference_reconciliation(seeded.campaign)
    assert [u.unit_code for u in report.reconciliation.units] == [u.unit_code for u in expected.units]
    for got, want in zip(report.reconciliation.units, expected.units):
        for column in scoring.UNIT_COLUMNS:
            assert_close(getattr(got, column), getattr(want, column), f"{want.unit_code}.{column}")
    for got, want in zip(report.reconciliation.raters, expected.raters):
        for column in scoring.RATER_COLUMNS:
            assert_close(getattr(got, column), getattr(want, column), f"{want.rater_unit}.{column}")
    assert_close(report.reconciliation.offset.estimate, expected.offset.estimate, "offset")
    # The planted lenient auditing unit is the most lenient one.
    lenient = max((r for r in report.reconciliation.raters if r.leniency is not None), key=lambda r: r.leniency)
    assert lenient.rater_unit == seeded.units[0].code


def test_post_stratified_when_household_share_is_set(seeded):
    seeded.campaign.household_share = 0.6
    db.session.commit()
    report = reports.build_report(seeded.campaign)
    expected = reference_reconciliation(seeded.campaign, shares={"household": 0.6, "business": 0.4})
    unweighted = reference_reconciliation(seeded.campaign)
    code = seeded.units[0].code
    assert_close(report.reconciliation.unit(code).consultant_score, expected.unit(code).consultant_score, "weighted")
    assert report.reconciliation.unit(code).consultant_score != pytest.approx(unweighted.unit(code).consultant_score)


def test_dimension_scores_are_per_respondent_means(seeded):
    scores = reports.dimension_scores(seeded.campaign)
    frame = stored_responses(seeded.campaign)
    frame = frame[frame["index"].notna() & (frame["review_state"] != "rejected")]
    checked = 0
    for dimension in seeded.campaign.questionnaire.dimensions:
        codes = [i.code for i in dimension.items]
        def mean_answered(answers, codes=codes):
            values = [answers[c] for c in codes if answers.get(c) is not None]
            return float(np.mean(values)) if values else np.nan

        per_respondent = frame["answers"].map(mean_answered)
        expected = per_respondent.groupby([frame["unit"], frame["source"]]).mean()
        for (unit, source), value in expected.items():
            assert scores.of(unit, source)[dimension.code] == pytest.approx(value, rel=1e-9)
            checked += 1
    assert checked == 7 * 6 * 2
    counts = frame.groupby(["unit", "source"]).size()
    assert {k: v for k, v in scores.respondents.items()} == {k: int(v) for k, v in counts.items()}


def test_incomplete_respondents_counted_separately(seeded):
    report = reports.build_report(seeded.campaign)
    for unit in seeded.units:
        assert report.incomplete[unit.code] == {"consultant": 2}
        assert report.reconciliation.unit(unit.code).consultant_n == 40


def test_overall_score_target_and_previous(seeded):
    report = reports.build_report(seeded.campaign)
    frame = stored_responses(seeded.campaign)
    values = frame[(frame["source"] == "consultant") & frame["index"].notna()]["index"]
    assert report.overall.n == len(values)
    assert report.overall.score == pytest.approx(values.mean(), rel=1e-12)
    assert report.overall.ci_low < report.overall.score < report.overall.ci_high
    previous = stored_responses(seeded.previous)
    previous_mean = previous[(previous["source"] == "consultant") & previous["index"].notna()]["index"].mean()
    assert report.overall.previous_code == "c2016"
    assert report.overall.previous_score == pytest.approx(previous_mean, rel=1e-12)
    assert report.overall.change == pytest.approx(values.mean() - previous_mean, rel=1e-9)
    assert report.overall.versus_target == pytest.approx(values.mean() - 7.5)
    assert report.overall.meets_target is bool(values.mean() >= 7.5)


def test_empty_campaign_reports_without_errors(app, make_campaign):
    campaign = make_campaign(code="empty", units=4)
    report = reports.build_report(campaign)
    assert report.overall.score is None and report.overall.meets_target is None
    assert all(u.status == "inconclusive" and u.rank is None for u in report.reconciliation.units)
    rows = report.unit_rows()
    assert [list(r) for r in rows] == [list(reports.REPORT_COLUMNS)] * 4
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in rows for v in r.values())


@pytest.mark.parametrize(
    ("column", "descending", "expected"),
    [
        ("status", False, ["a", "c", "b", None]),
        ("status", True, ["b", "c", "a", None]),
        ("consultant_score", False, ["c", "a", "b", None]),
        ("consultant_score", True, ["b", "a", "c", None]),
    ],
)
def test_sort_rows_keeps_empty_values_last(column, descending, expected):
    rows = [
        {**dict.fromkeys(reports.REPORT_COLUMNS), "unit_code": "a", "status": "inconsistent", "consultant_score": 7.0},
        {**dict.fromkeys(reports.REPORT_COLUMNS), "unit_code": "b", "status": "consistent", "consultant_score": 8.0},
        {**dict.fromkeys(reports.REPORT_COLUMNS), "unit_code": "c", "status": "inconclusive", "consultant_score": 6.0},
        {**dict.fromkeys(reports.REPORT_COLUMNS), "unit_code": None, "status": None, "consultant_score": None},
    ]
    assert [r["unit_code"] for r in reports.sort_rows(rows, column, descending)] == expected


def test_sort_rows_refuses_unknown_column():
    with pytest.raises(reports.ReportError, match="cannot be sorted"):
        reports.sort_rows([], "password")


def test_finite_turns_nan_and_inf_into_none():
    assert [reports.finite(v) for v in (1, 2.5, float("nan"), float("inf"), None, "x")] == [1.0, 2.5, None, None, None,
                                                                                              None]


def test_consultant_stats_is_one_grouped_query(seeded):
    """The consultant side is aggregated by the database: one statement, a handful of rows back."""
    statements = []
    campaign = seeded.campaign
    assert campaign.id  # loaded before counting

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        stats = reports.consultant_stats(campaign)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # One grouped statement over the responses; the unit codes come from a look-up of the unit table.
    on_responses = [s for s in statements if "response" in s.lower()]
    assert len(on_responses) == 1 and "GROUP BY" in on_responses[0].upper()
    look_ups = [s.split() for s in statements if s not in on_responses]
    assert all(words == ["SELECT", "unit.id,", "unit.code", "FROM", "unit"] for words in look_ups)
    assert len(stats) == 12 and isinstance(stats, pd.DataFrame)
