"""Cross-scoring assignments: who audits whom, the interview quota, submitting and reopening."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import random
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased, contains_eager

from scoring import planning

from ..extensions import db
from ..models import Assignment, AssignmentStatus, Campaign, CampaignStatus, Response, Unit, User, utcnow
from . import audit
from .i18n import translate as _



class AssignmentError(ValueError):
    """A request about assignments that cannot be met; the message says why and what to do."""


def assignment_snapshot(assignment: Assignment) -> dict[str, Any]:
    """The fields of an assignment that the audit trail records before and after a change."""
    return {
        "campaign_id": assignment.campaign_id,
        "rater_unit_id": assignment.rater_unit_id,
        "ratee_unit_id": assignment.ratee_unit_id,
        "quota": assignment.quota,
        "due_on": assignment.due_on.isoformat() if assignment.due_on is not None else None,
        "status": str(assignment.status),
        "submitted_at": _iso(assignment.submitted_at),
        "reopen_reason": assignment.reopen_reason,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds") if value is not None else None


def submit_assignment(assignment: Assignment, user: User | None) -> Assignment:
    """Lock an open assignment (status submitted, submitted_at now), with an audit event, and commit."""
    before = assignment_snapshot(assignment)
    now = utcnow()
    # A conditional update, so two submits racing on different workers lock it exactly once.
    changed = db.session.execute(
        sa.update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == AssignmentStatus.OPEN)
        .values(status=AssignmentStatus.SUBMITTED, submitted_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise AssignmentError(_("This assignment was already submitted; ask headquarters to reopen it."))
    db.session.refresh(assignment)
    audit.record("submit", "assignment", assignment.id, before=before, after=assignment_snapshot(assignment), user=user)
    db.session.commit()
    return assignment


def reopen_assignment(assignment: Assignment, reason: str, user: User | None) -> Assignment:
    """Open a submitted assignment again (HQ), keeping the reason, with an audit event, and commit."""
    reason = (reason or "").strip()
    if not reason:
        raise AssignmentError(_("Give the reason for reopening the assignment."))
    if len(reason) > 2000:
        raise AssignmentError(_("The reason is too long; keep it under 2000 characters."))
    before = assignment_snapshot(assignment)
    changed = db.session.execute(
        sa.update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == AssignmentStatus.SUBMITTED)
        .values(status=AssignmentStatus.OPEN, submitted_at=None, reopen_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise AssignmentError(_("This assignment is open already; only a submitted assignment can be reopened."))
    db.session.refresh(assignment)
    audit.record("reopen", "assignment", assignment.id, before=before, after=assignment_snapshot(assignment), user=user)
    db.session.commit()
    return assignment


# --- The design: who audits whom -------------------------------------------------------------

#: Fresh starts of the search for a design that shares few pairs with the last campaign.
RESTARTS = 12
#: Swaps tried per start, per unit.
STEPS_PER_UNIT = 60


def max_raters_per_unit(n_units: int) -> int:
    """The largest k that n units can meet: no self-scoring and no reciprocal pair need 2k + 1 ≤ n.

    Each unordered pair of units can carry at most one assignment (never both A→B and B→A), so
    the n·k assignments of a k-regular design fit into n(n−1)/2 pairs only when k ≤ (n−1)/2.
    The circulant construction below reaches that bound, so it is also sufficient.
    """
    return max((n_units - 1) // 2, 0)


def plan_assignments(
    unit_codes: Sequence[str],
    raters_per_unit: int,
    *,
    seed: int | None = None,
    avoid: Collection[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Pairs (rater, ratee): each unit scored by k others and scoring k others, no self, no reciprocal pair.

    Units are placed on a circle in a random order and unit i audits the units at offsets
    d_1..d_k ahead of it, with every offset in 1..(n−1)/2 so that d and n−d are never both used.
    When ``avoid`` (last campaign's pairs) is given, units are swapped on the circle to share as
    few pairs with it as possible, from a few random starts. Everything random comes from ``seed``.
    Raises AssignmentError when the request cannot be met.
    """
    codes = sorted(set(unit_codes))
    if len(codes) != len(unit_codes):
        raise AssignmentError(_("A unit is listed twice; give each unit once."))
    n = len(codes)
    k = raters_per_unit
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AssignmentError(_("The number of auditing units per unit must be a whole number of at least 1."))
    if 2 * k + 1 > n:
        raise AssignmentError(
            _(
                "%(n)s units cannot each be scored by %(k)s other units without a unit scoring itself or two "
                "units scoring each other (that needs at least %(needed)s units); use at most %(most)s.",
                n=n,
                k=k,
                needed=2 * k + 1,
                most=max_raters_per_unit(n),
            )
        )
    rng = random.Random(seed)
    avoided = {(str(rater), str(ratee)) for rater, ratee in avoid}
    all_offsets = list(range(1, (n - 1) // 2 + 1))
    best_order: list[str] = []
    best_offsets: list[int] = []
    best_cost: int | None = None
    for _start in range(RESTARTS):
        order = codes[:]
        rng.shuffle(order)
        offsets = rng.sample(all_offsets, k)
        cost = _improve(order, offsets, avoided, rng) if avoided else 0
        if best_cost is None or cost < best_cost:
            best_order, best_offsets, best_cost = order, offsets, cost
        # A design without last year's pairs is good enough; the reverse direction only broke ties.
        if cost < 1000:
            break
    return sorted((best_order[i], best_order[(i + d) % n]) for i in range(n) for d in best_offsets)


def _improve(order: list[str], offsets: list[int], avoided: set[tuple[str, str]], rng: random.Random) -> int:
    """Swap units on the circle (the design stays valid) while that does not raise the overlap with ``avoided``.

    The same direction as last year costs most; the reverse direction only breaks ties. Returns the final cost.
    """
    n = len(order)

    def arc_cost(source: int, target: int) -> int:
        rater, ratee = order[source], order[target]
        return 1000 * ((rater, ratee) in avoided) + ((ratee, rater) in avoided)

    def arcs_at(*positions: int) -> set[tuple[int, int]]:
        return {arc for p in positions for d in offsets for arc in ((p, (p + d) % n), ((p - d) % n, p))}

    cost = sum(arc_cost(i, (i + d) % n) for i in range(n) for d in offsets)
    for _step in range(STEPS_PER_UNIT * n):
        if cost == 0:
            break
        p, q = rng.sample(range(n), 2)
        touched = arcs_at(p, q)
        before = sum(arc_cost(*arc) for arc in touched)
        order[p], order[q] = order[q], order[p]
        after = sum(arc_cost(*arc) for arc in touched)
        if after <= before:
            cost += after - before
        else:
            order[p], order[q] = order[q], order[p]
    return cost


def possible_raters(assignment: Assignment) -> list[Unit]:
    """Units that could audit this assignment's scored unit (every unit but itself), by code."""
    return list(db.session.scalars(sa.select(Unit).where(Unit.id != assignment.ratee_unit_id).order_by(Unit.code)))


def has_assignments(campaign: Campaign) -> bool:
    """True when the campaign has any assignment."""
    return bool(db.session.scalar(sa.select(sa.exists().where(Assignment.campaign_id == campaign.id))))


def work_started(assignment: Assignment) -> bool:
    """True once an assignment has responses or was submitted: from then on HQ may not change it."""
    if assignment.status == AssignmentStatus.SUBMITTED:
        return True
    return db.session.scalar(sa.select(sa.exists().where(Response.assignment_id == assignment.id))) or False


def previous_pairs(campaign: Campaign) -> set[tuple[str, str]]:
    """The (rater, ratee) unit codes of the previous campaign's assignments."""
    if campaign.previous_campaign_id is None:
        return set()
    rater, ratee = aliased(Unit), aliased(Unit)
    rows = db.session.execute(
        sa.select(rater.code, ratee.code)
        .select_from(Assignment)
        .join(rater, Assignment.rater_unit_id == rater.id)
        .join(ratee, Assignment.ratee_unit_id == ratee.id)
        .where(Assignment.campaign_id == campaign.previous_campaign_id)
    )
    return {(a, b) for a, b in rows}


#: More interviews than this for one pair is a typing mistake, not a plan.
MAX_QUOTA = 5000


def _check_quota(quota: Any) -> int:
    if isinstance(quota, bool) or not isinstance(quota, int) or not 0 <= quota <= MAX_QUOTA:
        raise AssignmentError(_("The quota must be a whole number from 0 to %(most)s.", most=MAX_QUOTA))
    return quota


def create_assignments(
    campaign: Campaign,
    raters_per_unit: int = 2,
    quota: int = 30,
    seed: int | None = None,
    user: User | None = None,
    *,
    due_on: dt.date | None = None,
    actor: str | None = None,
) -> list[Assignment]:
    """Generate the campaign's assignments for all units, replacing the old ones if no work has started.

    Every created and deleted assignment gets an audit event; the transaction is committed.
    """
    _check_quota(quota)
    if campaign.status == CampaignStatus.CLOSED:
        raise AssignmentError(_("The campaign is closed; its assignments can no longer change."))
    try:
        existing, pairs = _replaceable_and_plan(campaign, raters_per_unit, seed)
    except AssignmentError:
        db.session.rollback()
        raise
    units = {unit.code: unit for unit in db.session.scalars(sa.select(Unit))}
    for old in existing:
        audit.record("delete", "assignment", old.id, before=assignment_snapshot(old), user=user, actor=actor)
        db.session.delete(old)
    db.session.flush()
    created = [
        Assignment(
            campaign_id=campaign.id,
            rater_unit_id=units[rater].id,
            ratee_unit_id=units[ratee].id,
            quota=quota,
            due_on=due_on,
            status=AssignmentStatus.OPEN,
        )
        for rater, ratee in pairs
    ]
    db.session.add_all(created)
    db.session.flush()
    for assignment in created:
        audit.record(
            "create", "assignment", assignment.id, after=assignment_snapshot(assignment), user=user, actor=actor
        )
    audit.record(
        "generate_assignments",
        "campaign",
        campaign.id,
        after={"raters_per_unit": raters_per_unit, "quota": quota, "seed": seed, "assignments": len(created)},
        user=user,
        actor=actor,
    )
    db.session.commit()
    return created


def _replaceable_and_plan(
    campaign: Campaign, raters_per_unit: int, seed: int | None
) -> tuple[list[Assignment], list[tuple[str, str]]]:
    """The campaign's current assignments (locked; refused once work started) and the new design."""
    # Locked, so an interview stored meanwhile (it key-share locks its assignment) waits or is seen below.
    existing = list(
        db.session.scalars(
            sa.select(Assignment).where(Assignment.campaign_id == campaign.id).order_by(Assignment.id).with_for_update()
        )
    )
    started = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Assignment)
        .where(
            Assignment.campaign_id == campaign.id,
            sa.or_(
                Assignment.status == AssignmentStatus.SUBMITTED,
                sa.exists().where(Response.assignment_id == Assignment.id),
            ),
        )
    )
    if started:
        raise AssignmentError(
            _(
                "Work has started on %(count)s assignments of this campaign, so they cannot be replaced; "
                "change single assignments that have not started instead.",
                count=started,
            )
        )
    codes = list(db.session.scalars(sa.select(Unit.code)))
    return existing, plan_assignments(codes, raters_per_unit, seed=seed, avoid=previous_pairs(campaign))


_UNSET: Any = object()


def update_assignment(
    assignment: Assignment,
    *,
    quota: int | None = None,
    due_on: dt.date | None = _UNSET,
    rater_unit: Unit | None = None,
    user: User | None = None,
) -> Assignment:
    """Change an assignment's quota, due date or auditing unit (HQ) until work on it starts; commit."""
    if quota is not None:
        _check_quota(quota)
    if assignment.campaign.status == CampaignStatus.CLOSED:
        raise AssignmentError(_("The campaign is closed; its assignments can no longer change."))
    # Lock the row first: on PostgreSQL an interview being stored holds a key-share lock on it,
    # so the check below cannot miss one that commits in between.
    assignment = db.session.execute(
        sa.select(Assignment)
        .where(Assignment.id == assignment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if work_started(assignment):
        db.session.rollback()
        raise AssignmentError(
            _("Work on this assignment has started (responses entered or submitted), so it can no longer change.")
        )
    before = assignment_snapshot(assignment)
    if quota is not None:
        assignment.quota = quota
    if due_on is not _UNSET:
        assignment.due_on = due_on
    if rater_unit is not None and rater_unit.id != assignment.rater_unit_id:
        try:
            _check_swap(assignment, rater_unit)
        except AssignmentError:
            db.session.rollback()
            raise
        assignment.rater_unit_id = rater_unit.id
    after = assignment_snapshot(assignment)
    if after == before:
        db.session.rollback()  # nothing to change; release the lock
        return assignment
    db.session.flush()
    audit.record("edit", "assignment", assignment.id, before=before, after=after, user=user)
    db.session.commit()
    return assignment


def _check_swap(assignment: Assignment, rater_unit: Unit) -> None:
    """A new auditing unit may not be the scored unit, nor already audit it, nor be audited by it."""
    if rater_unit.id == assignment.ratee_unit_id:
        raise AssignmentError(_("A unit never scores itself; choose another auditing unit."))
    new, ratee = rater_unit.id, assignment.ratee_unit_id
    clash = db.session.scalar(
        sa.select(Assignment.id).where(
            Assignment.campaign_id == assignment.campaign_id,
            Assignment.id != assignment.id,
            sa.or_(
                sa.and_(Assignment.rater_unit_id == new, Assignment.ratee_unit_id == ratee),
                sa.and_(Assignment.rater_unit_id == ratee, Assignment.ratee_unit_id == new),
            ),
        )
    )
    if clash is not None:
        raise AssignmentError(
            _(
                "%(rater)s already scores this unit or is scored by it in this campaign; choose another auditing unit.",
                rater=rater_unit.code,
            )
        )


def campaign_assignments(campaign: Campaign) -> list[Assignment]:
    """The campaign's assignments with their units, ordered by auditing unit then scored unit."""
    rater, ratee = aliased(Unit), aliased(Unit)
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .join(rater, Assignment.rater_unit_id == rater.id)
            .join(ratee, Assignment.ratee_unit_id == ratee.id)
            .where(Assignment.campaign_id == campaign.id)
            .options(contains_eager(Assignment.rater_unit, alias=rater))
            .options(contains_eager(Assignment.ratee_unit, alias=ratee))
            .order_by(rater.code, ratee.code)
        )
    )


# --- The recommended design (planning.sample_size_per_unit and planning.design_advice) -------------

#: Interviews the consultant makes per unit (DESIGN.md), the reference the cross sample is compared with.
CONSULTANT_N = 380
#: Spread of respondent indices assumed for planning (points on the 10-point scale).
PLANNING_SD = 1.2
_advice_lock = threading.Lock()
_advice_running: set[str] = set()


@dataclass(frozen=True)
class DesignRecommendation:
    """What the assignments page recommends: the bound on k, interviews needed, and the simulated best k."""

    units: int
    max_raters_per_unit: int
    cross_per_unit: int | None  # cross interviews per scored unit to detect a difference of the margin
    raters_per_unit: int | None
    quota: int | None
    rows: tuple[planning.DesignRow, ...] = ()
    simulated: bool = False
    pending: bool = False


def recommended_design(campaign: Campaign) -> DesignRecommendation:
    """The design to suggest for the campaign, fast: the simulation runs in the background and is cached on disk."""
    n_units = db.session.scalar(sa.select(sa.func.count()).select_from(Unit)) or 0
    most = max_raters_per_unit(n_units)
    try:
        needed = planning.sample_size_per_unit(difference=campaign.margin, sd=PLANNING_SD, consultant_n=CONSULTANT_N)
    except ValueError:
        needed = None
    options = tuple(k for k in (2, 3, 4) if k <= most and k < n_units // 2)
    if needed is None or not options:
        return DesignRecommendation(n_units, most, needed, min(2, most) or None, None)
    key = f"{n_units}-{needed}-{'-'.join(map(str, options))}-{_replicates()}"
    cached = _cached_advice(key)
    if cached is not None:
        best = next(row for row in cached.rows if row.raters_per_unit == cached.recommended_k)
        return DesignRecommendation(
            n_units, most, needed, best.raters_per_unit, best.quota, cached.rows, simulated=True
        )
    pending = _start_simulation(key, needed, options, n_units)
    k = options[0]
    return DesignRecommendation(n_units, most, needed, k, -(-needed // k), pending=pending)


def _replicates() -> int:
    return int(current_app.config.get("DESIGN_SIMULATION_REPLICATES", 20))


def _advice_path(key: str) -> Path:
    return Path(current_app.instance_path) / "design-advice" / f"{key}.json"


def _cached_advice(key: str) -> planning.DesignAdvice | None:
    """A finished simulation for these parameters, from the instance folder (shared by the workers of a host)."""
    path = _advice_path(key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = tuple(planning.DesignRow(**row) for row in data["rows"])
        return planning.DesignAdvice(rows, data["recommended_k"], data["budget_per_unit"], data["replicates"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _start_simulation(key: str, budget: int, options: tuple[int, ...], n_units: int) -> bool:
    """Run planning.design_advice in a background thread, once per parameters and process; False when switched off."""
    # The simulation takes minutes; tests and short-lived processes switch it off.
    if not current_app.config.get("DESIGN_SIMULATION", not current_app.testing):
        return False
    path = _advice_path(key)
    replicates = _replicates()
    with _advice_lock:
        if key in _advice_running:
            return True
        _advice_running.add(key)

    def run() -> None:
        try:
            advice = planning.design_advice(
                budget_per_unit=budget, raters_options=options, n_units=n_units, replicates=replicates
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(dataclasses.asdict(advice)), encoding="utf-8")
            partial.replace(path)
        except Exception:  # noqa: BLE001  (a failed simulation only means no advice; the page still works)
            logging.getLogger(__name__).exception("design simulation %s failed", key)
        finally:
            with _advice_lock:
                _advice_running.discard(key)

    threading.Thread(target=run, name=f"design-advice-{key}", daemon=True).start()
    return True
