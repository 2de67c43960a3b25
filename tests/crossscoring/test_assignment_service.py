"""Creating, changing, submitting and reopening assignments in the database, and `flask assign`."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Assignment, AssignmentStatus, AuditEvent, Campaign, Unit
from survey.services.assignments import (
    AssignmentError,
    create_assignments,
    reopen_assignment,
    submit_assignment,
    update_assignment,
)

from .conftest import add_cross_response


def pairs_of(campaign: Campaign) -> set[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(Assignment.rater_unit_id, Assignment.ratee_unit_id).where(Assignment.campaign_id == campaign.id)
    )
    codes = dict(db.session.execute(sa.select(Unit.id, Unit.code)).all())
    return {(codes[r], codes[e]) for r, e in rows}


def events(action: str, entity: str = "assignment") -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.entity == entity)
    )


def test_create_assignments_for_all_units(make_campaign):
    campaign = make_campaign(units=7)
    created = create_assignments(campaign, raters_per_unit=3, quota=25, seed=11)
    assert len(created) == 21
    assert {a.quota for a in created} == {25}
    assert all(a.rater_unit_id != a.ratee_unit_id for a in created)
    assert events("create") == 21


def test_same_seed_same_assignments_in_the_database(make_campaign):
    first = make_campaign(code="a-2017", units=9)
    second = make_campaign(code="b-2017", units=0)
    create_assignments(first, 2, 30, seed=5)
    create_assignments(second, 2, 30, seed=5)
    assert pairs_of(first) == pairs_of(second)


def test_previous_campaigns_pairs_are_avoided(make_campaign):
    last = make_campaign(code="npc-2016", units=27)
    create_assignments(last, 2, 30, seed=2016)
    this = make_campaign(code="npc-2017", units=0, previous_campaign_id=last.id)
    create_assignments(this, 2, 30, seed=2017)
    assert len(pairs_of(this)) == 54
    assert not pairs_of(this) & pairs_of(last)


def test_regenerating_replaces_assignments_before_work_starts(make_campaign):
    campaign = make_campaign(units=7)
    create_assignments(campaign, 2, 30, seed=1)
    create_assignments(campaign, 3, 10, seed=2)
    rows = db.session.scalars(sa.select(Assignment).where(Assignment.campaign_id == campaign.id)).all()
    assert len(rows) == 21 and {a.quota for a in rows} == {10}
    assert events("delete") == 14


def test_regenerating_is_refused_once_work_has_started(cross):
    add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    before = pairs_of(cross.campaign)
    with pytest.raises(AssignmentError, match="Work has started on 1 assignments"):
        create_assignments(cross.campaign, 2, 30, seed=99)
    db.session.rollback()
    assert pairs_of(cross.campaign) == before


def test_too_many_raters_refused_and_nothing_written(make_campaign):
    campaign = make_campaign(units=4)
    with pytest.raises(AssignmentError, match="at least 5 units"):
        create_assignments(campaign, 2, 30, seed=1)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Assignment)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize("quota", [-1, 5001, True, "30"])
def test_bad_quota_refused(make_campaign, quota):
    campaign = make_campaign(units=5)
    with pytest.raises(AssignmentError, match="quota"):
        create_assignments(campaign, 2, quota, seed=1)


def test_change_quota_due_date_and_rater_until_work_starts(cross):
    import datetime as dt

    assignment = cross.assignments[0]
    ratee = assignment.ratee_unit_id
    # A unit free to take it over: neither scoring the ratee already nor scored by it, nor the ratee itself.
    busy = {a.rater_unit_id for a in cross.assignments if a.ratee_unit_id == ratee}
    busy |= {a.ratee_unit_id for a in cross.assignments if a.rater_unit_id == ratee}
    free = [u for u in cross.units if u.id not in busy and u.id != ratee]
    assert free, "the fixture design leaves a unit free"
    update_assignment(assignment, quota=40, due_on=dt.date(2017, 9, 30), rater_unit=free[0], user=cross.hq)
    db.session.expire_all()
    changed = db.session.get(Assignment, assignment.id)
    assert (changed.quota, changed.due_on, changed.rater_unit_id) == (40, dt.date(2017, 9, 30), free[0].id)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "edit")).one()
    assert event.before["quota"] == 3 and event.after["quota"] == 40 and event.actor == "hq@evnnpc.vn"

    add_cross_response(cross.campaign, changed, "r-1")
    with pytest.raises(AssignmentError, match="has started"):
        update_assignment(changed, quota=50, user=cross.hq)
    db.session.rollback()
    assert db.session.get(Assignment, assignment.id).quota == 40


def test_swap_refuses_self_and_reciprocal_pairs(cross):
    assignment = cross.assignments[0]
    ratee = db.session.get(Unit, assignment.ratee_unit_id)
    with pytest.raises(AssignmentError, match="never scores itself"):
        update_assignment(assignment, rater_unit=ratee, user=cross.hq)
    db.session.rollback()
    # A unit that the ratee scores would make a reciprocal pair.
    scored_by_ratee = next(a for a in cross.assignments if a.rater_unit_id == ratee.id)
    other = db.session.get(Unit, scored_by_ratee.ratee_unit_id)
    with pytest.raises(AssignmentError, match="already scores this unit or is scored by it"):
        update_assignment(assignment, rater_unit=other, user=cross.hq)


def test_submit_locks_and_reopen_needs_a_reason(cross):
    assignment = cross.assignments[0]
    submit_assignment(assignment, cross.auditor_a)
    assert assignment.status == AssignmentStatus.SUBMITTED and assignment.submitted_at is not None
    with pytest.raises(AssignmentError, match="already submitted"):
        submit_assignment(assignment, cross.auditor_a)
    with pytest.raises(AssignmentError, match="reason"):
        reopen_assignment(assignment, "   ", cross.hq)
    with pytest.raises(AssignmentError, match="has started"):
        update_assignment(assignment, quota=9, user=cross.hq)
    db.session.rollback()
    reopen_assignment(assignment, "Two interviews were entered for the wrong district.", cross.hq)
    assert assignment.status == AssignmentStatus.OPEN and assignment.submitted_at is None
    assert assignment.reopen_reason == "Two interviews were entered for the wrong district."
    with pytest.raises(AssignmentError, match="open already"):
        reopen_assignment(assignment, "again", cross.hq)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "reopen")).one()
    assert event.before["status"] == "submitted" and event.after["status"] == "open"
    assert event.after["reopen_reason"].startswith("Two interviews")


# --- flask assign ---------------------------------------------------------------------------


def test_flask_assign_writes_the_csv(make_campaign, runner, tmp_path):
    make_campaign(code="npc-2017", units=27)
    out = tmp_path / "assignments.csv"
    result = runner.invoke(args=["assign", "npc-2017", "--raters-per-unit", "2", "--quota", "30", "--seed", "4",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "54 assignments for 27 units" in result.output and "seed 4" in result.output
    with out.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["rater_unit", "ratee_unit", "quota"]
    assert len(rows) == 54 and {r["quota"] for r in rows} == {"30"}
    assert {(r["rater_unit"], r["ratee_unit"]) for r in rows} == pairs_of(db.session.scalar(sa.select(Campaign)))
    assert not list(tmp_path.glob(".*partial"))


def test_flask_assign_same_seed_same_file(make_campaign, runner, tmp_path):
    make_campaign(code="npc-2017", units=11)
    outputs = []
    for name in ("one.csv", "two.csv"):
        result = runner.invoke(args=["assign", "npc-2017", "--seed", "8", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name).read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["assign", "no-such"], "no campaign 'no-such'"),
        (["assign", "npc-2017", "--raters-per-unit", "3"], "at least 7 units"),
        (["assign", "npc-2017", "--raters-per-unit", "0"], "0"),
        (["assign", "npc-2017", "--quota", "-5"], "-5"),
        (["assign", "npc-2017", "--quota", "99999"], "quota"),
        (["assign", "npc-2017", "--out", "/no/such/dir/a.csv"], "cannot write there"),
    ],
)
def test_flask_assign_bad_input_changes_nothing(make_campaign, runner, args, message):
    make_campaign(code="npc-2017", units=5)
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Assignment)) == 0
