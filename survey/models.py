"""The data model: units, questionnaires, campaigns, invitations, responses, people and the audit trail.

Answers are stored per response as a JSON object keyed by item code (see `AnswersType`), next
to the respondent index and the dimension scores computed when the response is saved. Unit
scores and dimension means therefore aggregate in SQL over plain float columns, without loading
a campaign's rows into Python and without parsing any JSON at report time.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

#: JSON in SQLite, JSONB in PostgreSQL: the same queries work on both.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
#: A response's answers: JSON text on both databases (``json`` on PostgreSQL, not ``jsonb``). The
#: answers are written once per response, read whole (the form, the audit view, the export) and
#: never searched in SQL: the report reads the dimension columns. PostgreSQL checks ``json`` input
#: and keeps the text, where ``jsonb`` parses it into a tree and sorts its keys: a fifth less
#: server time in a million-row import (bench/RESULTS.md, 28 November 2026, fifth session).
AnswersType = sa.JSON()


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use survey.models.utcnow()")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class StrEnum(str, enum.Enum):
    """An enumeration stored as its plain string value."""

    def __str__(self) -> str:
        return self.value


class Source(StrEnum):
    CONSULTANT = "consultant"
    CROSS = "cross"


class Channel(StrEnum):
    WEB = "web"
    INTERVIEW = "interview"
    IMPORT = "import"


class CustomerGroup(StrEnum):
    HOUSEHOLD = "household"
    BUSINESS = "business"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class Role(StrEnum):
    HQ = "hq"
    AUDITOR = "auditor"
    MANAGER = "manager"


class ReviewState(StrEnum):
    RECEIVED = "received"
    HAS_ISSUES = "has_issues"
    APPROVED = "approved"
    REJECTED = "rejected"


class AssignmentStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"


#: Dimension scores stored per response, by the dimension's position in the questionnaire (1-based).
#: A questionnaire has at most this many dimensions (EVN's has seven).
MAX_DIMENSIONS = 12
DIMENSION_COLUMNS = tuple(f"dimension_{position}" for position in range(1, MAX_DIMENSIONS + 1))
#: The response columns the report groups by, and those it sums (ix_response_campaign_stats holds both).
STATS_GROUPED = ("source", "unit_id", "customer_group", "review_state")
STATS_SUMMED = ("respondent_index", *DIMENSION_COLUMNS)


def only_on(dialect: str, index: sa.Index) -> sa.Index:
    """An index made on one database only: ``ddl_if`` for create_all, and ``info["dialect"]`` for
    Alembic, which does not know ``ddl_if`` (see `for_dialect`)."""
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


def for_dialect(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for a database: leaves out what the models made for another one (`only_on`)."""

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only = getattr(item, "info", {}).get("dialect")
        return only is None or only == dialect

    return include


def enum_column(enum_cls: type[StrEnum], **kwargs: Any) -> Any:
    """A VARCHAR column holding an enum's value, checked by the database."""
    return mapped_column(
        sa.Enum(
            enum_cls,
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            name=enum_cls.__name__.lower(),
        ),
        **kwargs,
    )


class Unit(db.Model):
    """A provincial power company: scored by the consultant and by other units, and itself an auditing unit."""

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ASCII slug of the province, e.g. ``bac-giang``.
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name_vi: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str] = mapped_column(sa.String(120))
    #: Customer households served; used for weighting and for planning quotas.
    households: Mapped[int | None]

    def name(self, locale: str = "vi") -> str:
        return self.name_en if locale == "en" else self.name_vi

    def __repr__(self) -> str:
        return f"<Unit {self.code}>"


class Questionnaire(db.Model):
    """A versioned questionnaire; immutable once a campaign uses it."""

    __tablename__ = "questionnaire"
    __table_args__ = (sa.UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60))
    version: Mapped[int]
    title_vi: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200))
    scale_min: Mapped[int] = mapped_column(default=1)
    scale_max: Mapped[int] = mapped_column(default=10)
    #: The TOML text as uploaded, kept verbatim for the record.
    source_text: Mapped[str] = mapped_column(sa.Text)
    #: SHA-256 of ``source_text``: the same file loaded twice is the same version.
    checksum: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    dimensions: Mapped[list[Dimension]] = relationship(
        back_populates="questionnaire", order_by="Dimension.position", cascade="all, delete-orphan"
    )

    @property
    def items(self) -> list[Item]:
        return [item for dimension in self.dimensions for item in dimension.items]


class Dimension(db.Model):
    """One of the questionnaire's criteria (EVN has seven), with its weight in the index."""

    __tablename__ = "dimension"
    __table_args__ = (sa.UniqueConstraint("questionnaire_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(sa.ForeignKey("questionnaire.id"))
    position: Mapped[int]
    code: Mapped[str] = mapped_column(sa.String(60))
    weight: Mapped[float] = mapped_column(default=1.0)
    title_vi: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200))

    questionnaire: Mapped[Questionnaire] = relationship(back_populates="dimensions")
    items: Mapped[list[Item]] = relationship(
        back_populates="dimension", order_by="Item.position", cascade="all, delete-orphan"
    )

    def title(self, locale: str = "vi") -> str:
        return self.title_en if locale == "en" else self.title_vi


class Item(db.Model):
    """A question scored on the questionnaire's scale; blank means not applicable."""

    __tablename__ = "item"
    __table_args__ = (sa.UniqueConstraint("dimension_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dimension_id: Mapped[int] = mapped_column(sa.ForeignKey("dimension.id"))
    position: Mapped[int]
    #: Item code; also the answer's key in ``Response.answers`` and the import CSV column.
    code: Mapped[str] = mapped_column(sa.String(60))
    text_vi: Mapped[str] = mapped_column(sa.Text)
    text_en: Mapped[str] = mapped_column(sa.Text)

    dimension: Mapped[Dimension] = relationship(back_populates="items")

    def text(self, locale: str = "vi") -> str:
        return self.text_en if locale == "en" else self.text_vi


class Campaign(db.Model):
    """One year's measurement: a questionnaire, a period, a target and the rules for the reconciliation."""

    __tablename__ = "campaign"
    __table_args__ = (
        sa.CheckConstraint("margin > 0", name="margin_positive"),
        sa.CheckConstraint(
            "household_share IS NULL OR (household_share >= 0 AND household_share <= 1)",
            name="household_share_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name_vi: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    questionnaire_id: Mapped[int] = mapped_column(sa.ForeignKey("questionnaire.id"))
    starts_on: Mapped[dt.date | None]
    ends_on: Mapped[dt.date | None]
    #: The plan, e.g. 7.50 for 2016.
    target_score: Mapped[float] = mapped_column(default=7.5)
    #: Smallest consultant–cross difference that matters, in points (equivalence margin).
    margin: Mapped[float] = mapped_column(default=0.3)
    status: Mapped[CampaignStatus] = enum_column(CampaignStatus, default=CampaignStatus.OPEN)
    #: Which programme customers' web answers belong to.
    web_source: Mapped[Source] = enum_column(Source, default=Source.CONSULTANT)
    #: Cross responses count in scores when received (False) or only once approved (True).
    count_only_approved: Mapped[bool] = mapped_column(default=False)
    #: Population share of households, for post-stratification; NULL means none.
    household_share: Mapped[float | None]
    previous_campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaign.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    questionnaire: Mapped[Questionnaire] = relationship()
    previous_campaign: Mapped[Campaign | None] = relationship(remote_side=[id])

    def name(self, locale: str = "vi") -> str:
        return self.name_en if locale == "en" else self.name_vi


class CampaignUnitQuota(db.Model):
    """A unit's interviews to collect in a campaign: by the consultant, and by the auditing units together."""

    __tablename__ = "campaign_unit_quota"
    __table_args__ = (
        sa.CheckConstraint("consultant_quota >= 0", name="consultant_quota_non_negative"),
        sa.CheckConstraint("cross_quota >= 0", name="cross_quota_non_negative"),
    )

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), primary_key=True)
    #: Responses the consultant programme must collect in the unit (web answers and imported interviews).
    consultant_quota: Mapped[int] = mapped_column(default=0)
    #: Cross interviews of the unit, spread over the assignments that score it.
    cross_quota: Mapped[int] = mapped_column(default=0)

    unit: Mapped[Unit] = relationship()


class Invitation(db.Model):
    """A customer's personal single-use survey link; only the token's hash is stored."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    customer_group: Mapped[CustomerGroup] = enum_column(CustomerGroup)
    #: SHA-256 of the token in the link: a copy of the database does not give away live links.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Answers saved so far, so the customer can resume through the same link.
    draft_answers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    draft_page: Mapped[int] = mapped_column(default=0)
    draft_saved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship()
    unit: Mapped[Unit] = relationship()


class Assignment(db.Model):
    """Cross-scoring work: auditors of ``rater_unit`` interview customers of ``ratee_unit``."""

    __tablename__ = "assignment"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "rater_unit_id", "ratee_unit_id"),
        sa.CheckConstraint("rater_unit_id <> ratee_unit_id", name="not_self"),
        sa.CheckConstraint("quota >= 0", name="quota_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id"), index=True)
    rater_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    ratee_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    quota: Mapped[int] = mapped_column(default=30)
    due_on: Mapped[dt.date | None]
    status: Mapped[AssignmentStatus] = enum_column(AssignmentStatus, default=AssignmentStatus.OPEN)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reopen_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    rater_unit: Mapped[Unit] = relationship(foreign_keys=[rater_unit_id])
    ratee_unit: Mapped[Unit] = relationship(foreign_keys=[ratee_unit_id])


class Response(db.Model):
    """One respondent's answers to a campaign's questionnaire, from either programme."""

    __tablename__ = "response"
    __table_args__ = (
        # One stored response per idempotency key: a retried send never duplicates it. Partial, like
        # the two indexes below on columns that are NULL for every imported row: a million-row import
        # does not add a million NULL entries to them (NULLs never collide in a unique index anyway).
        sa.Index("uq_response_campaign_id_idempotency_key", "campaign_id", "idempotency_key", unique=True,
                 sqlite_where=sa.text("idempotency_key IS NOT NULL"),
                 postgresql_where=sa.text("idempotency_key IS NOT NULL")),
        # The web invitation answered: a link is used exactly once, even under races.
        sa.Index("uq_response_invitation_id", "invitation_id", unique=True,
                 sqlite_where=sa.text("invitation_id IS NOT NULL"),
                 postgresql_where=sa.text("invitation_id IS NOT NULL")),
        sa.Index("ix_response_assignment_id", "assignment_id",
                 sqlite_where=sa.text("assignment_id IS NOT NULL"),
                 postgresql_where=sa.text("assignment_id IS NOT NULL")),
        # A respondent id appears once per programme and unit.
        sa.UniqueConstraint("campaign_id", "source", "unit_id", "respondent_id"),
        # Covers the report's per-unit sums (consultant statistics, incomplete counts, dimension
        # means) so they read this index, about a quarter of the table's size, and never the rows
        # with their JSON answers; the unique index above serves look-ups by respondent, so no
        # separate (campaign, source, unit) index is kept. Its shape differs by database (one name,
        # two definitions, see `only_on`):
        # - SQLite groups in the index's order, so the grouped columns lead; ``id`` comes before the
        #   summed columns, so a new row's entry goes at the end of its (unit, group, state) range
        #   instead of a random place and an import touches a few dozen index pages, not one per row.
        # - PostgreSQL hashes the few dozen groups whatever the order, so the key is (campaign, id)
        #   and the rest is INCLUDEd: every new entry goes at the end, and comparing two entries
        #   reads two integers instead of walking past the text columns to each later one (a
        #   quarter less server time in a million-row import: bench/RESULTS.md, fifth session).
        only_on("sqlite", sa.Index("ix_response_campaign_stats", "campaign_id", *STATS_GROUPED, "id", *STATS_SUMMED)),
        only_on("postgresql", sa.Index("ix_response_campaign_stats", "campaign_id", "id",
                                       postgresql_include=[*STATS_GROUPED, *STATS_SUMMED])),
        sa.CheckConstraint(
            "respondent_index IS NULL OR (respondent_index >= 0 AND respondent_index <= 100)",
            name="index_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id"))
    #: The scored unit: the customer's power company.
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    source: Mapped[Source] = enum_column(Source)
    channel: Mapped[Channel] = enum_column(Channel)
    customer_group: Mapped[CustomerGroup] = enum_column(CustomerGroup)
    respondent_id: Mapped[str] = mapped_column(sa.String(80))
    questionnaire_version: Mapped[int]
    #: ``{item_code: 1..10 or null}``; null means "not applicable".
    answers: Mapped[dict[str, Any]] = mapped_column(AnswersType)
    #: Weighted mean of the dimension scores; NULL when the respondent is incomplete.
    respondent_index: Mapped[float | None]
    answered_dimensions: Mapped[int] = mapped_column(default=0)
    #: The respondent's dimension scores (mean of its answered items), by dimension position in the
    #: questionnaire; NULL when no item of the dimension is answered or the questionnaire is shorter.
    #: Filled by every write path through ``dimension_values``; the report averages them in SQL.
    dimension_1: Mapped[float | None]
    dimension_2: Mapped[float | None]
    dimension_3: Mapped[float | None]
    dimension_4: Mapped[float | None]
    dimension_5: Mapped[float | None]
    dimension_6: Mapped[float | None]
    dimension_7: Mapped[float | None]
    dimension_8: Mapped[float | None]
    dimension_9: Mapped[float | None]
    dimension_10: Mapped[float | None]
    dimension_11: Mapped[float | None]
    dimension_12: Mapped[float | None]
    #: Client-made key (interview UUID, or the invitation for web answers).
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))
    #: The web invitation answered; unique (uq_response_invitation_id), so a link is used exactly once even under races.
    invitation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invitation.id"))
    #: For cross responses: the auditing unit and its assignment.
    rater_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("unit.id"))
    assignment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("assignment.id"))
    review_state: Mapped[ReviewState] = enum_column(ReviewState, default=ReviewState.RECEIVED)
    review_comment: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship()
    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])
    rater_unit: Mapped[Unit | None] = relationship(foreign_keys=[rater_unit_id])
    assignment: Mapped[Assignment | None] = relationship()

    def set_dimension_scores(self, scores: Any) -> None:
        """Store one respondent's dimension scores (NaN or None = not answered), in questionnaire order."""
        for column, value in zip(DIMENSION_COLUMNS, dimension_values(scores), strict=True):
            setattr(self, column, value)


def dimension_values(scores: Any) -> list[float | None]:
    """A respondent's dimension scores as the MAX_DIMENSIONS column values: None for NaN and past the last one."""
    values = [None if value is None or value != value else float(value) for value in scores]
    if len(values) > MAX_DIMENSIONS:
        raise ValueError(f"{len(values)} dimensions; a questionnaire has at most {MAX_DIMENSIONS}")
    return values + [None] * (MAX_DIMENSIONS - len(values))


class User(db.Model):
    """A staff account: headquarters, an auditor of a unit, or a unit's manager."""

    __tablename__ = "user_account"
    __table_args__ = (
        sa.CheckConstraint("role = 'hq' OR unit_id IS NOT NULL", name="unit_for_unit_roles"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = enum_column(Role)
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("unit.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    unit: Mapped[Unit | None] = relationship()

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiKey(db.Model):
    """A key for the read-only JSON API; only its hash is stored."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    #: The first characters of the key, shown so HQ can tell keys apart.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(db.Model):
    """An append-only, hash-chained record of who changed what, and when."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: Who acted, as text: an e-mail, ``cli``, or ``customer``.
    actor: Mapped[str] = mapped_column(sa.String(254))
    action: Mapped[str] = mapped_column(sa.String(40))
    entity: Mapped[str] = mapped_column(sa.String(40))
    entity_id: Mapped[str | None] = mapped_column(sa.String(80))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: The previous event's hash; unique, so two writers can never fork the chain.
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
