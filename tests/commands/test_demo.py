"""`flask demo [--seed N] [--if-empty]`: realistic, deterministic demo data, only into an empty database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import aliased

from survey.extensions import db
from survey.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignStatus,
    Channel,
    CustomerGroup,
    Invitation,
    Response,
    Role,
    Source,
    Unit,
    User,
)
from survey.services import demo
from survey.services.users import password_matches
from tests.conftest import empty_tables


def per_unit(campaign_code: str, source: Source) -> dict[str, tuple[int, float, int]]:
    """unit code → (responses, mean index, business responses), aggregated in SQL."""
    rows = db.session.execute(
        sa.select(
            Unit.code,
            sa.func.count(Response.id),
            sa.func.avg(Response.respondent_index),
            sa.func.sum(sa.case((Response.customer_group == CustomerGroup.BUSINESS, 1), else_=0)),
        )
        .join(Response, Response.unit_id == Unit.id)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(Campaign.code == campaign_code, Response.source == source, Response.channel != Channel.WEB)
        .group_by(Unit.code)
    )
    return {code: (n, float(mean), int(business)) for code, n, mean, business in rows}


def overall(campaign_code: str, source: Source) -> float:
    return float(
        db.session.scalar(
            sa.select(sa.func.avg(Response.respondent_index))
            .join(Campaign, Campaign.id == Response.campaign_id)
            .where(Campaign.code == campaign_code, Response.source == source)
        )
    )


def fingerprint() -> list[tuple]:
    """Everything the seed decides, in a stable order."""
    rater, ratee = aliased(Unit), aliased(Unit)
    responses = db.session.execute(
        sa.select(Campaign.code, Unit.code, Response.source, Response.channel, Response.customer_group,
                  Response.respondent_id, Response.answers, Response.respondent_index, Response.idempotency_key)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Unit, Unit.id == Response.unit_id)
        .where(Response.channel != Channel.WEB)
        .order_by(Campaign.code, Unit.code, Response.source, Response.respondent_id)
    ).all()
    assignments = db.session.execute(
        sa.select(rater.code, ratee.code, Assignment.status)
        .join(rater, rater.id == Assignment.rater_unit_id)
        .join(ratee, ratee.id == Assignment.ratee_unit_id)
        .order_by(rater.code, ratee.code)
    ).all()
    users = db.session.execute(sa.select(User.email, User.role).order_by(User.email)).all()
    return [tuple(row) for row in [*responses, *assignments, *users]]


def test_demo_fills_every_page(runner):
    result = runner.invoke(args=["demo", "--seed", "11"])
    assert result.exit_code == 0, result.output
    assert "Accounts (password demo-password-2017)" in result.stdout
    assert "hq@evnnpc.vn" in result.stdout

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Unit)) == 27
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == "2017"))
    previous = db.session.scalar(sa.select(Campaign).where(Campaign.code == "2016"))
    assert campaign.status == CampaignStatus.OPEN and previous.status == CampaignStatus.CLOSED
    assert campaign.previous_campaign_id == previous.id
    assert (campaign.name_vi, campaign.target_score, campaign.margin) == (
        "Khảo sát mức độ hài lòng khách hàng 2017", 7.5, 0.3)

    # Consultant data: a few hundred per unit, unit means roughly 7.0–8.3, both groups, ~85 % households.
    consultant = per_unit("2017", Source.CONSULTANT)
    assert len(consultant) == 27
    assert {n for n, _, _ in consultant.values()} == {demo.CONSULTANT_PER_UNIT["2017"]}
    means = [mean for _, mean, _ in consultant.values()]
    assert 6.7 <= min(means) < 7.3 and 8.0 < max(means) <= 8.6
    assert all(0 < business < n for n, _, business in consultant.values())
    business_share = sum(b for _, _, b in consultant.values()) / sum(n for n, _, _ in consultant.values())
    assert 0.12 < business_share < 0.18
    assert 7.3 < overall("2017", Source.CONSULTANT) < 7.9
    assert set(per_unit("2016", Source.CONSULTANT)) == set(consultant)
    assert overall("2016", Source.CONSULTANT) == pytest.approx(7.52, abs=0.05)
    assert db.session.scalar(sa.select(sa.func.count()).where(
        Response.source == Source.CROSS, Response.campaign_id == previous.id)) == 0
    # About 3 % of answers are "not applicable"; answers are whole numbers on the scale.
    answers = db.session.scalars(sa.select(Response.answers).where(Response.campaign_id == campaign.id)).all()
    values = [v for a in answers for v in a.values()]
    blanks = sum(v is None for v in values) / len(values)
    assert 0.02 < blanks < 0.04
    assert {v for v in values if v is not None} <= set(range(1, 11))

    # Web answers through invitations, and links still open.
    web = db.session.execute(sa.select(Response.invitation_id, Response.idempotency_key).where(
        Response.channel == Channel.WEB)).all()
    assert web and all(key == f"invitation-{invitation}" for invitation, key in web)
    used = db.session.scalar(sa.select(sa.func.count()).where(Invitation.used_at.is_not(None)))
    unused = db.session.scalar(sa.select(sa.func.count()).where(Invitation.used_at.is_(None)))
    assert used == len(web) and unused > 0
    assert result.stdout.count("http://survey.test/s/") == 3

    # Cross-scoring: every assignment has 30–50 interviews; some assignments submitted, some open.
    assignments = db.session.scalars(sa.select(Assignment)).all()
    assert len(assignments) == 27 * demo.RATERS_PER_UNIT
    cross = dict(db.session.execute(
        sa.select(Response.assignment_id, sa.func.count()).where(Response.source == Source.CROSS)
        .group_by(Response.assignment_id)).tuples().all())
    assert set(cross) == {a.id for a in assignments}
    assert all(30 <= n <= 50 for n in cross.values())
    assert {a.status for a in assignments} == {AssignmentStatus.OPEN, AssignmentStatus.SUBMITTED}
    for assignment in assignments:
        assert (assignment.status == AssignmentStatus.SUBMITTED) == (cross[assignment.id] >= assignment.quota)
    wrong = db.session.scalar(sa.select(sa.func.count()).where(
        Response.source == Source.CROSS,
        sa.or_(Response.rater_unit_id.is_(None), Response.rater_unit_id == Response.unit_id,
               Response.channel != Channel.INTERVIEW, Response.idempotency_key.is_(None))))
    assert wrong == 0

    # Accounts: HQ, a handful of auditors, a few managers, all with the demo password.
    users = db.session.scalars(sa.select(User)).all()
    roles = [u.role for u in users]
    assert roles.count(Role.HQ) == 1 and roles.count(Role.AUDITOR) >= 3 and roles.count(Role.MANAGER) >= 2
    assert all(password_matches(u, "demo-password-2017") for u in users)
    for user in users:
        if user.role != Role.HQ:
            assert user.email == f"{user.role.value}.{user.unit.code}@evnnpc.vn"
    auditor_units = {u.unit_id for u in users if u.role == Role.AUDITOR}
    assert all(any(a.rater_unit_id == unit for a in assignments) for unit in auditor_units)


def test_demo_plants_the_cross_scoring_truth(app):
    result = demo.load_demo(seed=3)
    planted = result.planted
    assert planted is not None and planted.offset == demo.CROSS_OFFSET
    codes = dict(db.session.execute(sa.select(Unit.code, Unit.id)).tuples().all())
    consultant = {code: mean for code, (_, mean, _) in per_unit("2017", Source.CONSULTANT).items()}

    def cross_minus_consultant(where) -> float:
        rows = db.session.execute(
            sa.select(Unit.code, sa.func.avg(Response.respondent_index))
            .join(Unit, Unit.id == Response.unit_id)
            .where(Response.source == Source.CROSS, where)
            .group_by(Unit.code)
        ).all()
        return sum(mean - consultant[code] for code, mean in rows) / len(rows)

    lenient = cross_minus_consultant(Response.rater_unit_id == codes[planted.lenient[0]])
    harsh = cross_minus_consultant(Response.rater_unit_id == codes[planted.harsh[0]])
    assert lenient - harsh == pytest.approx(demo.LENIENT - demo.HARSH, abs=0.5)
    (up, _), (down, _) = planted.different
    assert cross_minus_consultant(Response.unit_id == codes[up]) - cross_minus_consultant(
        Response.unit_id == codes[down]) == pytest.approx(2 * demo.UNIT_DIFFERENCE, abs=0.9)
    plain = [code for code in consultant if code not in {up, down}]
    offset = cross_minus_consultant(Response.unit_id.in_([codes[c] for c in plain]))
    assert offset == pytest.approx(demo.CROSS_OFFSET, abs=0.2)


def test_same_seed_same_data(app, monkeypatch):
    monkeypatch.setitem(demo.CONSULTANT_PER_UNIT, "2016", 5)
    monkeypatch.setitem(demo.CONSULTANT_PER_UNIT, "2017", 12)
    demo.load_demo(seed=42)
    first = fingerprint()
    empty_tables()
    demo.load_demo(seed=42)
    assert fingerprint() == first
    empty_tables()
    demo.load_demo(seed=43)
    assert fingerprint() != first


def test_if_empty_leaves_a_filled_database_alone(runner, make_units):
    make_units(2)
    skipped = runner.invoke(args=["demo", "--if-empty"])
    assert skipped.exit_code == 0
    assert "already has data" in skipped.stdout
    refused = runner.invoke(args=["demo"])
    assert refused.exit_code == 1
    assert "the demo only fills an empty database" in refused.stderr
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Unit)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


def test_a_failure_after_the_assignments_leaves_the_database_empty(runner, monkeypatch):
    monkeypatch.setitem(demo.CONSULTANT_PER_UNIT, "2016", 3)
    monkeypatch.setitem(demo.CONSULTANT_PER_UNIT, "2017", 3)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(demo, "_cross", broken)
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0
    db.session.remove()
    assert demo.database_is_empty()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0
    monkeypatch.undo()
    again = runner.invoke(args=["demo", "--if-empty", "--seed", "1"])
    assert again.exit_code == 0, again.output
    assert "Loaded 27 units" in again.stdout


def test_bad_seed_is_refused(runner):
    result = runner.invoke(args=["demo", "--seed", "-1"])
    assert result.exit_code == 1
    assert "--seed -1 is out of range" in result.stderr
    assert demo.database_is_empty()
