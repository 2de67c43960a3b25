"""Cross-scoring progress: interviews entered against quota, per assignment, scored unit and auditing unit.

Everything is counted in SQL (GROUP BY); a campaign's responses are never loaded to count them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignUnitQuota,
    Channel,
    Invitation,
    ReviewState,
    Response,
    Source,
    Unit,
)

#: Due dates are days in Vietnam.
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def local_today() -> dt.date:
    """Today's date in Vietnam."""
    return dt.datetime.now(LOCAL_ZONE).date()


@dataclass(frozen=True)
class AssignmentProgress:
    """One assignment's interviews (rejected ones excluded) against its quota."""

    assignment_id: int
    rater_code: str
    rater_name: str
    ratee_code: str
    ratee_name: str
    quota: int
    entered: int
    approved: int
    rejected: int
    due_on: dt.date | None
    status: AssignmentStatus
    late: bool
    empty: bool

    @property
    def complete(self) -> bool:
        return self.entered >= self.quota

    @property
    def percent(self) -> int:
        return 100 if self.quota == 0 else min(100, round(100 * self.entered / self.quota))


@dataclass(frozen=True)
class UnitProgress:
    """A unit's totals, as the scored unit or as the auditing unit."""

    unit_code: str
    unit_name: str
    assignments: int
    quota: int
    entered: int
    late: int
    empty: int

    @property
    def percent(self) -> int:
        return 100 if self.quota == 0 else min(100, round(100 * self.entered / self.quota))


@dataclass(frozen=True)
class CampaignProgress:
    assignments: list[AssignmentProgress]
    by_ratee: list[UnitProgress]
    by_rater: list[UnitProgress]
    quota: int
    entered: int
    late: int
    empty: int


def _count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """Rows of the group meeting ``condition`` (0 for an assignment without responses)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _per_assignment(campaign: Campaign, today: dt.date) -> sa.Subquery:
    """One row per assignment with its counts and late/empty flags, computed in SQL."""
    entered = _count_where(Response.review_state != ReviewState.REJECTED)
    late = sa.and_(
        Assignment.due_on.is_not(None),
        Assignment.due_on < today,
        Assignment.status == AssignmentStatus.OPEN,
        entered < Assignment.quota,
    )
    return (
        sa.select(
            Assignment.id.label("assignment_id"),
            Assignment.rater_unit_id,
            Assignment.ratee_unit_id,
            Assignment.quota,
            Assignment.due_on,
            Assignment.status,
            entered.label("entered"),
            _count_where(Response.review_state == ReviewState.APPROVED).label("approved"),
            _count_where(Response.review_state == ReviewState.REJECTED).label("rejected"),
            sa.case((late, 1), else_=0).label("late"),
            sa.case((entered == 0, 1), else_=0).label("empty"),
        )
        .select_from(Assignment)
        .outerjoin(Response, sa.and_(Response.assignment_id == Assignment.id, Response.source == Source.CROSS))
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.id, Assignment.rater_unit_id, Assignment.ratee_unit_id, Assignment.quota,
                  Assignment.due_on, Assignment.status)
        .subquery("per_assignment")
    )


def _unit_name(unit: Any, locale: str) -> sa.ColumnElement[str]:
    return unit.name_en if locale == "en" else unit.name_vi


def campaign_progress(campaign: Campaign, *, today: dt.date | None = None, locale: str = "vi") -> CampaignProgress:
    """Progress of the campaign's cross-scoring; late and empty assignments (and units) sort first."""
    today = today or local_today()
    per = _per_assignment(campaign, today)
    rater, ratee = aliased(Unit), aliased(Unit)
    rows = db.session.execute(
        sa.select(
            per,
            rater.code.label("rater_code"),
            _unit_name(rater, locale).label("rater_name"),
            ratee.code.label("ratee_code"),
            _unit_name(ratee, locale).label("ratee_name"),
        )
        .join(rater, per.c.rater_unit_id == rater.id)
        .join(ratee, per.c.ratee_unit_id == ratee.id)
        .order_by(per.c.late.desc(), per.c.empty.desc(), rater.code, ratee.code)
    ).all()
    assignments = [
        AssignmentProgress(
            assignment_id=row.assignment_id,
            rater_code=row.rater_code,
            rater_name=row.rater_name,
            ratee_code=row.ratee_code,
            ratee_name=row.ratee_name,
            quota=row.quota,
            entered=int(row.entered),
            approved=int(row.approved),
            rejected=int(row.rejected),
            due_on=row.due_on,
            status=AssignmentStatus(row.status),
            late=bool(row.late),
            empty=bool(row.empty),
        )
        for row in rows
    ]
    totals = db.session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(per.c.quota), 0),
            sa.func.coalesce(sa.func.sum(per.c.entered), 0),
            sa.func.coalesce(sa.func.sum(per.c.late), 0),
            sa.func.coalesce(sa.func.sum(per.c.empty), 0),
        )
    ).one()
    return CampaignProgress(
        assignments=assignments,
        by_ratee=_by_unit(per, per.c.ratee_unit_id, locale),
        by_rater=_by_unit(per, per.c.rater_unit_id, locale),
        quota=int(totals[0]),
        entered=int(totals[1]),
        late=int(totals[2]),
        empty=int(totals[3]),
    )


def _by_unit(per: sa.Subquery, unit_column: sa.ColumnElement[int], locale: str) -> list[UnitProgress]:
    """Totals per unit over the per-assignment rows; units with late or empty work first."""
    late = sa.func.sum(per.c.late)
    empty = sa.func.sum(per.c.empty)
    rows = db.session.execute(
        sa.select(
            Unit.code,
            _unit_name(Unit, locale),
            sa.func.count(),
            sa.func.sum(per.c.quota),
            sa.func.sum(per.c.entered),
            late,
            empty,
        )
        .join(Unit, unit_column == Unit.id)
        .group_by(Unit.id, Unit.code, Unit.name_vi, Unit.name_en)
        .order_by(late.desc(), empty.desc(), Unit.code)
    )
    return [
        UnitProgress(code, name, int(n), int(quota or 0), int(entered or 0), int(late_n or 0), int(empty_n or 0))
        for code, name, n, quota, entered, late_n, empty_n in rows
    ]


@dataclass(frozen=True)
class ProgrammeCount:
    """One programme's responses in a unit against the unit's quota; ``expected`` is what the calendar asks by now."""

    quota: int
    done: int
    expected: int

    @property
    def percent(self) -> int:
        return 100 if self.quota == 0 else min(100, round(100 * self.done / self.quota))

    @property
    def behind(self) -> bool:
        return self.done < self.expected


@dataclass(frozen=True)
class UnitProgrammes:
    """A unit's progress in both programmes: consultant (web answers and imported interviews) and cross."""

    unit_code: str
    unit_name: str
    consultant: ProgrammeCount
    web: int
    imported: int
    invitations: int
    invitations_used: int
    cross: ProgrammeCount
    #: Sum of the quotas of the assignments scoring the unit.
    assignment_quota: int

    @property
    def behind(self) -> bool:
        return self.consultant.behind or self.cross.behind


@dataclass(frozen=True)
class ProgrammesProgress:
    """Both programmes per unit (units behind first) and the share of the campaign period elapsed."""

    units: list[UnitProgrammes]
    #: 0–1, or None when the campaign has no dates (then the whole quota is expected).
    elapsed: float | None
    consultant: ProgrammeCount
    cross: ProgrammeCount


def elapsed_share(campaign: Campaign, today: dt.date) -> float | None:
    """Share of the campaign period elapsed at the end of ``today`` (0–1); None without both dates."""
    if campaign.starts_on is None or campaign.ends_on is None:
        return None
    days = (campaign.ends_on - campaign.starts_on).days + 1
    done = (today - campaign.starts_on).days + 1
    return min(1.0, max(0.0, done / days))


def programmes_progress(campaign: Campaign, *, today: dt.date | None = None, locale: str = "vi") -> ProgrammesProgress:
    """Per unit: consultant responses (web, imported) and invitations, cross interviews, each against its quota.

    Counted in SQL with GROUP BY; a unit is behind when it has fewer responses than its quota
    times the share of the period elapsed (the whole quota when the campaign has no dates).
    """
    elapsed = elapsed_share(campaign, today or local_today())
    consultant = (
        sa.select(
            Response.unit_id,
            sa.func.count().label("done"),
            _count_where(Response.channel == Channel.WEB).label("web"),
            _count_where(Response.channel == Channel.IMPORT).label("imported"),
        )
        .where(Response.campaign_id == campaign.id, Response.source == Source.CONSULTANT)
        .group_by(Response.unit_id)
        .subquery("consultant")
    )
    cross = (
        sa.select(Response.unit_id, sa.func.count().label("done"))
        .where(
            Response.campaign_id == campaign.id,
            Response.source == Source.CROSS,
            Response.review_state != ReviewState.REJECTED,
        )
        .group_by(Response.unit_id)
        .subquery("cross_done")
    )
    invitations = (
        sa.select(
            Invitation.unit_id,
            sa.func.count().label("issued"),
            sa.func.count(Invitation.used_at).label("used"),
        )
        .where(Invitation.campaign_id == campaign.id)
        .group_by(Invitation.unit_id)
        .subquery("invitations")
    )
    assigned = (
        sa.select(Assignment.ratee_unit_id.label("unit_id"), sa.func.sum(Assignment.quota).label("quota"))
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.ratee_unit_id)
        .subquery("assigned")
    )
    zero = sa.literal(0)
    rows = db.session.execute(
        sa.select(
            Unit.code,
            _unit_name(Unit, locale),
            sa.func.coalesce(CampaignUnitQuota.consultant_quota, zero),
            sa.func.coalesce(consultant.c.done, zero),
            sa.func.coalesce(consultant.c.web, zero),
            sa.func.coalesce(consultant.c.imported, zero),
            sa.func.coalesce(invitations.c.issued, zero),
            sa.func.coalesce(invitations.c.used, zero),
            sa.func.coalesce(CampaignUnitQuota.cross_quota, assigned.c.quota, zero),
            sa.func.coalesce(cross.c.done, zero),
            sa.func.coalesce(assigned.c.quota, zero),
        )
        .outerjoin(
            CampaignUnitQuota,
            sa.and_(CampaignUnitQuota.unit_id == Unit.id, CampaignUnitQuota.campaign_id == campaign.id),
        )
        .outerjoin(consultant, consultant.c.unit_id == Unit.id)
        .outerjoin(cross, cross.c.unit_id == Unit.id)
        .outerjoin(invitations, invitations.c.unit_id == Unit.id)
        .outerjoin(assigned, assigned.c.unit_id == Unit.id)
        .order_by(Unit.code)
    ).all()

    def count(quota: int, done: int) -> ProgrammeCount:
        share = 1.0 if elapsed is None else elapsed
        return ProgrammeCount(int(quota), int(done), int(quota * share))

    units = [
        UnitProgrammes(
            unit_code=code,
            unit_name=name,
            consultant=count(c_quota, c_done),
            web=int(web),
            imported=int(imported),
            invitations=int(issued),
            invitations_used=int(used),
            cross=count(x_quota, x_done),
            assignment_quota=int(a_quota),
        )
        for code, name, c_quota, c_done, web, imported, issued, used, x_quota, x_done, a_quota in rows
    ]
    units.sort(key=lambda u: not u.behind)  # stable: behind first, each group in unit-code order
    return ProgrammesProgress(
        units=units,
        elapsed=elapsed,
        consultant=count(sum(u.consultant.quota for u in units), sum(u.consultant.done for u in units)),
        cross=count(sum(u.cross.quota for u in units), sum(u.cross.done for u in units)),
    )


@dataclass(frozen=True)
class CampaignLine:
    """A campaign with its number of assignments and cross responses, for the HQ home page."""

    campaign: Campaign
    assignments: int
    cross_responses: int


def campaign_overview() -> list[CampaignLine]:
    """Every campaign, newest first, with its assignment and cross-response counts (counted in SQL)."""
    assignments = (
        sa.select(Assignment.campaign_id, sa.func.count().label("n")).group_by(Assignment.campaign_id).subquery()
    )
    cross = (
        sa.select(Response.campaign_id, sa.func.count().label("n"))
        .where(Response.source == Source.CROSS)
        .group_by(Response.campaign_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(Campaign, sa.func.coalesce(assignments.c.n, 0), sa.func.coalesce(cross.c.n, 0))
        .outerjoin(assignments, assignments.c.campaign_id == Campaign.id)
        .outerjoin(cross, cross.c.campaign_id == Campaign.id)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
    ).all()
    return [CampaignLine(campaign, int(n_assignments), int(n_cross)) for campaign, n_assignments, n_cross in rows]
