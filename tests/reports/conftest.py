"""Fixtures for the report tests: a small campaign with both programmes, and independent reference numbers.

The reference numbers are computed here from the stored responses with pandas, without the
report service, so a test compares the service's SQL aggregation with an independent path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import scoring
from survey.extensions import db
from survey.models import (
    DIMENSION_COLUMNS,
    Assignment,
    Campaign,
    CampaignStatus,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Role,
    Source,
    Unit,
    User,
    dimension_values,
)
from survey.questionnaire import structure_of
from survey.services.responses import pseudonymise
from tests.browser_fixtures import browser_page, live_server  # noqa: F401  (the browser tests use them)
from tests.helpers import PASSWORD, login  # noqa: F401
from tests.helpers import csrf_from as csrf_token  # noqa: F401

CATALOGUE = Path(__file__).resolve().parents[2] / "translations" / "reports" / "vi" / "LC_MESSAGES"


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogue() -> None:
    """Compile this area's Vietnamese catalogue when the .mo is missing or older (`make` does it too)."""
    source, target = CATALOGUE / "messages.po", CATALOGUE / "messages.mo"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        with source.open("rb") as po:
            catalogue = read_po(po)
        with target.open("wb") as mo:
            write_mo(mo, catalogue)


@dataclass
class Seeded:
    """What the seeded campaign fixture made."""

    campaign: Campaign
    previous: Campaign
    units: list[Unit]


@dataclass
class Staff:
    """Accounts for page tests: HQ, the manager of bac-giang, the manager of bac-kan, an auditor of bac-ninh."""

    hq: User
    manager: User
    other_manager: User
    auditor: User


def _answers(rng: np.random.Generator, level: float, n_items: int, blanks: float = 0.04) -> list[int | None]:
    person = rng.normal(0, 0.7)
    values = np.clip(np.rint(level + person + rng.normal(0, 0.9, n_items)), 1, 10).astype(int).tolist()
    return [None if rng.random() < blanks else v for v in values]


@dataclass(frozen=True)
class Row:
    """One response to insert: the scored unit, group, raw respondent id, answers in item order."""

    unit: Unit
    group: CustomerGroup
    respondent: str
    answers: list[int | None]
    rater: Unit | None = None
    assignment_id: int | None = None


def insert_rows(campaign: Campaign, rows: list[Row], source: Source, channel: Channel) -> None:
    """Insert responses in one statement, each with its respondent index from `scoring` (as the app stores it)."""
    if not rows:
        return
    questionnaire = campaign.questionnaire
    codes = [item.code for item in questionnaire.items]
    matrix = np.array([r.answers for r in rows], dtype=float)
    indexed = scoring.respondent_indices(matrix, structure_of(questionnaire))
    db.session.execute(
        sa.insert(Response),
        [
            {
                "campaign_id": campaign.id,
                "unit_id": r.unit.id,
                "source": source,
                "channel": channel,
                "customer_group": r.group,
                "respondent_id": pseudonymise(r.respondent),
                "questionnaire_version": questionnaire.version,
                "answers": dict(zip(codes, r.answers, strict=True)),
                "respondent_index": None if np.isnan(indexed.index[k]) else float(indexed.index[k]),
                "answered_dimensions": int(indexed.answered_dimensions[k]),
                "rater_unit_id": r.rater.id if r.rater is not None else None,
                "assignment_id": r.assignment_id,
                "review_state": ReviewState.RECEIVED,
                **dict(zip(DIMENSION_COLUMNS, dimension_values(indexed.dimension_scores[k]), strict=True)),
            }
            for k, r in enumerate(rows)
        ],
    )


def seed_campaign(campaign: Campaign, units: list[Unit], *, seed: int, consultant: int = 40, cross: int = 15,
                  lenient: int = 0, incomplete: int = 2, rejected: int = 2) -> None:
    """Fill a campaign with consultant and cross responses (planted leniency, incomplete and rejected rows)."""
    rng = np.random.default_rng(seed)
    n_items = len(campaign.questionnaire.items)
    levels = {u.id: 7.4 + 0.5 * np.sin(k) for k, u in enumerate(units)}
    rows = []
    for unit in units:
        for r in range(consultant):
            group = CustomerGroup.HOUSEHOLD if r % 5 else CustomerGroup.BUSINESS
            rows.append(Row(unit, group, f"{campaign.code}-c-{unit.code}-{r}", _answers(rng, levels[unit.id], n_items)))
        for r in range(incomplete):
            # Only the first dimension answered: fewer than half the dimensions, so no index.
            answers = [7, 8, 7] + [None] * (n_items - 3)
            rows.append(Row(unit, CustomerGroup.HOUSEHOLD, f"{campaign.code}-i-{unit.code}-{r}", answers))
    insert_rows(campaign, rows, Source.CONSULTANT, Channel.IMPORT)

    rows = []
    for k, ratee in enumerate(units):
        for step in (1, 2):
            if not cross:
                continue
            rater = units[(k + step) % len(units)]
            assignment = Assignment(campaign_id=campaign.id, rater_unit_id=rater.id, ratee_unit_id=ratee.id,
                                    quota=cross)
            db.session.add(assignment)
            db.session.flush()
            bump = 0.8 if rater is units[lenient] else 0.0
            for r in range(cross):
                rows.append(Row(ratee, CustomerGroup.HOUSEHOLD, f"{campaign.code}-x-{rater.code}-{ratee.code}-{r}",
                                _answers(rng, levels[ratee.id] + 0.2 + bump, n_items), rater, assignment.id))
    insert_rows(campaign, rows, Source.CROSS, Channel.INTERVIEW)
    # Some cross responses HQ rejected: they must never count.
    if rejected:
        ids = db.session.scalars(
            sa.select(Response.id).where(Response.campaign_id == campaign.id, Response.source == Source.CROSS)
            .order_by(Response.id)
        ).all()
        chosen = ids[:: max(len(ids) // (rejected * len(units)), 1)][: rejected * len(units)]
        db.session.execute(sa.update(Response).where(Response.id.in_(chosen))
                           .values(review_state=ReviewState.REJECTED, review_comment="test"))
    db.session.commit()


@pytest.fixture
def seeded(app: Any, make_campaign: Callable[..., Campaign]) -> Seeded:
    """Six units; campaign ``c2017`` (open) with campaign ``c2016`` (closed) as its previous one."""
    previous = make_campaign(code="c2016", units=6, status=CampaignStatus.CLOSED, target_score=7.5)
    campaign = make_campaign(code="c2017", units=0, target_score=7.5, previous_campaign_id=previous.id)
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    seed_campaign(previous, units, seed=16, consultant=25, cross=0, incomplete=0, rejected=0)
    seed_campaign(campaign, units, seed=17)
    return Seeded(campaign, previous, units)


@pytest.fixture
def staff(seeded: Seeded, make_user: Callable[..., User]) -> Staff:
    """Staff accounts on the seeded units (password PASSWORD)."""
    units = seeded.units
    return Staff(
        hq=make_user("hq@example.vn", Role.HQ),
        manager=make_user("manager@example.vn", Role.MANAGER, unit=units[0]),
        other_manager=make_user("manager2@example.vn", Role.MANAGER, unit=units[1]),
        auditor=make_user("auditor@example.vn", Role.AUDITOR, unit=units[2]),
    )


# --------------------------------------------------------------------------- independent reference


def stored_responses(campaign: Campaign) -> pd.DataFrame:
    """Every response of a campaign as a DataFrame (one row per response), loaded without the report service."""
    rater = sa.orm.aliased(Unit)
    rows = db.session.execute(
        sa.select(Response, Unit.code.label("unit_code"), rater.code.label("rater_code"))
        .join(Unit, Unit.id == Response.unit_id)
        .outerjoin(rater, rater.id == Response.rater_unit_id)
        .where(Response.campaign_id == campaign.id)
    ).all()
    return pd.DataFrame(
        [
            {
                "id": r.Response.id,
                "unit": r.unit_code,
                "rater": r.rater_code,
                "source": str(r.Response.source),
                "customer_group": str(r.Response.customer_group),
                "review_state": str(r.Response.review_state),
                "index": np.nan if r.Response.respondent_index is None else r.Response.respondent_index,
                "answers": dict(r.Response.answers),
                "respondent_id": r.Response.respondent_id,
                "channel": str(r.Response.channel),
            }
            for r in rows
        ]
    )


def reference_reconciliation(campaign: Campaign, shares: dict[str, float] | None = None) -> scoring.Reconciliation:
    """`scoring.reconcile` on per-unit statistics computed with pandas from the stored responses."""
    frame = stored_responses(campaign)
    complete = frame[frame["index"].notna()]
    consultant = complete[(complete["source"] == "consultant") & (complete["review_state"] != "rejected")]
    stats = (
        consultant.groupby(["unit", "customer_group"])["index"]
        .agg(n="count", mean="mean", sd="std")
        .reset_index()
    )
    counted = "approved" if campaign.count_only_approved else None
    cross = complete[complete["source"] == "cross"]
    cross = cross[cross["review_state"] == counted] if counted else cross[cross["review_state"] != "rejected"]
    cross = cross.sort_values("id")[["rater", "unit", "index"]].rename(columns={"unit": "ratee"})
    units = sorted(db.session.scalars(sa.select(Unit.code)))
    return scoring.reconcile(stats, cross, margin=campaign.margin, units=units, shares=shares)


def assert_close(actual: Any, expected: Any, what: str, rel: float = 1e-7) -> None:
    """Equal within numerical noise; None only where None is expected.

    The SQL sums and pandas' two-pass SD differ in the last bits, and the variance components are
    fitted iteratively, so model outputs may move by the optimiser's tolerance: far below what a
    report shows (two decimals), far above what a wrong input would change.
    """
    if expected is None or (isinstance(expected, float) and not np.isfinite(expected)):
        assert actual in (None, ""), f"{what}: expected empty, got {actual!r}"
        return
    if isinstance(expected, bool) or isinstance(expected, str):
        assert actual == expected, f"{what}: {actual!r} != {expected!r}"
        return
    assert actual is not None and actual != "", f"{what}: expected {expected!r}, got empty"
    assert float(actual) == pytest.approx(float(expected), rel=rel, abs=rel), f"{what}: {actual!r} != {expected!r}"


@pytest.fixture
def login_as(client: Any) -> Callable[[User], Any]:
    """Sign the test client in as a user; returns the client."""

    def sign_in(user: User) -> Any:
        login(client, user.email)
        return client

    return sign_in
