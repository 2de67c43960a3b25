"""Demo data: the 27 units, a closed 2016 campaign and an open 2017 campaign with realistic synthetic answers.

Answers come from a latent satisfaction per respondent (the unit's mean, lower for business
customers, plus personal variation) plus an effect per item plus noise, rounded and clipped
to the scale, with about 3 % left blank (not applicable). The cross-scores carry planted
truth for the reconciliation to find: a campaign-wide offset, one lenient and one harsh
auditing unit, and two units whose cross-scores truly differ from the consultant's.

Everything is drawn from one ``numpy`` generator seeded with ``seed``: the same seed gives the
same data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from ..extensions import db
from ..models import (
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Campaign,
    CampaignStatus,
    Channel,
    CustomerGroup,
    Dimension,
    Invitation,
    Item,
    Questionnaire,
    Response,
    Role,
    Source,
    Unit,
    User,
    utcnow,
)
from . import audit
from .assignments import assignment_snapshot, create_assignments
from .campaigns import create_campaign
from .imports import Pseudonymiser, ResponseBatch, insert_in_batches, record_import
from .invitations import issue_invitations, survey_link
from .units import UNITS_CSV, read_units_csv, upsert_units
from .users import hash_password

DEFAULT_SEED = 2017
DEMO_PASSWORD = "demo-password-2017"
HQ_EMAIL = "hq@evnnpc.vn"
ACTOR = "demo"

CONSULTANT_PER_UNIT = {"2017": 380, "2016": 150}
HOUSEHOLD_SHARE = 0.85
NOT_APPLICABLE_SHARE = 0.03
#: Business customers are a little harder to please (points on the latent scale).
BUSINESS_EFFECT = -0.3
PERSON_SD = 0.8
ITEM_NOISE_SD = 0.9
#: How far each criterion sits from the respondent's overall satisfaction; price is the sore point.
DIMENSION_EFFECTS = {
    "supply": 0.1,
    "information": -0.1,
    "billing": 0.3,
    "service": 0.2,
    "image": 0.0,
    "price": -0.6,
    "community": 0.1,
}
OVERALL_2016 = 7.52

#: Cross-scoring: the truth the reconciliation should find.
CROSS_OFFSET = 0.25
LENIENT = 0.8
HARSH = -0.6
UNIT_DIFFERENCE = 0.9
RATERS_PER_UNIT = 2
CROSS_QUOTA = 40
CROSS_PER_ASSIGNMENT = (30, 50)

WEB_UNITS = 6
AUDITOR_UNITS = 5
MANAGER_UNITS = 3

#: The tables a demo fills; any row in one of them means the database is not empty.
DEMO_TABLES = (Unit, Questionnaire, Campaign, User, Invitation, Assignment, Response)


class DemoError(RuntimeError):
    """The demo cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Planted:
    """The cross-scoring truth built into the demo data."""

    offset: float
    lenient: tuple[str, float]
    harsh: tuple[str, float]
    different: tuple[tuple[str, float], ...]


@dataclass
class DemoResult:
    """What the demo loaded, for the command to print."""

    seed: int
    units: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    accounts: list[tuple[str, str, str | None]] = field(default_factory=list)
    password: str = DEMO_PASSWORD
    survey_links: list[str] = field(default_factory=list)
    planted: Planted | None = None
    assignments: int = 0


def database_is_empty() -> bool:
    """True when no unit, questionnaire, campaign, account, invitation, assignment or response exists."""
    return not any(db.session.scalar(sa.select(sa.exists().select_from(model))) for model in DEMO_TABLES)


def answer_matrix(
    rng: np.random.Generator, means: np.ndarray, item_effects: np.ndarray, scale: tuple[int, int]
) -> np.ndarray:
    """Answers (n × items, NaN = not applicable) around each respondent's mean satisfaction."""
    n, items = len(means), len(item_effects)
    latent = means + rng.normal(0.0, PERSON_SD, n)
    values = latent[:, None] + item_effects[None, :] + rng.normal(0.0, ITEM_NOISE_SD, (n, items))
    answers = np.clip(np.rint(values), scale[0], scale[1])
    answers[rng.random((n, items)) < NOT_APPLICABLE_SHARE] = np.nan
    return answers


def _groups(rng: np.random.Generator, n: int) -> np.ndarray:
    """0 for a household, 1 for a business customer."""
    return np.where(rng.random(n) < HOUSEHOLD_SHARE, 0, 1)


def _group_effect(groups: np.ndarray) -> np.ndarray:
    """Business customers score lower, households a little higher, so the unit's mean over both stays put."""
    return BUSINESS_EFFECT * (groups - (1 - HOUSEHOLD_SHARE))


GROUP_OF = (CustomerGroup.HOUSEHOLD.value, CustomerGroup.BUSINESS.value)


def load_demo(seed: int = DEFAULT_SEED, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Fill an empty database with the demo data and commit; raise DemoError if it is not empty.

    The cross-scoring assignments come from ``services.assignments.create_assignments``, which
    commits on its own; if a later step fails, the rows the demo wrote are deleted again so the
    database is left as empty as it was found.
    """
    if not database_is_empty():
        raise DemoError(
            "the database already has data; the demo only fills an empty database "
            "(point DATABASE_URL at a new one, or delete instance/survey.sqlite)"
        )
    audit_floor = db.session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
    step = progress or (lambda _label: None)
    try:
        return _load(seed, step)
    except BaseException:
        db.session.rollback()
        _remove_demo_rows(audit_floor)
        raise


def _load(seed: int, step: Callable[[str], None]) -> DemoResult:
    rng = np.random.default_rng(seed)
    result = DemoResult(seed=seed)
    pseudonymise = Pseudonymiser()

    step("units")
    added, _ = upsert_units(read_units_csv(UNITS_CSV.read_bytes()))
    db.session.flush()
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    result.units = added

    step("campaigns")
    previous = create_campaign(
        "2016",
        name_vi="Khảo sát mức độ hài lòng khách hàng 2016",
        name_en="Customer satisfaction survey 2016",
        target=7.5,
        margin=0.3,
        starts_on=dt.date(2016, 3, 1),
        ends_on=dt.date(2016, 11, 30),
        household_share=HOUSEHOLD_SHARE,
        status=CampaignStatus.CLOSED,
        actor=ACTOR,
        commit=False,
    )
    campaign = create_campaign(
        "2017",
        name_vi="Khảo sát mức độ hài lòng khách hàng 2017",
        name_en="Customer satisfaction survey 2017",
        target=7.5,
        margin=0.3,
        starts_on=dt.date(2017, 3, 1),
        ends_on=dt.date(2017, 11, 30),
        household_share=HOUSEHOLD_SHARE,
        previous_campaign=previous,
        actor=ACTOR,
        commit=False,
    )
    questionnaire = campaign.questionnaire
    scale = (questionnaire.scale_min, questionnaire.scale_max)
    item_effects = np.array(
        [DIMENSION_EFFECTS.get(d.code, 0.0) for d in questionnaire.dimensions for _ in d.items]
    ) + rng.normal(0.0, 0.15, len(questionnaire.items))
    # Centre the effects with each item's weight in the index, so a unit's mean index stays its planned mean.
    weights = np.array([d.weight / len(d.items) for d in questionnaire.dimensions for _ in d.items])
    item_effects -= np.average(item_effects, weights=weights)

    # 2017's unit means spread evenly over 7.0–8.3; 2016 a little lower, centred on the published 7.52.
    n_units = len(units)
    means_2017 = rng.permutation(np.linspace(7.0, 8.3, n_units))
    means_2016 = np.clip(means_2017 - rng.normal(0.1, 0.15, n_units), 6.8, 8.3)
    means_2016 += OVERALL_2016 - means_2016.mean()

    step("accounts")
    result.accounts = _accounts(units, rng)

    step("consultant 2016")
    result.responses["consultant 2016"] = _consultant(
        previous, units, means_2016, item_effects, scale, rng, pseudonymise
    )
    step("consultant 2017")
    result.responses["consultant 2017"] = _consultant(
        campaign, units, means_2017, item_effects, scale, rng, pseudonymise
    )

    step("web answers")
    result.responses["web 2017"], result.survey_links = _web_answers(
        campaign, units, means_2017, item_effects, scale, rng, pseudonymise
    )

    step("assignments")
    # create_assignments commits everything so far together with the assignments.
    assignments = create_assignments(
        campaign, raters_per_unit=RATERS_PER_UNIT, quota=CROSS_QUOTA, seed=seed, user=None, actor=ACTOR
    )
    result.assignments = len(assignments)

    step("cross-scores")
    result.planted, result.responses["cross 2017"] = _cross(
        campaign, units, assignments, means_2017, item_effects, scale, rng
    )
    db.session.commit()
    return result


def _accounts(units: list[Unit], rng: np.random.Generator) -> list[tuple[str, str, str | None]]:
    """HQ, auditors of a handful of units, managers of a few; all with the demo password."""
    accounts: list[tuple[str, str, str | None]] = [(HQ_EMAIL, Role.HQ.value, None)]
    chosen = [units[i] for i in sorted(rng.choice(len(units), AUDITOR_UNITS + MANAGER_UNITS, replace=False))]
    auditors, managers = chosen[:AUDITOR_UNITS], chosen[AUDITOR_UNITS:]
    accounts += [(f"auditor.{u.code}@evnnpc.vn", Role.AUDITOR.value, u.code) for u in auditors]
    accounts += [(f"manager.{u.code}@evnnpc.vn", Role.MANAGER.value, u.code) for u in managers]
    by_code = {u.code: u for u in units}
    # One hash for the shared demo password: scrypt is slow on purpose, and the salt protects nothing here.
    password_hash = hash_password(DEMO_PASSWORD)
    db.session.add_all(
        User(email=email, role=Role(role), unit=by_code[unit_code] if unit_code else None, password_hash=password_hash)
        for email, role, unit_code in accounts
    )
    db.session.flush()
    return accounts


def _consultant(
    campaign: Campaign,
    units: list[Unit],
    means: np.ndarray,
    item_effects: np.ndarray,
    scale: tuple[int, int],
    rng: np.random.Generator,
    pseudonymise: Pseudonymiser,
) -> int:
    """The consultant's interviews, as if imported from its file."""
    per_unit = CONSULTANT_PER_UNIT[campaign.code]
    batches = []
    for unit, mean in zip(units, means, strict=True):
        groups = _groups(rng, per_unit)
        batches.append(
            ResponseBatch(
                unit_ids=[unit.id] * per_unit,
                customer_groups=[GROUP_OF[group] for group in groups.tolist()],
                respondent_ids=[pseudonymise(f"{unit.code}-{campaign.code}-{n:04d}") for n in range(1, per_unit + 1)],
                answers=answer_matrix(rng, mean + _group_effect(groups), item_effects, scale),
            )
        )
    stored = insert_in_batches(campaign, batches, source=Source.CONSULTANT, channel=Channel.IMPORT)
    record_import(campaign, stored, f"demo: consultant interviews {campaign.code}", actor=ACTOR)
    return stored.rows


def _web_answers(
    campaign: Campaign,
    units: list[Unit],
    means: np.ndarray,
    item_effects: np.ndarray,
    scale: tuple[int, int],
    rng: np.random.Generator,
    pseudonymise: Pseudonymiser,
) -> tuple[int, list[str]]:
    """A few customers who answered through their link, and a few links still open to try the survey."""
    batches: list[ResponseBatch] = []
    open_links: list[str] = []
    now = utcnow()
    for position in sorted(rng.choice(len(units), WEB_UNITS, replace=False).tolist()):
        unit = units[position]
        answered = int(rng.integers(3, 6))
        group = CustomerGroup.HOUSEHOLD if position % 2 else CustomerGroup.BUSINESS
        issued = issue_invitations(campaign, unit, answered + 2, group)
        mean = means[position] + float(_group_effect(np.array([int(group == CustomerGroup.BUSINESS)]))[0])
        used = [item.invitation for item in issued[:answered]]
        for invitation in used:
            invitation.used_at = now
        # The same respondent id and key the customer survey gives a web answer.
        batches.append(
            ResponseBatch(
                unit_ids=[unit.id] * answered,
                customer_groups=[group.value] * answered,
                respondent_ids=[pseudonymise(f"invitation-{invitation.id}") for invitation in used],
                answers=answer_matrix(rng, np.full(answered, mean), item_effects, scale),
                idempotency_keys=[f"invitation-{invitation.id}" for invitation in used],
                invitation_ids=[invitation.id for invitation in used],
            )
        )
        open_links += [survey_link(item.token) for item in issued[answered:]]
    db.session.flush()
    stored = insert_in_batches(campaign, batches, source=campaign.web_source, channel=Channel.WEB)
    record_import(campaign, stored, "demo: customers' web answers", actor=ACTOR)
    return stored.rows, open_links[:3]


def _cross(
    campaign: Campaign,
    units: list[Unit],
    assignments: list[Assignment],
    means: np.ndarray,
    item_effects: np.ndarray,
    scale: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[Planted, int]:
    """Auditors' interviews for every assignment, with the planted leniencies and differences."""
    position_of = {unit.id: position for position, unit in enumerate(units)}
    lenient, harsh, up, down = rng.choice(len(units), 4, replace=False).tolist()
    leniency = np.zeros(len(units))
    leniency[lenient], leniency[harsh] = LENIENT, HARSH
    difference = np.zeros(len(units))
    difference[up], difference[down] = UNIT_DIFFERENCE, -UNIT_DIFFERENCE
    auditors = dict(
        db.session.execute(sa.select(User.unit_id, User.id).where(User.role == Role.AUDITOR)).tuples().all()
    )
    pseudonymise = Pseudonymiser()
    batches: list[ResponseBatch] = []
    submitted: list[int] = []
    for assignment in sorted(assignments, key=lambda a: (a.rater_unit_id, a.ratee_unit_id)):
        rater, ratee = position_of[assignment.rater_unit_id], position_of[assignment.ratee_unit_id]
        count = int(rng.integers(CROSS_PER_ASSIGNMENT[0], CROSS_PER_ASSIGNMENT[1] + 1))
        groups = _groups(rng, count)
        true_mean = means[ratee] + CROSS_OFFSET + leniency[rater] + difference[ratee]
        keys = rng.integers(0, 2**63, size=(count, 2)).tolist()
        prefix = f"PA{units[ratee].code}-{units[rater].code}"
        batches.append(
            ResponseBatch(
                unit_ids=[assignment.ratee_unit_id] * count,
                customer_groups=[GROUP_OF[group] for group in groups.tolist()],
                respondent_ids=[pseudonymise(f"{prefix}-{n:03d}") for n in range(count)],
                answers=answer_matrix(rng, true_mean + _group_effect(groups), item_effects, scale),
                rater_unit_ids=[assignment.rater_unit_id] * count,
                assignment_ids=[assignment.id] * count,
                idempotency_keys=[str(uuid.UUID(int=high << 64 | low, version=4)) for high, low in keys],
                created_by_ids=[auditors.get(assignment.rater_unit_id)] * count,
            )
        )
        if count >= assignment.quota:
            submitted.append(assignment.id)
    stored = insert_in_batches(campaign, batches, source=Source.CROSS, channel=Channel.INTERVIEW)
    record_import(campaign, stored, "demo: cross-scoring interviews", actor=ACTOR)
    # Assignments whose quota is met are submitted, as their auditors would; the rest stay open for the demo.
    now = utcnow()
    for assignment in assignments:
        if assignment.id in submitted:
            before = assignment_snapshot(assignment)
            assignment.status, assignment.submitted_at = AssignmentStatus.SUBMITTED, now
            after = assignment_snapshot(assignment)
            audit.record("submit", "assignment", assignment.id, before=before, after=after, actor=ACTOR)
    planted = Planted(
        offset=CROSS_OFFSET,
        lenient=(units[lenient].code, LENIENT),
        harsh=(units[harsh].code, HARSH),
        different=((units[up].code, UNIT_DIFFERENCE), (units[down].code, -UNIT_DIFFERENCE)),
    )
    return planted, stored.rows


def _remove_demo_rows(audit_floor: int) -> None:
    """Undo a demo that failed after a commit: delete every row it wrote (the database was empty before)."""
    written = {model.__tablename__ for model in (*DEMO_TABLES, Dimension, Item, AuditEvent)}
    for table in reversed(db.metadata.sorted_tables):
        if table.name not in written:
            continue
        statement = table.delete()
        if table.name == AuditEvent.__tablename__:
            statement = statement.where(table.c.id > audit_floor)
        db.session.execute(statement)
    db.session.commit()
