"""Per-unit quotas of a campaign: consultant responses and cross interviews, and the sample size that plans them.

A unit's cross quota is spread over the assignments that score it (evenly, the remainder to the
first ones), so the assignments page and the auditors' progress bars follow the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scoring import planning

from ..extensions import db
from ..models import Assignment, Campaign, CampaignStatus, CampaignUnitQuota, Response, Source, Unit, User
from . import audit
from .aggregates import exact_sum
from .i18n import translate as _
from .assignments import CONSULTANT_N, MAX_QUOTA, PLANNING_SD, assignment_snapshot, work_started

#: A unit's quota above this is a typing error, not a plan (the whole province's sample, many times over).
MAX_UNIT_QUOTA = 20_000
#: Complete respondents needed before their spread is trusted over an assumed one.
MIN_RESPONDENTS_FOR_SD = 30



class QuotaError(ValueError):
    """Quotas that cannot be saved as asked; nothing was saved. The message says why and what to do."""


@dataclass(frozen=True)
class UnitQuota:
    """One unit's quotas in a campaign, with the number of assignments that score it."""

    unit_id: int
    unit_code: str
    unit_name: str
    consultant_quota: int
    cross_quota: int
    assignments: int


def unit_quotas(campaign: Campaign, locale: str = "vi") -> list[UnitQuota]:
    """Every unit with its quotas in the campaign, in unit-code order.

    Where none is set yet, the consultant quota is 0 and the cross quota the sum of the unit's assignment quotas.
    """
    per_ratee = (
        sa.select(Assignment.ratee_unit_id, sa.func.count().label("n"), sa.func.sum(Assignment.quota).label("quota"))
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.ratee_unit_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            Unit.id,
            Unit.code,
            Unit.name_en if locale == "en" else Unit.name_vi,
            sa.func.coalesce(CampaignUnitQuota.consultant_quota, 0),
            # Until HQ sets it, a unit's cross quota is what its assignments add up to.
            sa.func.coalesce(CampaignUnitQuota.cross_quota, per_ratee.c.quota, 0),
            sa.func.coalesce(per_ratee.c.n, 0),
        )
        .outerjoin(
            CampaignUnitQuota,
            sa.and_(CampaignUnitQuota.unit_id == Unit.id, CampaignUnitQuota.campaign_id == campaign.id),
        )
        .outerjoin(per_ratee, per_ratee.c.ratee_unit_id == Unit.id)
        .order_by(Unit.code)
    ).all()
    return [UnitQuota(uid, code, name, int(c), int(x), int(n)) for uid, code, name, c, x, n in rows]


def check_quota(value: Any) -> int:
    """A quota as a whole number from 0 to MAX_UNIT_QUOTA, or QuotaError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIT_QUOTA:
        raise QuotaError(_("A quota must be a whole number from 0 to %(most)s.", most=MAX_UNIT_QUOTA))
    return value


def split_quota(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as whole numbers allow, the remainder to the first parts."""
    if parts <= 0:
        return []
    base, remainder = divmod(total, parts)
    return [base + (1 if position < remainder else 0) for position in range(parts)]


@dataclass(frozen=True)
class SavedQuotas:
    """What saving changed: units whose quotas changed, and assignments whose quota followed."""

    units: int
    assignments: int


def save_quotas(campaign: Campaign, quotas: Mapping[int, tuple[int, int]], user: User | None = None) -> SavedQuotas:
    """Store {unit id: (consultant quota, cross quota)} for the campaign, all or nothing; audit; commit.

    Each changed cross quota is spread over the unit's assignments. Raises QuotaError (nothing
    saved) for a bad value, an unknown unit, a closed campaign, a spread that would give an
    assignment more than the assignment limit, or an assignment whose work has started.
    """
    if campaign.status == CampaignStatus.CLOSED:
        raise QuotaError(_("The campaign is closed; its quotas can no longer change."))
    for consultant, cross in quotas.values():
        check_quota(consultant)
        check_quota(cross)
    units = {unit.id: unit for unit in db.session.scalars(sa.select(Unit).where(Unit.id.in_(list(quotas))))}
    if set(quotas) - set(units):
        raise QuotaError(_("Unknown unit in the quotas; reload the page and try again."))
    current = {
        row.unit_id: row
        for row in db.session.scalars(sa.select(CampaignUnitQuota).where(CampaignUnitQuota.campaign_id == campaign.id))
    }
    assignments: dict[int, list[Assignment]] = {}
    for assignment in db.session.scalars(
        sa.select(Assignment).where(Assignment.campaign_id == campaign.id).order_by(Assignment.id)
    ):
        assignments.setdefault(assignment.ratee_unit_id, []).append(assignment)

    # Check everything before changing anything.
    changes: list[tuple[Assignment, int]] = []
    for unit_id, (_consultant, cross) in sorted(quotas.items()):
        old = current.get(unit_id)
        of_unit = assignments.get(unit_id, [])
        # Spread a cross quota only when HQ changed it: quotas set on the assignments page stay as they are.
        unchanged = old.cross_quota if old is not None else sum(assignment.quota for assignment in of_unit)
        if cross == unchanged:
            continue
        for assignment, share in zip(of_unit, split_quota(cross, len(of_unit)), strict=True):
            if share > MAX_QUOTA:
                raise QuotaError(
                    _("%(unit)s: %(n)s cross interviews over %(k)s assignments is more than %(most)s per assignment.",
                      unit=units[unit_id].code, n=cross, k=len(of_unit), most=MAX_QUOTA)
                )
            if share != assignment.quota:
                if work_started(assignment):
                    raise QuotaError(
                        _("%(unit)s: work on the assignment of %(rater)s has started, so its quota can no longer "
                          "change; keep this unit's cross quota as it is.",
                          unit=units[unit_id].code, rater=assignment.rater_unit.code)
                    )
                changes.append((assignment, share))

    changed_units = 0
    for unit_id, (consultant, cross) in sorted(quotas.items()):
        old = current.get(unit_id)
        before = None if old is None else {"consultant_quota": old.consultant_quota, "cross_quota": old.cross_quota}
        after = {"consultant_quota": consultant, "cross_quota": cross}
        if before == after or (before is None and consultant == 0 and cross == 0):
            continue
        if old is None:
            db.session.add(
                CampaignUnitQuota(campaign_id=campaign.id, unit_id=unit_id, consultant_quota=consultant,
                                  cross_quota=cross)
            )
        else:
            old.consultant_quota, old.cross_quota = consultant, cross
        changed_units += 1
        audit.record("edit", "campaign_unit_quota", f"{campaign.code}/{units[unit_id].code}", before=before,
                     after=after, user=user)
    for assignment, share in changes:
        before_assignment = assignment_snapshot(assignment)
        assignment.quota = share
        audit.record("edit", "assignment", assignment.id, before=before_assignment,
                     after=assignment_snapshot(assignment), user=user)
    db.session.commit()
    return SavedQuotas(changed_units, len(changes))


# --- Planning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RespondentSpread:
    """The respondent standard deviation used for planning, and where it comes from."""

    sd: float
    #: "campaign" (this campaign's consultant data), "previous" (the previous campaign's), or "assumed".
    basis: str
    respondents: int = 0
    campaign_code: str | None = None


def pooled_unit_sd(campaign_id: int) -> tuple[float, int] | None:
    """Pooled within-unit SD of the consultant respondents' indices, and their number; None when too few.

    Sums per unit come from SQL (GROUP BY); the pooled variance is Σ(Σx² − (Σx)²/n) / (N − units).
    """
    rows = db.session.execute(
        sa.select(
            sa.func.count(Response.respondent_index),
            exact_sum(Response.respondent_index),
            exact_sum(Response.respondent_index * Response.respondent_index),
        )
        .where(
            Response.campaign_id == campaign_id,
            Response.source == Source.CONSULTANT,
            Response.respondent_index.is_not(None),
        )
        .group_by(Response.unit_id)
    ).all()
    total = sum(int(n) for n, _s, _q in rows)
    freedom = total - len(rows)
    if total < MIN_RESPONDENTS_FOR_SD or freedom < 1:
        return None
    within = sum(float(squares) - float(sums) ** 2 / int(n) for n, sums, squares in rows if n)
    variance = max(within, 0.0) / freedom
    if not math.isfinite(variance) or variance <= 0:
        return None
    return math.sqrt(variance), total


def respondent_spread(campaign: Campaign) -> RespondentSpread:
    """The SD to plan with: this campaign's consultant data if enough, else the previous campaign's, else 1.2."""
    own = pooled_unit_sd(campaign.id)
    if own is not None:
        return RespondentSpread(own[0], "campaign", own[1], campaign.code)
    previous = campaign.previous_campaign
    if previous is not None:
        theirs = pooled_unit_sd(previous.id)
        if theirs is not None:
            return RespondentSpread(theirs[0], "previous", theirs[1], previous.code)
    return RespondentSpread(PLANNING_SD, "assumed")


@dataclass(frozen=True)
class SampleSizePlan:
    """Interviews per unit that detect ``difference`` with ``power`` at ``alpha``, given the spread."""

    difference: float
    power: float
    alpha: float
    consultant_n: int | None
    spread: RespondentSpread
    #: Cross interviews per unit; None when no number of them reaches the power.
    cross_n: int | None

    @property
    def consultant_quota(self) -> int | None:
        """The consultant's responses per unit the plan assumes (equal to the cross number when none is given)."""
        return self.consultant_n if self.consultant_n is not None else self.cross_n


def plan_sample_size(
    campaign: Campaign, *, difference: float, power: float, alpha: float, consultant_n: int | None = CONSULTANT_N
) -> SampleSizePlan:
    """Cross interviews per unit with scoring's power calculation, on the respondent spread observed."""
    spread = respondent_spread(campaign)
    n = planning.sample_size_per_unit(
        difference=difference, sd=spread.sd, power=power, alpha=alpha, consultant_n=consultant_n
    )
    return SampleSizePlan(difference, power, alpha, consultant_n, spread, n)
