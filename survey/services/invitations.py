"""Single-use survey links: issue them, find them, tell why one cannot be used."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from ..extensions import db, first_row
from ..models import Campaign, CampaignStatus, CustomerGroup, Invitation, Questionnaire, Source, Unit, utcnow

#: Tokens are URL-safe and long enough to be unguessable (about 128 bits).
TOKEN_BYTES = 16


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


def issue_invitations(
    campaign: Campaign,
    unit: Unit,
    count: int,
    customer_group: CustomerGroup = CustomerGroup.HOUSEHOLD,
    valid_days: int | None = None,
) -> list[IssuedInvitation]:
    """Create ``count`` invitations and return them with their tokens (which are not stored); the caller commits."""
    if count < 1:
        raise ValueError("count must be at least 1")
    days = valid_days if valid_days is not None else current_app.config["INVITATION_DAYS"]
    expires_at = utcnow() + dt.timedelta(days=days)
    issued = []
    for _ in range(count):
        token = secrets.token_urlsafe(TOKEN_BYTES)
        invitation = Invitation(
            campaign_id=campaign.id,
            unit_id=unit.id,
            customer_group=customer_group,
            token_hash=hash_token(token),
            expires_at=expires_at,
        )
        issued.append(IssuedInvitation(invitation, token))
    db.session.add_all([i.invitation for i in issued])
    db.session.flush()
    return issued


def survey_link(token: str) -> str:
    """The full link a customer opens."""
    return f"{current_app.config['SURVEY_BASE_URL'].rstrip('/')}/s/{token}"


class InvitationUnavailable(Exception):
    """A link that cannot be answered; ``status`` is the HTTP status to show (404 or 410)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


#: The longest token worth looking up (issued ones are 22 characters).
MAX_TOKEN_LENGTH = 100


def _plausible(token: str) -> bool:
    return bool(token) and len(token) <= MAX_TOKEN_LENGTH


def _invitation_row(token: str, *columns: Any) -> sa.Row[Any] | None:
    """The invitation of a token (and ``columns``), with its campaign, questionnaire and unit, in one statement."""
    if not _plausible(token):
        return None
    return db.session.execute(
        sa.select(Invitation, *columns)
        .where(Invitation.token_hash == hash_token(token))
        .options(
            joinedload(Invitation.campaign, innerjoin=True)
            .joinedload(Campaign.questionnaire, innerjoin=True)
            .defer(Questionnaire.source_text),
            joinedload(Invitation.unit, innerjoin=True),
        )
    ).first()


def load_invitation(token: str) -> Invitation | None:
    """The invitation of a token, with its campaign, questionnaire and unit, in one statement (None if unknown)."""
    row = _invitation_row(token)
    return row[0] if row is not None else None


def find_open_link(token: str) -> tuple[Invitation, OpenLink | None]:
    """`find_invitation`, and on PostgreSQL the same invitation as a survey POST needs it, with its
    row version (`ROW_VERSION`), from the same statement, so that a page can hand it to its POST
    (`survey.public.link_state`). Elsewhere there is no version to hand on, and no link (None).
    """
    if db.engine.dialect.name != "postgresql":
        return find_invitation(token), None
    row = _invitation_row(token, ROW_VERSION)
    invitation = check_open(row[0] if row is not None else None)
    return invitation, link_of(invitation, row[1])


def link_of(invitation: Invitation, version: str | None) -> OpenLink:
    """An open invitation (with its campaign and questionnaire loaded) as a survey POST reads it."""
    campaign = invitation.campaign
    return OpenLink(
        id=invitation.id,
        campaign_id=invitation.campaign_id,
        unit_id=invitation.unit_id,
        customer_group=invitation.customer_group,
        web_source=campaign.web_source,
        questionnaire_id=campaign.questionnaire_id,
        questionnaire_checksum=campaign.questionnaire.checksum,
        draft=dict(invitation.draft_answers or {}),
        draft_page=invitation.draft_page,
        expires_at=invitation.expires_at,
        version=version,
    )


def find_invitation(token: str) -> Invitation:
    """The open invitation for a token, or InvitationUnavailable saying why not (unknown, expired, used, closed)."""
    return check_open(load_invitation(token))


def check_open(invitation: Invitation | None) -> Invitation:
    """The invitation if it can still be answered, or InvitationUnavailable saying why not."""
    if invitation is None:
        raise InvitationUnavailable(404, "unknown")
    _check_open(invitation.used_at, invitation.expires_at, invitation.campaign.status)
    return invitation


def _check_open(used_at: dt.datetime | None, expires_at: dt.datetime, status: CampaignStatus) -> None:
    """Raise InvitationUnavailable (410) when a link was used, has expired or its campaign is closed."""
    if used_at is not None:
        raise InvitationUnavailable(410, "used")
    if expires_at <= utcnow():
        raise InvitationUnavailable(410, "expired")
    if status == CampaignStatus.CLOSED:
        raise InvitationUnavailable(410, "closed")


# --- The survey's POSTs: one Core statement reads and locks what they need -----------------------

_invitation = Invitation.__table__
_campaign = Campaign.__table__
_questionnaire = Questionnaire.__table__

_LINK_COLUMNS = (
    _invitation.c.id,
    _invitation.c.campaign_id,
    _invitation.c.unit_id,
    _invitation.c.customer_group,
    _invitation.c.expires_at,
    _invitation.c.used_at,
    _invitation.c.draft_answers,
    _invitation.c.draft_page,
    _campaign.c.status,
    _campaign.c.web_source,
    _campaign.c.questionnaire_id,
    _questionnaire.c.checksum,
)
_LINK_SOURCE = _invitation.join(_campaign, _campaign.c.id == _invitation.c.campaign_id).join(
    _questionnaire, _questionnaire.c.id == _campaign.c.questionnaire_id
)
#: The invitation with the campaign fields a survey POST needs, by token hash. Built once, so
#: SQLAlchemy compiles it once per process; ``FOR UPDATE OF invitation`` locks the invitation row
#: only (PostgreSQL; SQLite has no row locks and serialises writers itself).
_OPEN_LINK = (
    sa.select(*_LINK_COLUMNS)
    .select_from(_LINK_SOURCE)
    .where(_invitation.c.token_hash == sa.bindparam("token_hash"))
    .with_for_update(of=_invitation)
)
#: PostgreSQL: the version of an invitation row. Every update writes a new row version with the
#: updating transaction's id as its ``xmin`` (row locks and foreign-key checks do not), so a write
#: made on condition that ``xmin`` is still the one read happens only if nothing changed the row
#: in between.
ROW_VERSION = sa.cast(sa.literal_column(f"{_invitation.name}.xmin"), sa.Text)
#: PostgreSQL, in a write made on condition of a link's row version: the link's campaign as read
#: (parameters ``p_questionnaire_id`` and ``p_web_source``) and still open. The version covers what
#: the invitation row holds (its draft, use and expiry); the campaign is a row of its own.
CAMPAIGN_AS_READ = (
    sa.exists()
    .where(
        _campaign.c.id == _invitation.c.campaign_id,
        _campaign.c.status != CampaignStatus.CLOSED,
        _campaign.c.questionnaire_id == sa.bindparam("p_questionnaire_id", type_=_campaign.c.questionnaire_id.type),
        _campaign.c.web_source == sa.bindparam("p_web_source", type_=_campaign.c.web_source.type),
    )
)
#: The same read without a lock, with the row's version: for `read_open_link`.
_READ_LINK = (
    sa.select(*_LINK_COLUMNS, ROW_VERSION.label("row_version"))
    .select_from(_LINK_SOURCE)
    .where(_invitation.c.token_hash == sa.bindparam("token_hash"))
)


class LinkChanged(Exception):
    """The invitation changed between the read and the write that depended on it (another tab, a
    double click): nothing was written; read it again and start over."""


@dataclass(frozen=True, slots=True)
class OpenLink:
    """An open invitation as plain values, read and locked for the rest of the transaction."""

    id: int
    campaign_id: int
    unit_id: int
    customer_group: CustomerGroup
    web_source: Source
    questionnaire_id: int
    questionnaire_checksum: str
    draft: dict[str, Any]
    draft_page: int
    expires_at: dt.datetime
    #: The row's version as read by `read_open_link` (PostgreSQL), or None when the row is locked.
    version: str | None = None


def lock_open_link(connection: sa.Connection, token: str) -> OpenLink:
    """Read and lock the open invitation of a token in one statement, or raise InvitationUnavailable.

    The row lock lasts until the connection's transaction ends; on InvitationUnavailable it is
    already rolled back.
    """
    return _open_link(connection, token, _OPEN_LINK)


def read_open_link(connection: sa.Connection, token: str) -> OpenLink:
    """Read the open invitation of a token with its row version, without a lock (PostgreSQL).

    For a connection in autocommit: the read is a transaction of its own, and the write that
    follows is one statement made on condition that the row still has this version (`ROW_VERSION`),
    raising LinkChanged otherwise. No lock is held while the answers are checked, and neither a
    BEGIN nor a COMMIT goes to the server. Raises InvitationUnavailable as `lock_open_link` does.
    """
    return _open_link(connection, token, _READ_LINK)


def _open_link(connection: sa.Connection, token: str, statement: sa.Select[Any]) -> OpenLink:
    row = first_row(connection, statement, {"token_hash": hash_token(token)}) if _plausible(token) else None
    try:
        if row is None:
            raise InvitationUnavailable(404, "unknown")
        _check_open(row.used_at, row.expires_at, row.status)
    except InvitationUnavailable:
        connection.rollback()
        raise
    return OpenLink(
        id=row.id,
        campaign_id=row.campaign_id,
        unit_id=row.unit_id,
        customer_group=row.customer_group,
        web_source=row.web_source,
        questionnaire_id=row.questionnaire_id,
        questionnaire_checksum=row.checksum,
        draft=dict(row.draft_answers or {}),
        draft_page=row.draft_page,
        expires_at=row.expires_at,
        version=getattr(row, "row_version", None),
    )
