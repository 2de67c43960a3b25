"""Importing responses from CSV files, all or nothing, built to stream a million rows.

A good file is read once: its rows are checked and stored together, a batch at a time, inside
one transaction (``_store_in_one_pass``). A plain consultant file (UTF-8, no quotes) is parsed
by pandas' C reader block by block; any other file by the csv module with the same checks as
below. Duplicate respondents, in the file or already stored, are refused by the unique index.
At the first problem of any kind the transaction is rolled back and the file is read the
careful way: a first pass checks every row and lists every problem (line, column, why) without
keeping the rows, and only if there is none (an unusual but good file) does a second pass store
them. So a refused file gets the complete problem list, and nothing of it is kept.

Rows are handled a batch at a time, column by column, so the per-row Python work stays small;
the respondent indices of a batch come from one call of ``scoring.respondent_indices``. On
PostgreSQL the rows go to one binary COPY for the whole file, and the next batch is prepared
in a second thread while the server stores the previous one; the rows the foreign keys refer
to (campaign, units) are found and locked once, and the COPY runs without the per-row
foreign-key triggers (``_Writer._may_skip_reference_triggers``); on SQLite each batch is one
``executemany`` with the constant columns as literals. Memory stays flat; the careful pass
keeps 12 bytes per row to find duplicate respondent ids.

``insert_responses`` (the batched insert) is shared with the demo data generator.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import io
import json
import os
import queue
import shutil
import tempfile
import threading
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import sqlalchemy as sa
from flask import current_app
from psycopg.adapt import Dumper
from psycopg.pq import Format

import scoring

from ..extensions import db
from ..models import (
    DIMENSION_COLUMNS,
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignStatus,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Source,
    Unit,
    User,
    utcnow,
)
from ..questionnaire import structure_of
from . import audit
from .i18n import N_

#: Rows checked and stored together (and looked up together among stored responses).
BATCH_SIZE = 5_000
#: Problems listed in full; the rest are counted, since nobody reads a million error lines.
MAX_LISTED_PROBLEMS = 1_000
#: Respondent ids are pseudonymised before storing; a raw id longer than this is a wrong column.
MAX_RESPONDENT_ID = 80

CONSULTANT_COLUMNS = ("unit_code", "respondent_id", "customer_group")
CROSS_COLUMNS = ("rater_unit", "ratee_unit", "respondent_id", "customer_group")
#: Optional cross column: the interview's UUID made on the auditor's device, kept as idempotency key.
INTERVIEW_COLUMN = "interview_id"
GROUPS = {group.value: group.value for group in CustomerGroup}

ImportSource = str | os.PathLike[str] | BinaryIO


@dataclass(frozen=True)
class Problem:
    """One reason a file is refused: the line (1 = header), the column if known, and why.

    ``reason`` is English; ``message`` and ``params`` let a page say the same in the reader's language
    (``gettext(message, **params)``).
    """

    #: None for a problem of the whole file (unreadable, campaign closed).
    line: int | None
    column: str | None
    reason: str
    message: str | None = field(default=None, compare=False)
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, line: int | None, column: str | None, message: str, /, **params: Any) -> Problem:
        """A problem whose reason is ``message`` (marked with N_) filled with ``params``."""
        return cls(line, column, message % params if params else message, message, params)

    def __str__(self) -> str:
        if self.line is None:
            return self.reason
        where = f"line {self.line}, {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"


class ImportFileError(ValueError):
    """A file refused whole; ``problems`` lists the first MAX_LISTED_PROBLEMS, ``total`` counts them all."""

    def __init__(self, problems: list[Problem], *, total: int | None = None, bad_rows: int = 0):
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        self.total = total if total is not None else len(problems)
        self.bad_rows = bad_rows
        super().__init__(f"{self.summary}: " + "; ".join(str(p) for p in self.problems[:5]))

    @property
    def unlisted(self) -> int:
        """Problems found but not listed."""
        return self.total - len(self.problems)

    @property
    def summary(self) -> str:
        """What is wrong, in a few words: '3 bad rows', 'bad header', or the one problem of the file."""
        if self.bad_rows:
            return f"{self.bad_rows:,} bad row{'s' if self.bad_rows != 1 else ''}"
        if self.problems and self.problems[0].line == 1:
            return "bad header"
        if len(self.problems) == 1 and self.problems[0].line is None:
            return self.problems[0].reason
        return f"{self.total} problem{'s' if self.total != 1 else ''}"


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    rows: int
    complete: int
    units: int
    source: Source
    file_name: str

    @property
    def incomplete(self) -> int:
        """Rows stored without an index (fewer than half the dimensions answered)."""
        return self.rows - self.complete


@dataclass
class ResponseBatch:
    """Responses to store, column by column; ``answers`` is n × items in questionnaire order, NaN = blank."""

    unit_ids: Sequence[int]
    customer_groups: Sequence[str]
    #: Already pseudonymised.
    respondent_ids: Sequence[str]
    answers: np.ndarray
    rater_unit_ids: Sequence[int | None] | None = None
    assignment_ids: Sequence[int | None] | None = None
    idempotency_keys: Sequence[str | None] | None = None
    invitation_ids: Sequence[int | None] | None = None
    created_by_ids: Sequence[int | None] | None = None

    def __len__(self) -> int:
        return len(self.unit_ids)


# --- The shared batched insert -------------------------------------------------------------------

#: Columns written by the batched insert, in this order.
INSERT_COLUMNS = (
    "campaign_id", "unit_id", "source", "channel", "customer_group", "respondent_id", "questionnaire_version",
    "answers", "respondent_index", "answered_dimensions", "idempotency_key", "invitation_id", "rater_unit_id",
    "assignment_id", "review_state", "created_by_id", "created_at", "updated_at", *DIMENSION_COLUMNS,
)  # fmt: skip


def answers_json(answers: np.ndarray, codes: Sequence[str]) -> list[str]:
    """The answers of each row as JSON text ``{"item": 7, "other": null}``, built without json.dumps per row.

    Items are taken two at a time: the text of a pair (``"a": 7, "b": null``) comes from a small
    table indexed by the pair's values. The pieces of every row, with the braces, the commas and a
    NUL after each row, go into one array, joined into one string and split at the NULs: a few
    calls per batch instead of one formatting per row (three times faster). Item codes are
    [a-z0-9_] (questionnaire.ITEM_CODE_PATTERN): nothing to escape, and no NUL. Answers are whole
    numbers 0–100, NaN for null.
    """
    if len(codes) == 0 or len(answers) == 0:
        return ["{}"] * len(answers)
    positions = np.where(np.isnan(answers), 0, answers + 1).astype(np.intp)  # 0 = null, v + 1 = v
    base = int(positions.max()) + 1
    tables = _json_pairs(tuple(codes), base)
    text = np.empty((len(answers), 2 * len(tables) + 1), dtype=object)
    text[:, 0::2] = ", "
    text[:, 0], text[:, -1] = "{", "}\x00"
    for column, (k, table) in enumerate(zip(range(0, len(codes), 2), tables, strict=True), start=1):
        pair = positions[:, k] * base + positions[:, k + 1] if k + 1 < len(codes) else positions[:, k]
        text[:, 2 * column - 1] = table[pair]
    return "".join(text.ravel().tolist()).split("\x00")[:-1]


@functools.lru_cache(maxsize=8)
def _json_pairs(codes: tuple[str, ...], base: int) -> list[np.ndarray]:
    """Per pair of items, the text of every pair of values below ``base`` (see answers_json)."""
    tokens = ["null", *(str(v) for v in range(0, base - 1))]
    tables = []
    for k in range(0, len(codes), 2):
        if k + 1 < len(codes):
            texts = [f'"{codes[k]}": {first}, "{codes[k + 1]}": {second}' for first in tokens for second in tokens]
        else:
            texts = [f'"{codes[k]}": {token}' for token in tokens]
        tables.append(np.array(texts, dtype=object))
    return tables


def _nullable(values: np.ndarray) -> list[float | None]:
    """A float column as Python values, None for NaN."""
    column = values.astype(object)
    column[np.isnan(values)] = None
    return column.tolist()  # type: ignore[no-any-return]


@dataclass
class _Prepared:
    """One batch as the rows of an insert: the columns sent per row, and the complete rows among them."""

    columns: tuple[str, ...]
    rows: list[Any]
    complete: int
    #: The rows were found to meet the response table's CHECK constraints (SQLite need not check them again).
    checked: bool = False
    #: PostgreSQL: the ids each foreign-key column of the rows refers to (see _Writer._copy_rows).
    references: dict[str, frozenset[int]] = field(default_factory=dict)


#: The response table's foreign keys: column → the table whose ``id`` it refers to.
REFERENCES = {key.parent.name: key.column.table.name for key in Response.__table__.foreign_keys}


class _Writer:
    """Stores prepared batches in the current transaction, the fastest way each backend offers.

    ``prepare`` only computes (respondent indices, JSON text, the rows) and touches no database,
    so it may run in another thread while ``write`` sends the previous batch. On PostgreSQL the
    rows of every batch go to one ``COPY … FROM STDIN`` (binary), kept open from batch to batch,
    so the server keeps working while the next batch is prepared; on SQLite each batch is one
    ``executemany`` of an INSERT whose constant columns are SQL literals.
    """

    def __init__(
        self,
        campaign: Campaign,
        *,
        source: Source,
        channel: Channel,
        created_at: dt.datetime,
        created_by: int | None = None,
    ):
        self.questionnaire = campaign.questionnaire
        self.codes = [item.code for item in self.questionnaire.items]
        self.structure = structure_of(self.questionnaire)
        # Flushed first: rows the session still holds (a new unit, an invitation) must reach the
        # database before rows that refer to them.
        db.session.flush()
        self.connection = db.session.connection()
        dialect = self.connection.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.backend = "postgresql"
        elif dialect.name == "sqlite":
            self.backend = "sqlite"
        else:
            self.backend = "portable"
        stored_now: Any = created_at
        if self.backend == "sqlite":
            # The timestamp goes through its column type once, so it is stored exactly as the ORM stores it.
            stamp = Response.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
            stored_now = stamp(created_at) if stamp else created_at
        #: The same for every row: from the campaign, the enums, the clock and the signed-in user, never from a file.
        self.constants: dict[str, Any] = {
            "campaign_id": campaign.id,
            "source": source.value,
            "channel": channel.value,
            "questionnaire_version": self.questionnaire.version,
            "review_state": ReviewState.RECEIVED.value,
            "created_by_id": created_by,
            "created_at": stored_now,
            "updated_at": stored_now,
        }
        self._copy: Any = None
        self._copy_columns: tuple[str, ...] | None = None
        self._exit: Any = None
        self._statements: dict[tuple[str, ...], str] = {}
        #: PostgreSQL: whether the foreign-key triggers are off for the COPY (None: not decided yet),
        #: and the referenced ids already found and locked.
        self._references_locked: bool | None = None
        self._locked: dict[str, set[int]] = {name: set() for name in REFERENCES}

    # -- computing (no database) --

    def prepare(self, batch: ResponseBatch) -> _Prepared:
        n = len(batch)
        matrix = np.asarray(batch.answers, dtype=float).reshape(n, len(self.codes))
        indexed = scoring.respondent_indices(matrix, self.structure)
        varying: dict[str, Any] = {
            "unit_id": batch.unit_ids,
            "customer_group": batch.customer_groups,
            "respondent_id": batch.respondent_ids,
            "answers": answers_json(matrix, self.codes),
            "respondent_index": _nullable(indexed.index),
            "answered_dimensions": indexed.answered_dimensions.tolist(),
        }
        optional = {
            "idempotency_key": batch.idempotency_keys,
            "invitation_id": batch.invitation_ids,
            "rater_unit_id": batch.rater_unit_ids,
            "assignment_id": batch.assignment_ids,
            "created_by_id": batch.created_by_ids,
        }
        varying.update((name, values) for name, values in optional.items() if values is not None)
        scores = indexed.dimension_scores
        for position in range(scores.shape[1]):
            varying[DIMENSION_COLUMNS[position]] = _nullable(scores[:, position])
        complete = n - int(np.isnan(indexed.index).sum())
        if self.backend == "sqlite":
            # Constant columns are literals of the statement (see _sqlite_statement): only these are bound.
            return _Prepared(tuple(varying), list(zip(*varying.values(), strict=True)), complete,
                             checked=_meets_checks(indexed.index, batch.customer_groups))
        constants = {name: value for name, value in self.constants.items()
                     if value is not None and name not in varying}
        columns = tuple(name for name in INSERT_COLUMNS if name in varying or name in constants)
        values = [varying[name] if name in varying else repeat(constants[name], n) for name in columns]
        references = {
            name: frozenset(varying[name]) - {None} if name in varying else frozenset((constants[name],))
            for name in columns if name in REFERENCES
        }
        rows = list(zip(*values))
        if n > 1:
            # In the order of the unique (campaign, source, unit, respondent) index: its new entries then
            # go to neighbouring pages one after the other, not to random pages of an index that outgrows
            # the server's buffers (a million-row import: 16 % less of the server's CPU time). The
            # covering index's entries follow the unit too. Ids still run without gaps, by batch.
            order = np.lexsort((np.asarray(batch.respondent_ids), np.asarray(batch.unit_ids)))
            rows = [rows[k] for k in order.tolist()]
        return _Prepared(columns, rows, complete, references=references)

    # -- storing (database, the caller's thread) --

    def write(self, prepared: _Prepared) -> None:
        if not prepared.rows:
            return
        if self.backend == "postgresql":
            with self._as_integrity_error():
                self._copy_rows(prepared)
        elif self.backend == "sqlite":
            statement = self._sqlite_statement(prepared.columns)
            if not prepared.checked:
                self.connection.exec_driver_sql(statement, prepared.rows)
                return
            # The rows meet the CHECK constraints (_meets_checks; the other checked columns are literals
            # from the enums): SQLite is spared evaluating five of them per row, a quarter of the insert's time.
            dbapi_connection = self.connection.connection.dbapi_connection
            dbapi_connection.execute("PRAGMA ignore_check_constraints = ON")  # type: ignore[union-attr]
            try:
                self.connection.exec_driver_sql(statement, prepared.rows)
            finally:
                dbapi_connection.execute("PRAGMA ignore_check_constraints = OFF")  # type: ignore[union-attr]
        else:
            # Any other database: the portable (slower) way, through the column types.
            answers = prepared.columns.index("answers")
            constants = {name: value for name, value in self.constants.items() if name not in prepared.columns}
            self.connection.execute(
                sa.insert(Response.__table__),
                [{**constants, **dict(zip(prepared.columns, row, strict=True)), "answers": json.loads(row[answers])}
                 for row in prepared.rows],
            )

    def close(self) -> None:
        """End the open COPY, if any (its errors, such as a duplicate key, are raised here at the latest),
        and turn the foreign-key triggers back on."""
        self._end_copy()
        if self._references_locked:
            self._set_replication_role("origin")
            self._references_locked = None

    def _end_copy(self) -> None:
        if self._exit is not None:
            exit_, self._exit, self._copy, self._copy_columns = self._exit, None, None, None
            with self._as_integrity_error():
                exit_(None, None, None)

    @contextmanager
    def _as_integrity_error(self) -> Iterator[None]:
        """A duplicate key met by the COPY (on the raw connection) raised as SQLAlchemy raises it elsewhere."""
        try:
            yield
        except self.connection.dialect.loaded_dbapi.IntegrityError as exc:
            raise sa.exc.IntegrityError("COPY response", None, exc) from exc

    def abort(self, error: BaseException) -> None:
        """End the open COPY after a failure; the caller rolls the transaction back, which also turns the
        foreign-key triggers back on (they are off for this transaction only)."""
        if self._exit is not None:
            exit_, self._exit, self._copy, self._copy_columns = self._exit, None, None, None
            try:
                exit_(type(error), error, error.__traceback__)
            except Exception:  # noqa: BLE001 — the first error is the one to report
                pass

    def _sqlite_statement(self, columns: tuple[str, ...]) -> str:
        statement = self._statements.get(columns)
        if statement is None:
            fixed = [name for name in INSERT_COLUMNS if name not in columns]
            # Bound columns first, in the order of the prepared rows; the others are literals, and only
            # values that never come from a file are: ids, enum values, the clock, NULL.
            names = [*columns, *fixed]
            values = ["?" for _ in columns] + [_sql_literal(self.constants.get(name)) for name in fixed]
            statement = f"INSERT INTO response ({', '.join(names)}) VALUES ({', '.join(values)})"
            self._statements[columns] = statement
        return statement

    def _copy_rows(self, prepared: _Prepared) -> None:
        if self._references_locked is None:
            self._references_locked = self._may_skip_reference_triggers()
        unlocked = {name: ids - self._locked[name] for name, ids in prepared.references.items()
                    if not ids <= self._locked[name]} if self._references_locked else {}
        if self._copy_columns != prepared.columns or unlocked:
            self._end_copy()
            if unlocked and not self._lock_references(unlocked):
                # A reference to nothing: the triggers go back on, and raise the usual error for it.
                self._set_replication_role("origin")
                self._references_locked = False
            self._open_copy(prepared.columns)
        write_row = self._copy.write_row
        for row in prepared.rows:
            write_row(row)

    # What a foreign key's trigger does for every row (find the referenced row and lock it against
    # deletion until the transaction ends), the writer does once for every referenced id: the campaign,
    # a file's few dozen units, the signed-in user. The COPY then runs with
    # session_replication_role = replica, which turns the response table's triggers off for this
    # transaction only; the response table has no triggers but those of its foreign keys (tested).
    # Measured: a third of the server's time in a million-row import (bench/RESULTS.md, "Import").
    # A role not allowed to set it (GRANT SET ON PARAMETER session_replication_role, PostgreSQL 15)
    # keeps the triggers on: the same rows, stored more slowly.

    def _may_skip_reference_triggers(self) -> bool:
        """Whether the connection's role may turn the triggers off; if so, turn them off."""
        if self.connection.dialect.server_version_info < (15,):
            allowed = "current_setting('is_superuser') = 'on'"
        else:
            allowed = "has_parameter_privilege('session_replication_role', 'SET')"
        may, role = self.connection.exec_driver_sql(
            f"SELECT {allowed}, current_setting('session_replication_role')"
        ).one()
        if not may or role != "origin":
            return False
        self._set_replication_role("replica")
        return True

    def _set_replication_role(self, role: str) -> None:
        self.connection.exec_driver_sql(
            "SELECT set_config('session_replication_role', %(role)s, true)", {"role": role}
        )

    def _lock_references(self, unlocked: Mapping[str, frozenset[int]]) -> bool:
        """Find and lock (FOR KEY SHARE, as a foreign key's trigger does) the rows these ids refer to;
        whether all of them exist."""
        for name, ids in unlocked.items():
            table = REFERENCES[name]
            found = self.connection.exec_driver_sql(
                f"SELECT id FROM {table} WHERE id = ANY(%(ids)s) FOR KEY SHARE", {"ids": sorted(ids)}
            ).scalars().all()
            self._locked[name].update(found)
            if len(found) != len(ids):
                return False
        return True

    def _open_copy(self, columns: tuple[str, ...]) -> None:
        dbapi_connection = self.connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        # The answers arrive as JSON text; the dumper of the json column passes them on as they are.
        dumper = type("JsonText", (_JsonText,), {"oid": cursor.adapters.types["json"].oid})
        cursor.adapters.register_dumper(_PrebuiltJson, dumper)
        statement = f"COPY response ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        # psycopg's default writer: when the server falls behind, write_row waits for it (memory stays
        # flat) while the next batch is prepared in the other thread. Its queued writer was no faster
        # here and held up to 32 MiB more at a million rows.
        manager = cursor.copy(statement)
        copy = manager.__enter__()
        copy.set_types([COPY_TYPES[name] for name in columns])

        def exit_(kind: Any, error: Any, traceback: Any) -> None:
            try:
                manager.__exit__(kind, error, traceback)
            finally:
                cursor.close()

        self._copy, self._copy_columns, self._exit = copy, columns, exit_


#: The response table's CHECK constraints, all of them met by rows the writer has verified (see _meets_checks).
VERIFIED_CHECKS = frozenset({"ck_response_index_range", "ck_response_source", "ck_response_channel",
                             "ck_response_customergroup", "ck_response_reviewstate"})
#: The values the response table's CHECK constraints allow for the customer group (ck_response_customergroup).
GROUP_VALUES = frozenset(GROUPS)


def _meets_checks(index: np.ndarray, customer_groups: Iterable[str]) -> bool:
    """Whether rows meet the CHECK constraints of the response table on their varying columns.

    ck_response_index_range (an index is NULL or within 0–100) and ck_response_customergroup; the
    other CHECKs (source, channel, review state) hold for the enum values the writer uses as literals.
    """
    out_of_range = (index < 0) | (index > 100)  # NaN (no index) compares False: allowed
    return not bool(out_of_range.any()) and set(customer_groups) <= GROUP_VALUES


def _sql_literal(value: Any) -> str:
    """A constant of the INSERT as SQL text: NULL, an integer, or a quoted string (ids, enum values, a timestamp)."""
    if value is None:
        return "NULL"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def insert_responses(
    campaign: Campaign,
    batch: ResponseBatch,
    *,
    source: Source,
    channel: Channel,
    created_at: dt.datetime | None = None,
) -> int:
    """Store one batch with its respondent indices; return how many are complete (have an index).

    Does not commit and records no audit event: callers do both once for the whole file or demo.
    The rows go to the database in one statement: COPY on PostgreSQL, executemany on SQLite.
    """
    if len(batch) == 0:
        return 0
    writer = _Writer(campaign, source=source, channel=channel, created_at=created_at or utcnow())
    prepared = writer.prepare(batch)
    try:
        writer.write(prepared)
    except BaseException as exc:
        writer.abort(exc)
        raise
    writer.close()
    return prepared.complete


#: PostgreSQL types of INSERT_COLUMNS, for the binary COPY (no text formatting or parsing per value).
COPY_TYPES = dict(zip(INSERT_COLUMNS, (
    "int4", "int4", "varchar", "varchar", "varchar", "varchar", "int4",
    "json", "float8", "int4", "varchar", "int4", "int4",
    "int4", "varchar", "int4", "timestamptz", "timestamptz", *("float8" for _ in DIMENSION_COLUMNS),
), strict=True))  # fmt: skip


class _JsonText(Dumper):
    """Sends JSON text that is already built as a binary json value (which is the text itself)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj.encode("utf-8")


class _PrebuiltJson(str):
    """Never instantiated: registers the json dumper under the json type, which ``set_types`` looks up."""


@dataclass(frozen=True)
class Stored:
    """What ``insert_in_batches`` stored: every row carries the same ``created_at``."""

    rows: int
    complete: int
    source: Source
    channel: Channel
    created_at: dt.datetime
    #: The ids of the rows as one [first, last] run, when known without looking at the rows (see insert_in_batches).
    id_range: tuple[int, int] | None = None


def insert_in_batches(
    campaign: Campaign,
    batches: Iterable[ResponseBatch],
    *,
    source: Source,
    channel: Channel,
    progress: Callable[[int], None] | None = None,
    created_by: int | None = None,
    prefetch: bool = False,
) -> Stored:
    """Store batches one after the other, all with one timestamp. Does not commit.

    With ``prefetch`` the batches may be produced and prepared in a second thread while the
    previous one is stored (on PostgreSQL); they must then be made without the database (no
    session use). A file import sets it, and also gets its own SQLite page cache size.
    """
    now = utcnow()
    writer = _Writer(campaign, source=source, channel=channel, created_at=now, created_by=created_by)
    total = complete = 0
    restore_cache = _smaller_cache(writer.connection) if prefetch else None
    last_id = sa.select(sa.func.max(Response.id))
    before = writer.connection.scalar(last_id) or 0
    prepared_batches: Iterator[tuple[int, _Prepared]] = ((len(batch), writer.prepare(batch)) for batch in batches)
    if prefetch and writer.backend != "sqlite":
        # Measured: PostgreSQL's server works on one batch while the next is prepared (100k rows 3.6 s
        # instead of 4.2 s). SQLite gains nothing (sqlite3 takes the GIL back for every row, so the two
        # threads take turns) and would hold two more batches in memory (35 MiB).
        prepared_batches = _prefetched(prepared_batches)
    try:
        for rows, prepared in prepared_batches:
            writer.write(prepared)
            complete += prepared.complete
            total += rows
            if progress is not None:
                progress(rows)
        writer.close()
    except BaseException as exc:
        writer.abort(exc)
        raise
    finally:
        for done_with in (prepared_batches, batches):
            close = getattr(done_with, "close", None)
            if close is not None:
                close()
        if restore_cache is not None:
            restore_cache()
    # Every id given to these rows is above ``before`` (ids only grow), and they are ``total`` different ids
    # up to the largest id now seen: when that leaves no room for anyone else's, they are exactly this run.
    after = writer.connection.scalar(last_id) or 0
    id_range = (before + 1, after) if total and after - before == total else None
    return Stored(total, complete, source, channel, now, id_range)


#: The SQLite page cache of the connection during a file import, in KiB (None: keep the connection's).
SQLITE_IMPORT_CACHE_KIB: int | None = 64 * 1024


def _smaller_cache(connection: sa.Connection) -> Callable[[], None] | None:
    """On SQLite, give the import its own page cache size; return how to restore the connection's."""
    if connection.dialect.name != "sqlite" or SQLITE_IMPORT_CACHE_KIB is None:
        return None
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {-int(SQLITE_IMPORT_CACHE_KIB)}")

    def restore() -> None:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")

    return restore


class _Failed:
    """An exception raised by the producing thread, handed to the consuming one."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def _prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``items`` in a second thread, up to ``depth`` ahead; its exceptions are raised here.

    Stopping early (an error while storing) stops the thread and closes ``items`` before returning.
    """
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 — handed over and raised in the consuming thread
            put(_Failed(exc))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="import-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()


def stored_id_ranges(campaign: Campaign, stored: Stored) -> list[list[int]]:
    """The ids of the rows one ``insert_in_batches`` call stored, as [first, last] runs (gaps and islands in SQL)."""
    if stored.id_range is not None:
        return [list(stored.id_range)]
    numbered = (
        sa.select(Response.id, (Response.id - sa.func.row_number().over(order_by=Response.id)).label("island"))
        .where(
            Response.campaign_id == campaign.id,
            Response.source == stored.source,
            Response.channel == stored.channel,
            Response.created_at == stored.created_at,
        )
        .subquery()
    )
    runs = db.session.execute(
        sa.select(sa.func.min(numbered.c.id), sa.func.max(numbered.c.id))
        .group_by(numbered.c.island)
        .order_by(sa.func.min(numbered.c.id))
    )
    return [[first, last] for first, last in runs]


def record_import(
    campaign: Campaign, stored: Stored, file_name: str, *, user: User | None = None, actor: str | None = None
) -> None:
    """Record one audit event for a whole import, naming the file and the ids of the rows it added.

    One event per row would double the cost of a million-row import; the id runs let the trail
    still say which file every imported response came from.
    """
    audit.record(
        "import",
        "campaign",
        campaign.code,
        after={
            "file": file_name,
            "rows": stored.rows,
            "source": stored.source.value,
            "channel": stored.channel.value,
            "response_ids": stored_id_ranges(campaign, stored),
        },
        user=user,
        actor=actor,
    )


class Pseudonymiser:
    """``responses.pseudonymise`` made fast for files: the same keyed hash (HMAC-SHA256, first 40 hex digits).

    HMAC hashes the key's inner and outer pads before the id every time; here both are hashed
    once, and each id costs two copies of those SHA-256 states (RFC 2104, done by hand), about
    2.5 times faster than ``hmac.digest`` per id. The value stored is the same (tested).
    """

    BLOCK = 64  # SHA-256's block size, in bytes

    def __init__(self) -> None:
        key = current_app.config["PSEUDONYM_KEY"].encode("utf-8")
        key = key if len(key) <= self.BLOCK else hashlib.sha256(key).digest()
        key = key.ljust(self.BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def __call__(self, respondent_id: str) -> str:
        return self.many([respondent_id.strip()])[0]

    def many(self, respondent_ids: Iterable[str]) -> list[str]:
        """Pseudonymise ids that are already stripped (as the checker keeps them)."""
        inner_start, outer_start = self._inner, self._outer
        pseudonyms = []
        for raw in respondent_ids:
            inner = inner_start.copy()
            inner.update(raw.encode("utf-8"))
            outer = outer_start.copy()
            outer.update(inner.digest())
            pseudonyms.append(outer.digest()[:20].hex())
        return pseudonyms


# --- Reading the file ------------------------------------------------------------------------------


class _Stop(Exception):
    """The file cannot be read any further; carries the problem to report."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class _Reopenable:
    """A path or a binary stream that can be read from its start more than once."""

    def __init__(self, source: ImportSource):
        self._spool: Any = None
        self.path: Path | None = None
        self.stream: BinaryIO | None = None
        self._start = 0
        if isinstance(source, str | os.PathLike):
            self.path = Path(source)
            self.name = self.path.name
            return
        self.name = Path(str(getattr(source, "name", "upload.csv"))).name
        if source.seekable():
            self.stream, self._start = source, source.tell()
        else:
            # An upload that cannot seek is copied once, to memory while small and to disk beyond that.
            self._spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (closed by close())
            shutil.copyfileobj(source, self._spool)
            self.stream = self._spool

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.path is not None:
            try:
                handle = self.path.open("rb")
            except OSError as exc:
                raise ImportFileError([Problem.of(None, None, N_("cannot read the file (%(error)s)"),
                                                  error=exc.strerror)]) from None
            with handle:
                yield handle
        else:
            assert self.stream is not None
            self.stream.seek(self._start)
            yield self.stream

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def _first_undecodable_line(stream: BinaryIO, start: int) -> Problem:
    """Find the line that is not UTF-8 (only when decoding failed, so speed does not matter)."""
    stream.seek(start)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    for number, raw in enumerate(stream, start=1):
        try:
            decoder.decode(raw)
        except UnicodeDecodeError as exc:
            return Problem.of(number, None, N_("not UTF-8 text (byte %(byte)s of the line); "
                                               "save the file as 'CSV UTF-8' and import it again"), byte=exc.start + 1)
    return Problem.of(None, None, N_("the file ends in the middle of a character; it is not UTF-8 text"))


@contextmanager
def _reader(stream: BinaryIO) -> Iterator[Iterator[tuple[list[int], list[list[str]]]]]:
    """Yield the file's records in chunks of BATCH_SIZE: (line where each record starts, its fields).

    The first chunk holds the header alone. Blank records are skipped. Raises _Stop for a file
    that is empty, UTF-16, not UTF-8, or not CSV.
    """
    start = stream.tell()
    head = stream.read(4096)
    stream.seek(start)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _Stop(Problem.of(1, None, N_("the file is UTF-16 text; save it as 'CSV UTF-8' and import it again")))
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise _Stop(Problem.of(1, None, N_("the file is empty; it needs a header row and one row per respondent")))
    first_line = head.split(b"\n", 1)[0]
    # Excel in a Vietnamese locale separates fields with ';': accept it when the header shows it.
    delimiter = ";" if first_line.count(b";") > first_line.count(b",") else ","
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")

    def chunks() -> Iterator[tuple[list[int], list[list[str]]]]:
        reader = csv.reader(text, delimiter=delimiter)
        lines: list[int] = []
        rows: list[list[str]] = []
        line = 1
        limit = 1  # the header alone first, then BATCH_SIZE records at a time
        try:
            for fields in reader:
                # The first field decides for almost every record; only a record starting blank is joined.
                if fields and (fields[0].strip() or "".join(fields).strip()):
                    lines.append(line)
                    rows.append(fields)
                    if len(rows) >= limit:
                        yield lines, rows
                        lines, rows, limit = [], [], BATCH_SIZE
                line = reader.line_num + 1
        except UnicodeDecodeError:
            raise _Stop(_first_undecodable_line(stream, start)) from None
        except csv.Error as exc:
            raise _Stop(Problem.of(reader.line_num, None, N_("not readable as CSV (%(error)s)"), error=str(exc))) from None
        if rows:
            yield lines, rows

    try:
        yield chunks()
    finally:
        # Hand the caller's stream back open: closing the wrapper would close it.
        text.detach()


# --- Checking rows ---------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """The good rows of a chunk, column by column (respondent ids still raw)."""

    lines: list[int]
    unit_ids: list[int]
    groups: list[str]
    respondent_ids: list[str]
    answers: np.ndarray
    rater_unit_ids: list[int | None] | None
    assignment_ids: list[int | None] | None
    interview_keys: list[str | None] | None


class _Checker:
    """Checks chunks of records against the header, the units, the assignments and the questionnaire."""

    def __init__(self, campaign: Campaign, source: Source, header: list[str]):
        self.campaign = campaign
        self.source = source
        questionnaire = campaign.questionnaire
        self.scale_min, self.scale_max = questionnaire.scale_min, questionnaire.scale_max
        #: The usual spellings of an answer, straight to its value; anything else takes the slow path.
        self.scale: dict[str, float] = {str(v): float(v) for v in range(self.scale_min, self.scale_max + 1)}
        self.scale[""] = float("nan")
        self.units = {code: unit_id for unit_id, code in db.session.execute(sa.select(Unit.id, Unit.code))}
        self.item_codes = [item.code for item in questionnaire.items]
        fixed = CONSULTANT_COLUMNS if source == Source.CONSULTANT else CROSS_COLUMNS
        optional = (INTERVIEW_COLUMN,) if source == Source.CROSS else ()
        names = [name.strip() for name in header]
        self.width = len(names)
        seen: dict[str, int] = {}
        duplicated = []
        for position, name in enumerate(names):
            if name in seen:
                duplicated.append(name)
            else:
                seen[name] = position
        expected = list(fixed) + self.item_codes
        missing = [name for name in expected if name not in seen]
        unknown = [name for name in seen if name not in expected and name not in optional]
        problems = []
        if missing:
            problems.append(
                Problem.of(1, None, N_("missing column(s) %(missing)s; the header must be %(header)s"),
                           missing=", ".join(missing), header=",".join(expected))
            )
        if unknown:
            shown = ", ".join(f"'{name[:40]}'" for name in unknown[:20])
            problems.append(
                Problem.of(1, None, N_("unknown column(s) %(columns)s: neither an import column nor an item of "
                                       "questionnaire %(questionnaire)s v%(version)s"),
                           columns=shown, questionnaire=questionnaire.code, version=questionnaire.version)
            )
        if duplicated:
            problems.append(Problem.of(1, None, N_("column(s) %(columns)s appear twice"),
                                       columns=", ".join(sorted(set(duplicated)))))
        if problems:
            raise ImportFileError(problems)
        self.position = seen
        positions = [seen[code] for code in self.item_codes]
        self.item_values: Callable[[list[str]], Any] = (
            itemgetter(*positions) if len(positions) > 1 else (lambda row: (row[positions[0]],))
        )
        self.assignments: dict[tuple[int, int], tuple[int, AssignmentStatus]] = {}
        if source == Source.CROSS:
            rows = db.session.execute(
                sa.select(Assignment.rater_unit_id, Assignment.ratee_unit_id, Assignment.id, Assignment.status).where(
                    Assignment.campaign_id == campaign.id
                )
            )
            self.assignments = {(rater, ratee): (a_id, status) for rater, ratee, a_id, status in rows}

    def check(self, lines: list[int], records: list[list[str]]) -> tuple[_Chunk, list[Problem]]:
        """Split a chunk into its good rows and the problems of its bad ones."""
        problems: list[Problem] = []
        width = self.width
        if any(len(record) != width for record in records):
            kept = []
            for line, record in zip(lines, records, strict=True):
                if len(record) == width:
                    kept.append((line, record))
                else:
                    problems.append(Problem.of(line, None, N_("%(fields)s fields, but the header has %(width)s"),
                                               fields=len(record), width=width))
            lines, records = [line for line, _ in kept], [record for _, record in kept]
        n = len(records)
        bad = bytearray(n)
        column = self.position
        rater_ids = assignment_ids = keys = None
        if self.source == Source.CONSULTANT:
            unit_ids = self._units(lines, records, "unit_code", bad, problems)
        else:
            rater_ids = self._units(lines, records, "rater_unit", bad, problems)
            unit_ids = self._units(lines, records, "ratee_unit", bad, problems)
            assignment_ids = self._assignments(lines, records, rater_ids, unit_ids, bad, problems)
            if INTERVIEW_COLUMN in column:
                keys = self._interviews(lines, records, bad, problems)
        at = column["respondent_id"]
        respondent_ids = [record[at].strip() for record in records]
        if "" in respondent_ids or (respondent_ids and max(map(len, respondent_ids)) > MAX_RESPONDENT_ID):
            for row, value in enumerate(respondent_ids):
                if not value or len(value) > MAX_RESPONDENT_ID:
                    bad[row] = 1
                    problems.append(
                        Problem.of(lines[row], "respondent_id", N_("missing")) if not value else
                        Problem.of(lines[row], "respondent_id", N_("longer than %(limit)s characters"),
                                   limit=MAX_RESPONDENT_ID)
                    )
        at = column["customer_group"]
        groups = [GROUPS.get(record[at]) for record in records]
        if None in groups:
            for row, group in enumerate(groups):
                if group is None:
                    raw = records[row][at].strip()
                    groups[row] = GROUPS.get(raw.lower())
                    if groups[row] is None:
                        bad[row] = 1
                        problems.append(Problem.of(lines[row], "customer_group",
                                                   N_("'%(value)s' is not household or business"), value=raw[:30]))
        answers = self._answers(lines, records, bad, problems)
        good = [row for row in range(n) if not bad[row]] if any(bad) else None

        def keep(values: list[Any] | None) -> Any:
            if values is None or good is None:
                return values
            return [values[row] for row in good]

        chunk = _Chunk(
            lines=keep(lines),
            unit_ids=keep(unit_ids),
            groups=keep(groups),
            respondent_ids=keep(respondent_ids),
            answers=answers if good is None else answers[good],
            rater_unit_ids=keep(rater_ids),
            assignment_ids=keep(assignment_ids),
            interview_keys=keep(keys),
        )
        return chunk, problems

    def _units(
        self, lines: list[int], records: list[list[str]], name: str, bad: bytearray, problems: list[Problem]
    ) -> list[Any]:
        at = self.position[name]
        found = [self.units.get(record[at]) for record in records]
        if None in found:
            for row, unit_id in enumerate(found):
                if unit_id is None:
                    raw = records[row][at].strip()
                    found[row] = self.units.get(raw.lower())
                    if found[row] is None:
                        bad[row] = 1
                        problems.append(Problem.of(lines[row], name, N_("unknown unit '%(value)s'"), value=raw[:40])
                                        if raw else Problem.of(lines[row], name, N_("missing")))
        return found

    def _assignments(
        self,
        lines: list[int],
        records: list[list[str]],
        rater_ids: list[Any],
        ratee_ids: list[Any],
        bad: bytearray,
        problems: list[Problem],
    ) -> list[int | None]:
        result: list[int | None] = []
        rater_at, ratee_at = self.position["rater_unit"], self.position["ratee_unit"]
        for row, (rater_id, ratee_id) in enumerate(zip(rater_ids, ratee_ids, strict=True)):
            found = self.assignments.get((rater_id, ratee_id))
            if found is not None and found[1] == AssignmentStatus.OPEN:
                result.append(found[0])
                continue
            result.append(None)
            if rater_id is None or ratee_id is None:
                continue  # the unknown unit is already reported
            bad[row] = 1
            rater, ratee = records[row][rater_at].strip(), records[row][ratee_at].strip()
            if rater_id == ratee_id:
                message = N_("a unit never scores itself (%(rater)s → %(ratee)s)")
            elif found is None:
                message = N_("%(rater)s has no assignment to score %(ratee)s in campaign %(campaign)s")
            else:
                message = N_("the assignment %(rater)s → %(ratee)s is already submitted; "
                             "headquarters must reopen it before rows can be added")
            problems.append(Problem.of(lines[row], "ratee_unit", message, rater=rater, ratee=ratee,
                                       campaign=self.campaign.code))
        return result

    def _interviews(
        self, lines: list[int], records: list[list[str]], bad: bytearray, problems: list[Problem]
    ) -> list[str | None]:
        at = self.position[INTERVIEW_COLUMN]
        keys: list[str | None] = []
        for row, record in enumerate(records):
            raw = record[at].strip()
            if not raw:
                keys.append(None)
                continue
            try:
                keys.append(str(uuid.UUID(raw)))
            except ValueError:
                keys.append(None)
                bad[row] = 1
                problems.append(Problem.of(lines[row], INTERVIEW_COLUMN, N_("'%(value)s' is not a UUID"), value=raw[:40]))
        return keys

    def _answers(
        self, lines: list[int], records: list[list[str]], bad: bytearray, problems: list[Problem]
    ) -> np.ndarray:
        width = len(self.item_codes)
        values = list(map(self.scale.get, chain.from_iterable(map(self.item_values, records))))
        if None in values:
            for cell, value in enumerate(values):
                if value is None:
                    row, item = divmod(cell, width)
                    values[cell] = self._slow_answer(lines[row], self.item_codes[item], records[row], item, bad, row,
                                                     problems)
        return np.array(values, dtype=float).reshape(len(records), width)

    def _slow_answer(
        self, line: int, code: str, record: list[str], item: int, bad: bytearray, row: int, problems: list[Problem]
    ) -> float:
        text = self.item_values(record)[item].strip()
        if text in self.scale:
            return self.scale[text]
        try:
            number = int(text)
        except ValueError:
            problems.append(Problem.of(line, code, N_("'%(value)s' is not a whole number"), value=text[:20]))
        else:
            if self.scale_min <= number <= self.scale_max:
                return float(number)
            problems.append(Problem.of(line, code, N_("%(value)s is outside %(low)s–%(high)s"), value=number,
                                       low=self.scale_min, high=self.scale_max))
        bad[row] = 1
        return float("nan")


class _Problems:
    """Collects problems up to MAX_LISTED_PROBLEMS, counts the rest, and counts the bad rows."""

    def __init__(self) -> None:
        self.listed: list[Problem] = []
        self.total = 0
        self.bad_lines: set[int] = set()

    def add(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.total += 1
            if problem.line is not None and problem.line > 1:
                self.bad_lines.add(problem.line)
            if len(self.listed) < MAX_LISTED_PROBLEMS:
                self.listed.append(problem)

    def error(self) -> ImportFileError | None:
        if not self.total:
            return None
        return ImportFileError(self.listed, total=self.total, bad_rows=len(self.bad_lines))


class _Seen:
    """Hashes of keys with their lines, compared after the pass: 12 bytes per row instead of a set of strings."""

    def __init__(self) -> None:
        self.hashes: array[int] = array("q")
        self.lines: array[int] = array("i")

    def add(self, lines: list[int], keys: Iterable[Any]) -> None:
        self.hashes.extend(map(hash, keys))
        self.lines.extend(lines)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """(line, first line with the same key) for every repeat."""
        if len(self.hashes) < 2:
            return
        hashes = np.frombuffer(self.hashes, dtype=np.int64)
        lines = np.frombuffer(self.lines, dtype=np.int32)
        order = np.lexsort((lines, hashes))
        sorted_hashes, sorted_lines = hashes[order], lines[order]
        repeat_ = np.empty(len(order), dtype=bool)
        repeat_[0] = False
        repeat_[1:] = sorted_hashes[1:] == sorted_hashes[:-1]
        run_start = np.maximum.accumulate(np.where(repeat_, 0, np.arange(len(order))))
        for position in np.flatnonzero(repeat_):
            yield int(sorted_lines[position]), int(sorted_lines[run_start[position]])


class _StoredCheck:
    """Looks up a chunk's respondent ids (and interview ids) among the campaign's stored responses."""

    def __init__(self, campaign: Campaign, source: Source, pseudonymise: Pseudonymiser):
        self.campaign, self.source, self.pseudonymise = campaign, source, pseudonymise
        # Most imports go into a programme with no rows yet: then no look-up is needed at all.
        self.any_respondents = bool(
            db.session.scalar(
                sa.select(sa.exists().where(Response.campaign_id == campaign.id, Response.source == source))
            )
        )
        self.any_keys = bool(
            db.session.scalar(
                sa.select(
                    sa.exists().where(Response.campaign_id == campaign.id, Response.idempotency_key.is_not(None))
                )
            )
        )

    def check(self, chunk: _Chunk) -> list[Problem]:
        found: list[Problem] = []
        if self.any_respondents and chunk.lines:
            pseudonyms = self.pseudonymise.many(chunk.respondent_ids)
            stored = set(
                db.session.execute(
                    sa.select(Response.unit_id, Response.respondent_id).where(
                        Response.campaign_id == self.campaign.id,
                        Response.source == self.source,
                        Response.respondent_id.in_(set(pseudonyms)),
                    )
                ).tuples()
            )
            for line, unit_id, pseudonym, raw in zip(
                chunk.lines, chunk.unit_ids, pseudonyms, chunk.respondent_ids, strict=True
            ):
                if (unit_id, pseudonym) in stored:
                    found.append(
                        Problem.of(line, "respondent_id", N_("'%(value)s' is already stored for this unit in "
                                                             "campaign %(campaign)s (%(source)s responses)"),
                                   value=raw[:40], campaign=self.campaign.code, source=str(self.source))
                    )
        keys = chunk.interview_keys
        if self.any_keys and keys and any(keys):
            stored_keys = set(
                db.session.scalars(
                    sa.select(Response.idempotency_key).where(
                        Response.campaign_id == self.campaign.id,
                        Response.idempotency_key.in_({key for key in keys if key}),
                    )
                )
            )
            found += [
                Problem.of(line, INTERVIEW_COLUMN, N_("interview %(key)s is already stored"), key=key)
                for line, key in zip(chunk.lines, keys, strict=True)
                if key in stored_keys
            ]
        return found


# --- The use cases ---------------------------------------------------------------------------------


def import_consultant(
    campaign: Campaign,
    source: ImportSource,
    *,
    user: User | None = None,
    actor: str | None = "cli",
    file_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the consultant's interview file (unit_code,respondent_id,customer_group,<items…>), all or nothing.

    Raises ImportFileError listing every bad row; then nothing is stored.
    """
    return _import(campaign, source, Source.CONSULTANT, user, actor, file_name, progress)


def import_cross(
    campaign: Campaign,
    source: ImportSource,
    *,
    user: User | None = None,
    actor: str | None = "cli",
    file_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import cross-scoring interviews (rater_unit,ratee_unit,respondent_id,customer_group,<items…>[,interview_id]).

    Every pair must be an open assignment of the campaign. Raises ImportFileError listing every
    bad row; then nothing is stored.
    """
    return _import(campaign, source, Source.CROSS, user, actor, file_name, progress)


def _import(
    campaign: Campaign,
    source: ImportSource,
    kind: Source,
    user: User | None,
    actor: str | None,
    file_name: str | None,
    progress: Callable[[int, int], None] | None,
) -> ImportResult:
    if campaign.status == CampaignStatus.CLOSED:
        raise ImportFileError([Problem.of(None, None, N_("campaign %(campaign)s is closed; it takes no more responses"),
                                          campaign=campaign.code)])
    reopenable = _Reopenable(source)
    name = file_name or reopenable.name
    try:
        try:
            # A good file is read once: checked and stored together, in one transaction.
            stored, units = _store_in_one_pass(campaign, kind, reopenable, user, progress)
        except (_Doubt, _Stop, ImportFileError, sa.exc.IntegrityError):
            # Anything wrong or unusual: nothing is kept, and the file is read the careful way, which
            # lists every problem (or, for an unusual but good file, stores it after all).
            db.session.rollback()
            expected = _check_file(campaign, kind, reopenable)
            stored, units = _store_file(campaign, kind, reopenable, user, expected, progress)
        record_import(campaign, stored, name, user=user, actor=actor)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        reopenable.close()
    _refresh_statistics(stored.rows)
    return ImportResult(rows=stored.rows, complete=stored.complete, units=units, source=kind, file_name=name)


class _Doubt(Exception):
    """The one pass met a problem, or something it leaves to the careful reading of the file."""


def _store_in_one_pass(
    campaign: Campaign,
    kind: Source,
    reopenable: _Reopenable,
    user: User | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[Stored, int]:
    """Check and store the file in one reading; raise _Doubt (or the error met) at the first problem.

    Plain consultant files (UTF-8, no quotes, one record per line) are parsed by pandas' C reader,
    column by column; any other file by the csv module and the same checks as the careful pass.
    Duplicate respondents, in the file or already stored, are refused by the unique index.
    """
    pseudonymise = Pseudonymiser()
    units: set[int] = set()
    batches = _plain_batches(campaign, kind, reopenable, pseudonymise, units)
    if batches is None:
        batches = _checked_batches(campaign, kind, reopenable, pseudonymise, units, doubt=True)
    expected = _count_rows(reopenable) if progress is not None else 0
    stored = insert_in_batches(campaign, batches, source=kind, channel=Channel.IMPORT,
                               progress=_counter(progress, expected),
                               created_by=user.id if user is not None else None, prefetch=True)
    if stored.rows == 0:
        raise _Doubt("no rows")
    return stored, len(units)


def _counter(progress: Callable[[int, int], None] | None, expected: int) -> Callable[[int], None] | None:
    """``progress(rows done, rows expected)`` fed batch by batch (expected grows if the count fell short)."""
    if progress is None:
        return None
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(done, max(expected, done))

    return advance


def _count_rows(reopenable: _Reopenable) -> int:
    """The lines after the header: the rows to expect, for a progress bar (blank lines count too)."""
    lines, last = 0, b"\n"
    with reopenable.open() as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


#: Bytes of a plain file parsed at once (about 15,000 consultant rows).
PLAIN_BLOCK_BYTES = 1 << 20


def _plain_batches(
    campaign: Campaign, kind: Source, reopenable: _Reopenable, pseudonymise: Pseudonymiser, units: set[int]
) -> Iterator[ResponseBatch] | None:
    """Batches of a plain consultant file read with pandas, or None when the file does not start plainly.

    Plain: UTF-8, the header line without quotes. Each block of lines must then be plain too (no
    quote, no NUL, no lone CR, every line with the header's number of fields) and hold only the
    exact spellings the careful pass accepts at once (unit codes, groups, answers as written in
    the questionnaire's scale); anything else raises _Doubt, and the careful pass takes over. The
    values stored are the ones the careful pass would store.
    """
    if kind != Source.CONSULTANT:
        return None
    with reopenable.open() as stream:
        head = stream.read(65536)
    bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    line_end = head.find(b"\n", bom)
    if line_end < 0:
        return None
    first_line = head[bom:line_end].removesuffix(b"\r")
    if any(mark in first_line for mark in (b'"', b"\r", b"\x00")):
        return None
    try:
        header_text = first_line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # The delimiter as the csv reader chooses it (see _reader).
    delimiter = ";" if first_line.count(b";") > first_line.count(b",") else ","
    header = header_text.split(delimiter)
    checker = _Checker(campaign, kind, header)  # a bad header raises here, listed as the careful pass lists it
    position, width, item_codes = checker.position, checker.width, checker.item_codes
    unit_at, respondent_at, group_at = (position[name] for name in CONSULTANT_COLUMNS)
    item_at = [position[code] for code in item_codes]
    # Every column as text, exactly as written (pandas would turn a column of digits into numbers).
    dtypes: dict[int, Any] = dict.fromkeys(range(width), object)
    unit_ids, scale, separator = checker.units, checker.scale, delimiter.encode()
    body_start = line_end + 1

    def coded(values: np.ndarray, table: Mapping[str, Any]) -> np.ndarray:
        """Text values looked up in ``table`` (exact spellings only), one look-up per distinct value."""
        codes, distinct = pd.factorize(values.ravel())
        looked_up = [table.get(value) for value in distinct.tolist()]
        if None in looked_up or (codes < 0).any():
            raise _Doubt("a value the careful pass looks at")
        return np.asarray(looked_up)[codes].reshape(values.shape)

    def batches() -> Iterator[ResponseBatch]:
        with reopenable.open() as stream:
            stream.seek(stream.tell() + body_start)
            for block in _blocks(stream):
                lines = block.count(b"\n") + (not block.endswith(b"\n"))
                if (b'"' in block or b"\x00" in block or block.count(b"\r") != block.count(b"\r\n")
                        or block.count(separator) != lines * (width - 1)):
                    raise _Doubt("not a plain block")
                try:
                    frame = pd.read_csv(io.BytesIO(block), sep=delimiter, header=None, index_col=False, dtype=dtypes,
                                        quoting=csv.QUOTE_NONE, na_filter=False, engine="c", encoding="utf-8")
                except (ValueError, UnicodeDecodeError) as exc:
                    raise _Doubt(str(exc)) from None
                if frame.shape != (lines, width):
                    raise _Doubt("fields")
                answers = coded(frame[item_at].to_numpy(), scale).astype(float, copy=False)
                unit_column = coded(frame[unit_at].to_numpy(), unit_ids).tolist()
                groups = coded(frame[group_at].to_numpy(), GROUPS).tolist()
                respondents = [raw.strip() for raw in frame[respondent_at].tolist()]
                lengths = list(map(len, respondents))
                if min(lengths) == 0 or max(lengths) > MAX_RESPONDENT_ID:
                    raise _Doubt("respondent id")
                units.update(unit_column)
                yield ResponseBatch(unit_ids=unit_column, customer_groups=groups,
                                    respondent_ids=pseudonymise.many(respondents), answers=answers)

    return batches()


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream in blocks of about PLAIN_BLOCK_BYTES, each ending at the end of a line (or of the file)."""
    rest = b""
    while chunk := stream.read(PLAIN_BLOCK_BYTES):
        chunk = rest + chunk
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            rest = chunk
            continue
        rest = chunk[end:]
        yield chunk[:end]
    if rest:
        yield rest


def _checked_batches(
    campaign: Campaign,
    kind: Source,
    reopenable: _Reopenable,
    pseudonymise: Pseudonymiser,
    units: set[int],
    *,
    doubt: bool,
) -> Iterator[ResponseBatch]:
    """Batches of any file, read by the csv module and checked chunk by chunk as the careful pass checks.

    A chunk with problems raises _Doubt (``doubt``) or an ImportFileError listing them. The header
    is read and the checker made (database look-ups) before this returns, so the batches
    themselves can be made in another thread.
    """

    def batches() -> Iterator[ResponseBatch | None]:
        with reopenable.open() as stream, _reader(stream) as chunks:
            _, header = next(chunks, ([1], [[]]))
            checker = _Checker(campaign, kind, header[0])
            yield None  # ready: what follows needs no database
            for lines, records in chunks:
                chunk, problems = checker.check(lines, records)
                if problems:
                    if doubt:
                        raise _Doubt("problems")
                    raise ImportFileError(problems, bad_rows=len({p.line for p in problems}))
                units.update(chunk.unit_ids)
                yield ResponseBatch(
                    unit_ids=chunk.unit_ids,
                    customer_groups=chunk.groups,
                    respondent_ids=pseudonymise.many(chunk.respondent_ids),
                    answers=chunk.answers,
                    rater_unit_ids=chunk.rater_unit_ids,
                    assignment_ids=chunk.assignment_ids,
                    idempotency_keys=chunk.interview_keys,
                )

    primed = batches()
    next(primed)
    return primed  # type: ignore[return-value]


#: An import at least this large refreshes PostgreSQL's statistics of the response table at once.
ANALYZE_ROWS = 10_000


def _refresh_statistics(rows: int) -> None:
    """After a large import on PostgreSQL, ANALYZE the response table's filtered columns (0.2–0.3 s).

    Until autovacuum gets to it, the planner still believes the table holds what it held before
    the import: it then reads a million fresh rows through the wrong index, and the report right
    after the import takes 16 s instead of 3 (bench/RESULTS.md, "Data paths").
    """
    if rows >= ANALYZE_ROWS and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(ANALYZE_STATEMENT))
        db.session.commit()


#: Columns whose statistics no query plan uses: answers and scores are read or summed, never filtered,
#: joined or grouped on. Leaving them out takes ANALYZE at 100,000 rows from 0.38 s to 0.17 s (a fifth of
#: the whole import); autovacuum's own ANALYZE still covers them later.
NOT_ANALYZED = frozenset({"answers", "review_comment", *DIMENSION_COLUMNS})
ANALYZE_STATEMENT = "ANALYZE response ({})".format(
    ", ".join(column.name for column in Response.__table__.columns if column.name not in NOT_ANALYZED)
)


def _check_file(campaign: Campaign, kind: Source, reopenable: _Reopenable) -> int:
    """First pass: every problem of the file, or the number of rows to import."""
    problems = _Problems()
    respondents, interviews = _Seen(), _Seen()
    stored = _StoredCheck(campaign, kind, Pseudonymiser())
    rows = 0
    with reopenable.open() as stream:
        try:
            with _reader(stream) as chunks:
                header_lines, header = next(chunks, ([1], [[]]))
                checker = _Checker(campaign, kind, header[0])
                for lines, records in chunks:
                    chunk, found = checker.check(lines, records)
                    problems.add(found)
                    rows += len(chunk.lines)
                    respondents.add(chunk.lines, zip(chunk.unit_ids, chunk.respondent_ids, strict=True))
                    if chunk.interview_keys is not None:
                        pairs = zip(chunk.lines, chunk.interview_keys, strict=True)
                        keyed = [(line, key) for line, key in pairs if key]
                        interviews.add([line for line, _ in keyed], (key for _, key in keyed))
                    problems.add(stored.check(chunk))
        except _Stop as stop:
            problems.add([stop.problem])
            raise problems.error() or ImportFileError([stop.problem]) from None
    problems.add(
        Problem.of(line, "respondent_id", N_("the same respondent id for the same unit as line %(first)s"), first=first)
        for line, first in respondents.duplicates()
    )
    problems.add(
        Problem.of(line, INTERVIEW_COLUMN, N_("the same interview id as line %(first)s"), first=first)
        for line, first in interviews.duplicates()
    )
    error = problems.error()
    if error is not None:
        raise error
    if rows == 0:
        raise ImportFileError([Problem.of(header_lines[0] + 1, None, N_("the file has a header but no rows to import"))])
    return rows


def _store_file(
    campaign: Campaign,
    kind: Source,
    reopenable: _Reopenable,
    user: User | None,
    expected: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[Stored, int]:
    """Second pass of the careful reading: store the checked rows; return what was stored and how many units."""
    units: set[int] = set()
    try:
        batches = _checked_batches(campaign, kind, reopenable, Pseudonymiser(), units, doubt=False)
        stored = insert_in_batches(campaign, batches, source=kind, channel=Channel.IMPORT,
                                   progress=_counter(progress, expected),
                                   created_by=user.id if user is not None else None, prefetch=True)
    except _Stop as stop:
        raise ImportFileError([stop.problem]) from None
    if stored.rows != expected:
        raise ImportFileError([Problem.of(None, None,
                                          N_("the file changed while it was being imported; import it again"))])
    return stored, len(units)
