"""Progress of cross-scoring: n of quota per assignment, scored unit and auditing unit; late and empty first."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from survey.extensions import db
from survey.models import Assignment, ReviewState
from survey.services.progress import campaign_progress
from survey.services.review import review_response

from .conftest import add_cross_response, login

TODAY = dt.date(2017, 10, 2)


def set_due(assignment: Assignment, due: dt.date) -> None:
    db.session.execute(sa.update(Assignment).where(Assignment.id == assignment.id).values(due_on=due))
    db.session.commit()


def test_counts_late_and_empty(cross):
    a0, a1, a2 = cross.assignments[:3]
    for i in range(3):
        add_cross_response(cross.campaign, a0, f"a0-{i}")  # quota 3 reached
    rejected = add_cross_response(cross.campaign, a1, "a1-0")
    review_response(rejected, ReviewState.REJECTED, "Duplicate customer.", cross.hq)
    add_cross_response(cross.campaign, a1, "a1-1")
    set_due(a0, TODAY - dt.timedelta(days=1))  # past due but complete: not late
    set_due(a1, TODAY - dt.timedelta(days=1))  # past due, 1 of 3: late
    set_due(a2, TODAY)  # due today: not late yet, but empty
    progress = campaign_progress(cross.campaign, today=TODAY)

    rows = {row.assignment_id: row for row in progress.assignments}
    assert (rows[a0.id].entered, rows[a0.id].late, rows[a0.id].empty, rows[a0.id].complete) == (3, False, False, True)
    assert (rows[a1.id].entered, rows[a1.id].rejected, rows[a1.id].late) == (1, 1, True)
    assert (rows[a2.id].entered, rows[a2.id].late, rows[a2.id].empty) == (0, False, True)
    # Late first, then empty, then the rest.
    order = [row.assignment_id for row in progress.assignments]
    assert order[0] == a1.id
    first_complete = order.index(a0.id)
    assert all(rows[i].empty for i in order[1:first_complete])
    assert progress.quota == 3 * len(cross.assignments) and progress.entered == 4
    assert progress.late == 1 and progress.empty == len(cross.assignments) - 2

    ratee = {u.unit_code: u for u in progress.by_ratee}[a1.ratee_unit.code]
    assert ratee.assignments == 2 and ratee.quota == 6 and ratee.late == 1
    rater = {u.unit_code: u for u in progress.by_rater}[a0.rater_unit.code]
    assert rater.assignments == 2
    assert progress.by_ratee[0].late >= 1 and progress.by_rater[0].late >= 1
    assert sum(u.entered for u in progress.by_ratee) == sum(u.entered for u in progress.by_rater) == 4


def test_submitted_assignment_is_not_late(cross):
    from survey.services.assignments import submit_assignment

    assignment = cross.assignments[0]
    set_due(assignment, TODAY - dt.timedelta(days=5))
    submit_assignment(assignment, cross.auditor_a)
    rows = campaign_progress(cross.campaign, today=TODAY).assignments
    row = next(r for r in rows if r.assignment_id == assignment.id)
    assert not row.late and row.empty


def test_progress_is_counted_in_sql(cross, app):
    """Counting does not load the responses: the number of statements stays the same with more rows."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(*args, **kwargs):  # noqa: ANN002, ANN003
        statements.append(args[2])

    engine = db.engine
    campaign_progress(cross.campaign, today=TODAY)
    event.listen(engine, "before_cursor_execute", count)
    try:
        campaign_progress(cross.campaign, today=TODAY)
        few = len(statements)
        for i in range(6):
            add_cross_response(cross.campaign, cross.assignments[i % 3], f"x-{i}")
        db.session.refresh(cross.campaign)
        statements.clear()
        campaign_progress(cross.campaign, today=TODAY)
        assert len(statements) == few <= 4
        assert not any("FROM response" in s and "GROUP BY" not in s for s in statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_progress_page_shows_badges_late_first(cross, client):
    a1 = cross.assignments[1]
    set_due(a1, dt.date(2000, 1, 1))
    add_cross_response(cross.campaign, cross.assignments[0], "x-1")
    login(client, "hq@evnnpc.vn")
    page = client.get(f"/hq/campaigns/{cross.campaign.code}/progress?lang=en")
    assert page.status_code == 200
    text = page.text
    assert 'class="row-late" data-assignment="%d"' % a1.id in text
    first_row = text.index("data-assignment=")
    assert text[first_row:].startswith(f'data-assignment="{a1.id}"')
    assert "badge-empty" in text and "1 of %d interviews" % (3 * len(cross.assignments)) in text
