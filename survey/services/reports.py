"""The reconciled report of a campaign: data gathered in SQL, statistics from `scoring`.

Consultant data reach `scoring.reconcile` as per-unit (and per-customer-group) sufficient
statistics — COUNT, SUM and SUM of squares of the respondent index computed by the database —
so a campaign's consultant rows are never loaded. Cross data are a few thousand
(rater, ratee, index) rows and are loaded as they are, because the leniency model needs them.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import aliased

import scoring

from ..extensions import db
from ..models import DIMENSION_COLUMNS, Campaign, CampaignStatus, Response, ReviewState, Source, Unit, User, utcnow
from . import audit
from .aggregates import exact_avg, exact_sum
from .i18n import translate as _
from .review import counted_cross_filter

#: The per-unit report columns of DESIGN.md, in contract order.
REPORT_COLUMNS: tuple[str, ...] = (
    "unit_code",
    "unit_name",
    *(c for c in scoring.UNIT_COLUMNS if c != "unit_code"),
)
RATER_COLUMNS: tuple[str, ...] = tuple(scoring.RATER_COLUMNS)
#: Status severity, used when sorting by status: problems first.
STATUS_ORDER = {"inconsistent": 0, "inconclusive": 1, "consistent": 2}
SOURCES = (Source.CONSULTANT.value, Source.CROSS.value)
#: Columns of the raw-responses export before the item columns.
RAW_COLUMNS = (
    "response_id",
    "unit_code",
    "source",
    "channel",
    "customer_group",
    "respondent_id",
    "review_state",
    "respondent_index",
)
RAW_BATCH = 1000



class ReportError(ValueError):
    """A report request that cannot be met; the message says what to change."""


def finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name_vi: str
    name_en: str

    def name(self, lang: str = "vi") -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True)
class DimensionInfo:
    code: str
    title_vi: str
    title_en: str
    items: tuple[str, ...]

    def title(self, lang: str = "vi") -> str:
        return self.title_en if lang == "en" else self.title_vi


@dataclass(frozen=True)
class DimensionScores:
    """Mean dimension scores per unit and source, over the respondents who answered the dimension."""

    dimensions: tuple[DimensionInfo, ...]
    #: ``(unit_code, source) -> {dimension_code: score or None}``
    values: Mapping[tuple[str, str], Mapping[str, float | None]]
    #: ``(unit_code, source) -> number of complete respondents``
    respondents: Mapping[tuple[str, str], int]

    def of(self, unit_code: str, source: str) -> dict[str, float | None]:
        """The dimension scores of one unit and source (None where nobody answered)."""
        scores = self.values.get((unit_code, source), {})
        return {d.code: scores.get(d.code) for d in self.dimensions}


@dataclass(frozen=True)
class Overall:
    """The campaign's consultant score for the whole corporation, against the plan and the year before."""

    n: int
    score: float | None
    ci_low: float | None
    ci_high: float | None
    target: float
    previous_code: str | None = None
    previous_score: float | None = None

    @property
    def versus_target(self) -> float | None:
        return None if self.score is None else self.score - self.target

    @property
    def meets_target(self) -> bool | None:
        return None if self.score is None else self.score >= self.target

    @property
    def change(self) -> float | None:
        if self.score is None or self.previous_score is None:
            return None
        return self.score - self.previous_score


@dataclass(frozen=True)
class CampaignReport:
    """Everything the report pages, downloads and API say about one campaign."""

    campaign_id: int
    campaign_code: str
    campaign_name_vi: str
    campaign_name_en: str
    campaign_status: str
    target: float
    margin: float
    household_share: float | None
    reconciliation: scoring.Reconciliation
    units: tuple[UnitInfo, ...]
    overall: Overall
    dimension_scores: DimensionScores
    #: ``unit_code -> {source: respondents excluded as incomplete}``
    incomplete: Mapping[str, Mapping[str, int]]
    generated_at: dt.datetime = field(default_factory=utcnow)

    def campaign_name(self, lang: str = "vi") -> str:
        return self.campaign_name_en if lang == "en" else self.campaign_name_vi

    def unit(self, code: str) -> UnitInfo:
        """The unit with this code (KeyError if it is not in the campaign)."""
        for unit in self.units:
            if unit.code == code:
                return unit
        raise KeyError(code)

    def unit_row(self, result: scoring.UnitResult, lang: str = "vi") -> dict[str, Any]:
        """One unit's report row: DESIGN.md columns in order, None (never NaN) where nothing can be computed."""
        row: dict[str, Any] = {}
        for column in REPORT_COLUMNS:
            if column == "unit_name":
                row[column] = self.unit(result.unit_code).name(lang)
            elif column == "reason":
                row[column] = result.reason if lang == "en" else result.reason_vi
            else:
                value = getattr(result, column)
                row[column] = finite(value) if isinstance(value, float) else value
        return row

    def unit_rows(self, lang: str = "vi") -> list[dict[str, Any]]:
        """The per-unit table, in unit-code order."""
        return [self.unit_row(result, lang) for result in self.reconciliation.units]

    def rater_rows(self) -> list[dict[str, Any]]:
        """The auditing units' leniency table (DESIGN.md columns), None where not estimable."""
        rows = []
        for rater in self.reconciliation.raters:
            row: dict[str, Any] = {}
            for column in RATER_COLUMNS:
                value = getattr(rater, column)
                row[column] = finite(value) if isinstance(value, float) else value
            rows.append(row)
        return rows

    @property
    def ranked_units(self) -> int:
        """How many units have a rank (a reconciled score)."""
        return sum(1 for u in self.reconciliation.units if u.rank is not None)


# --------------------------------------------------------------------------- data gathering (SQL)


def _consultant_condition(campaign: Campaign) -> sa.ColumnElement[bool]:
    """Consultant responses that count: all of the campaign's, except any HQ rejected."""
    return sa.and_(
        Response.campaign_id == campaign.id,
        Response.source == Source.CONSULTANT,
        Response.review_state != ReviewState.REJECTED,
    )


def counted_condition(campaign: Campaign) -> sa.ColumnElement[bool]:
    """Responses of either programme that count in the campaign's scores."""
    return sa.or_(_consultant_condition(campaign), counted_cross_filter(campaign))


def _unit_codes() -> dict[int, str]:
    """Unit codes by id.

    The report's sums group by ``response.unit_id`` and name the units afterwards: the database
    aggregates while it reads the covering index (in its order on SQLite, by hashing on
    PostgreSQL) instead of sorting a million index entries by unit code first.
    """
    return {unit_id: code for unit_id, code in db.session.execute(sa.select(Unit.id, Unit.code))}


def consultant_stats(campaign: Campaign) -> pd.DataFrame:
    """Per unit and customer group: n, mean and SD of complete respondents' indices, from SQL sums."""
    index = Response.respondent_index
    statement = (
        sa.select(
            Response.unit_id,
            Response.customer_group,
            sa.func.count(index),
            exact_sum(index),
            exact_sum(index * index),
        )
        .where(_consultant_condition(campaign), index.is_not(None))
        .group_by(Response.unit_id, Response.customer_group)
    )
    codes = _unit_codes()
    records = []
    rows = sorted(((codes[unit_id], str(group), *sums) for unit_id, group, *sums in db.session.execute(statement)),
                  key=operator.itemgetter(0, 1))
    for code, group, n, total, total_sq in rows:
        stats = scoring.UnitStats.from_sums(int(n), total, total_sq)
        records.append({"unit": code, "customer_group": str(group), "n": stats.n, "mean": stats.mean, "sd": stats.sd})
    return pd.DataFrame(records, columns=["unit", "customer_group", "n", "mean", "sd"])


def cross_rows(campaign: Campaign) -> pd.DataFrame:
    """The (rater, ratee, index) rows of the campaign's counted, complete cross responses."""
    rater = aliased(Unit)
    ratee = aliased(Unit)
    statement = (
        sa.select(rater.code, ratee.code, Response.respondent_index)
        .join(rater, rater.id == Response.rater_unit_id)
        .join(ratee, ratee.id == Response.unit_id)
        .where(counted_cross_filter(campaign), Response.respondent_index.is_not(None))
        .order_by(Response.id)
    )
    rows = db.session.execute(statement).all()
    return pd.DataFrame(
        {
            "rater": pd.Series([r[0] for r in rows], dtype=object),
            "ratee": pd.Series([r[1] for r in rows], dtype=object),
            "index": pd.Series([float(r[2]) for r in rows], dtype=float),
        }
    )


def incomplete_counts(campaign: Campaign) -> dict[str, dict[str, int]]:
    """Per unit and source, how many counted respondents are incomplete (no index)."""
    codes = _unit_codes()
    counts: dict[str, dict[str, int]] = {}
    rows = chain.from_iterable(
        db.session.execute(
            sa.select(Response.unit_id, Response.source, sa.func.count())
            .where(condition, Response.respondent_index.is_(None))
            .group_by(Response.source, Response.unit_id)
        )
        for condition in (_consultant_condition(campaign), counted_cross_filter(campaign))
    )
    for unit_id, source, n in rows:
        counts.setdefault(codes[unit_id], {})[str(source)] = int(n)
    return counts


def dimension_scores(campaign: Campaign) -> DimensionScores:
    """Mean dimension scores per unit and source, over complete respondents, from the stored dimension scores.

    A respondent's dimension score is the mean of its answered items (DESIGN.md "Scores"), stored
    with the response in ``dimension_<position>`` (NULL when no item of the dimension is
    answered); a unit's dimension score is the mean of those over the respondents who answered
    the dimension, which is what SQL's AVG gives by skipping NULLs. One GROUP BY over float
    columns: no JSON is parsed at report time, so a million responses take about a second.
    """
    dimensions = tuple(
        DimensionInfo(d.code, d.title_vi, d.title_en, tuple(i.code for i in d.items))
        for d in campaign.questionnaire.dimensions
    )
    columns = [exact_avg(getattr(Response, DIMENSION_COLUMNS[k])) for k in range(len(dimensions))]
    codes = _unit_codes()
    values: dict[tuple[str, str], dict[str, float | None]] = {}
    respondents: dict[tuple[str, str], int] = {}
    # One statement per programme rather than one with OR: each then reads one range of the
    # covering index and aggregates as it goes.
    rows = chain.from_iterable(
        db.session.execute(
            sa.select(Response.unit_id, Response.source, sa.func.count(), *columns)
            .where(condition, Response.respondent_index.is_not(None))
            .group_by(Response.source, Response.unit_id)
        )
        for condition in (_consultant_condition(campaign), counted_cross_filter(campaign))
    )
    for unit_id, source, n, *means in rows:
        key = (codes[unit_id], str(source))
        respondents[key] = int(n)
        values[key] = {d.code: finite(m) for d, m in zip(dimensions, means)}
    return DimensionScores(dimensions, values, respondents)


def _shares(campaign: Campaign) -> dict[str, float] | None:
    if campaign.household_share is None:
        return None
    return {"household": campaign.household_share, "business": 1.0 - campaign.household_share}


def _overall_score(stats: pd.DataFrame, shares: Mapping[str, float] | None) -> scoring.Score:
    """Corporation-wide consultant score: all complete respondents together (post-stratified when shares are set)."""
    groups: dict[str, list[scoring.UnitStats]] = {}
    for record in stats.itertuples(index=False):
        groups.setdefault(record.customer_group, []).append(
            scoring.UnitStats(int(record.n), finite(record.mean), finite(record.sd))
        )
    pooled = {group: scoring.pool_stats(values) for group, values in groups.items()}
    return scoring.unit_scores(pooled, shares)


def build_report(campaign: Campaign) -> CampaignReport:
    """Gather the campaign's data in SQL and reconcile the two programmes with `scoring`."""
    units = tuple(
        UnitInfo(u.code, u.name_vi, u.name_en)
        for u in db.session.scalars(sa.select(Unit).order_by(Unit.code))
    )
    stats = consultant_stats(campaign)
    shares = _shares(campaign)
    reconciliation = scoring.reconcile(
        stats,
        cross_rows(campaign),
        margin=campaign.margin,
        units=[u.code for u in units],
        shares=shares,
    )
    score = _overall_score(stats, shares)
    previous = campaign.previous_campaign
    previous_score = None
    if previous is not None:
        previous_score = finite(_overall_score(consultant_stats(previous), _shares(previous)).mean)
    overall = Overall(
        n=int(score.n),
        score=finite(score.mean),
        ci_low=finite(score.ci_low),
        ci_high=finite(score.ci_high),
        target=float(campaign.target_score),
        previous_code=previous.code if previous is not None else None,
        previous_score=previous_score,
    )
    return CampaignReport(
        campaign_id=campaign.id,
        campaign_code=campaign.code,
        campaign_name_vi=campaign.name_vi,
        campaign_name_en=campaign.name_en,
        campaign_status=str(campaign.status),
        target=float(campaign.target_score),
        margin=float(campaign.margin),
        household_share=campaign.household_share,
        reconciliation=reconciliation,
        units=units,
        overall=overall,
        dimension_scores=dimension_scores(campaign),
        incomplete=incomplete_counts(campaign),
    )


def find_campaign(code: str) -> Campaign | None:
    """The campaign with this code, or None."""
    return db.session.scalar(sa.select(Campaign).where(Campaign.code == code))


def latest_campaign() -> Campaign | None:
    """The most recently created campaign that is not a draft: what a manager sees first."""
    return db.session.scalar(
        sa.select(Campaign)
        .where(Campaign.status != CampaignStatus.DRAFT)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .limit(1)
    )


def published_campaigns() -> list[Campaign]:
    """Campaigns that are not drafts, newest first."""
    return list(
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.status != CampaignStatus.DRAFT)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        )
    )


def sort_rows(rows: list[dict[str, Any]], column: str, descending: bool = False) -> list[dict[str, Any]]:
    """Sort report rows by a DESIGN.md column; empty values always last, status by severity."""
    if column not in REPORT_COLUMNS:
        raise ReportError(_("The table cannot be sorted by “%(column)s”. Use the links in the column headings.",
                            column=column[:40]))

    def key(row: dict[str, Any]) -> Any:
        value = row[column]
        if column == "status":
            value = STATUS_ORDER.get(value, len(STATUS_ORDER))
        return value

    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    # Ties keep unit-code order, whatever the direction.
    present.sort(key=lambda r: r["unit_code"])
    present.sort(key=key, reverse=descending)
    return present + missing


def record_export(campaign: Campaign, what: str, details: Mapping[str, Any], *, user: User | None = None,
                  actor: str | None = None) -> None:
    """Write the audit event of an export and commit it, before any data leaves."""
    audit.record("export", "campaign", campaign.id, after={"campaign": campaign.code, "export": what, **details},
                 user=user, actor=actor)
    db.session.commit()


# --------------------------------------------------------------------------- raw responses


@dataclass(frozen=True)
class RawFilters:
    """Which responses a raw export contains; None means all."""

    unit_code: str | None = None
    source: str | None = None
    review_state: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("unit", self.unit_code), ("source", self.source),
                                  ("review_state", self.review_state)) if v is not None}


#: Query parameters of the raw export; anything else is refused rather than ignored.
RAW_PARAMETERS = ("unit", "source", "review_state")


def parse_raw_filters(args: Mapping[str, str], allowed_extra: tuple[str, ...] = ()) -> RawFilters:
    """Validate the raw export's filters: an unknown parameter, unit, source or state raises ReportError."""
    unknown = sorted(set(args) - set(RAW_PARAMETERS) - set(allowed_extra))
    if unknown:
        raise ReportError(_("Unknown filter “%(name)s”. The filters are: %(names)s.", name=unknown[0][:40],
                            names=", ".join(RAW_PARAMETERS)))
    unit = (args.get("unit") or "").strip() or None
    source = (args.get("source") or "").strip() or None
    state = (args.get("review_state") or "").strip() or None
    if unit is not None and db.session.scalar(sa.select(Unit.id).where(Unit.code == unit)) is None:
        raise ReportError(_("Unknown unit “%(unit)s”. Use a unit code such as bac-giang.", unit=unit[:40]))
    if source is not None and source not in SOURCES:
        raise ReportError(_("Unknown source “%(source)s”. Use one of: %(sources)s.", source=source[:40],
                            sources=", ".join(SOURCES)))
    states = [s.value for s in ReviewState]
    if state is not None and state not in states:
        raise ReportError(_("Unknown review state “%(state)s”. Use one of: %(states)s.", state=state[:40],
                            states=", ".join(states)))
    return RawFilters(unit, source, state)


def raw_item_codes(campaign: Campaign) -> list[str]:
    """The item columns of the raw export, in questionnaire order."""
    return [item.code for item in campaign.questionnaire.items]


#: First characters that make a spreadsheet read text as a formula (survey.exports.FORMULA_STARTS).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(column: Any) -> sa.ColumnElement[str]:
    """A text column neutralised in SQL as survey.exports.neutralise does: a leading apostrophe before a formula."""
    text = sa.type_coerce(column, sa.String)
    return sa.case((sa.func.substr(text, 1, 1).in_(_FORMULA_STARTS), sa.literal("'") + text), else_=text)


def raw_statement(campaign_id: int, items: list[str], filters: RawFilters, dialect: str) -> sa.Select[Any]:
    """The raw export as one SELECT: RAW_COLUMNS then ``items``, every value already as the CSV cell needs it.

    Why no cell can start a formula, so no per-cell check is needed in Python: the unit code and
    the respondent id are neutralised in SQL (they are slugs and HMAC hex, but the guarantee
    should not rest on that); source, channel, group and review state are the database-checked
    enum values; the id, index and answers are numbers that are never negative (the index is
    checked to lie in 0–100, and every write path accepts only whole numbers of the scale,
    whose minimum is at least 0). On PostgreSQL the answers are read through a typed record
    (numeric), so a value that is not a number could not be written out at all.
    """
    index = Response.__table__.c.respondent_index
    if dialect == "postgresql":
        # Python's repr of a float (the non-streamed export) writes 7.0 where PostgreSQL writes 7.
        index_text: Any = sa.cast(index, sa.Text) + sa.case((index == sa.func.trunc(index), ".0"), else_="")
        record = (
            sa.func.json_to_record(Response.__table__.c.answers)
            .table_valued(*(sa.column(code, sa.Numeric) for code in items))
            .render_derived(name="answer", with_types=True)
        )
        answers = [sa.cast(record.c[code], sa.Text) for code in items]
    else:
        index_text = index
        record = None
        answers = [sa.func.json_extract(Response.__table__.c.answers, f"$.{code}") for code in items]
    statement = (
        sa.select(
            Response.__table__.c.id,
            _safe_text(Unit.__table__.c.code),
            sa.type_coerce(Response.__table__.c.source, sa.String),
            sa.type_coerce(Response.__table__.c.channel, sa.String),
            sa.type_coerce(Response.__table__.c.customer_group, sa.String),
            _safe_text(Response.__table__.c.respondent_id),
            sa.type_coerce(Response.__table__.c.review_state, sa.String),
            index_text,
            *answers,
        )
        .select_from(Response.__table__)
        .join(Unit.__table__, Unit.__table__.c.id == Response.__table__.c.unit_id)
    )
    campaign_column: Any = Response.__table__.c.campaign_id
    if record is not None:
        statement = statement.join(record, sa.true())
    else:
        # SQLite would find the campaign's rows through an index and then sort a million of them
        # by id in memory; an expression it cannot look up in an index makes it walk the table in
        # id order instead, with nothing to sort (memory stays flat).
        campaign_column = campaign_column + 0
    statement = statement.where(campaign_column == campaign_id).order_by(Response.__table__.c.id)
    if filters.unit_code is not None:
        statement = statement.where(Unit.__table__.c.code == filters.unit_code)
    if filters.source is not None:
        statement = statement.where(Response.__table__.c.source == Source(filters.source).value)
    if filters.review_state is not None:
        statement = statement.where(Response.__table__.c.review_state == ReviewState(filters.review_state).value)
    return statement


def raw_response_batches(campaign_id: int, items: list[str], filters: RawFilters) -> Iterator[list[Any]]:
    """Yield a campaign's responses as batches of RAW_BATCH rows (RAW_COLUMNS then ``items``) from a streaming cursor.

    Takes plain values, not the Campaign row: a streamed response runs this after the view's
    database session has closed. Rows come a batch per fetch, not one by one, which halves the
    Python time per row.
    """
    statement = raw_statement(campaign_id, items, filters, db.session.get_bind().dialect.name)
    # yield_per streams from a server-side cursor on PostgreSQL, so memory stays flat.
    yield from db.session.execute(statement.execution_options(yield_per=RAW_BATCH)).partitions()


def raw_copy_blocks(campaign_id: int, items: list[str], filters: RawFilters) -> Iterator[bytes]:
    """PostgreSQL: the export's CSV lines straight from ``COPY (SELECT …) TO STDOUT``, block by block.

    The server formats every value; Python only forwards the bytes (CRLF endings, as the
    non-streamed export writes them; no value holds a line break).
    """
    connection = db.session.connection()
    statement = raw_statement(campaign_id, items, filters, "postgresql")
    # The filters are checked values (parse_raw_filters), rendered as SQL literals: COPY takes no parameters.
    query = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    connection.exec_driver_sql("SET LOCAL extra_float_digits = 1")  # shortest exact text, as Python's repr
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            yield bytes(block).replace(b"\n", b"\r\n")
