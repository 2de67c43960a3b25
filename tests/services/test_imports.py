"""Importing consultant and cross responses from CSV: all or nothing, every bad row listed, batched."""

from __future__ import annotations

import codecs
import datetime as dt
import functools
import io
import json
import math
import re
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import (
    DIMENSION_COLUMNS,
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Source,
    Unit,
)
from survey.services import imports
from survey.services.imports import ImportFileError, Problem, import_consultant, import_cross
from survey.services.responses import pseudonymise, submit_response


def item_codes(campaign) -> list[str]:
    return [item.code for item in campaign.questionnaire.items]


def answers_row(campaign, seed: int, blanks: int = 0) -> list[int | None]:
    """Deterministic answers 1–10 with the first ``blanks`` items not applicable."""
    codes = item_codes(campaign)
    return [None if position < blanks else (seed * 7 + position * 3) % 10 + 1 for position in range(len(codes))]


def csv_text(header: list[str], rows: list[list[object]], delimiter: str = ",") -> str:
    lines = [delimiter.join(header)]
    for row in rows:
        lines.append(delimiter.join("" if value is None else str(value) for value in row))
    return "\n".join(lines) + "\n"


def consultant_csv(campaign, rows: list[tuple[str, str, str, list[int | None]]]) -> str:
    header = ["unit_code", "respondent_id", "customer_group", *item_codes(campaign)]
    return csv_text(header, [[unit, rid, group, *answers] for unit, rid, group, answers in rows])


def write(tmp_path, text: str | bytes, name: str = "file.csv"):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def expected_index(campaign, answers: dict[str, int | None]) -> float | None:
    """DESIGN.md's rule computed by hand: weighted mean of dimension means; None under half the dimensions."""
    dimension_scores = []
    for dimension in campaign.questionnaire.dimensions:
        values = [answers[item.code] for item in dimension.items if answers[item.code] is not None]
        if values:
            dimension_scores.append((sum(values) / len(values), dimension.weight))
    if len(dimension_scores) * 2 < len(campaign.questionnaire.dimensions):
        return None
    return sum(score * weight for score, weight in dimension_scores) / sum(weight for _, weight in dimension_scores)


def response_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Response))


def import_events() -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "import")))


# --- Consultant files ------------------------------------------------------------------------------


def test_good_consultant_file_is_stored_with_indices_and_pseudonymised_ids(make_campaign, tmp_path):
    campaign = make_campaign(units=3)
    units = [u.code for u in db.session.scalars(sa.select(Unit).order_by(Unit.id))]
    rows = [
        (units[0], "KH-001", "household", answers_row(campaign, 1)),
        (units[0], "KH-002", "business", answers_row(campaign, 2, blanks=3)),
        (units[1], "KH-001", "household", answers_row(campaign, 3, blanks=14)),  # same id, other unit; 3 of 7 dims
        (units[2], "KH-104", "household", [None] * len(item_codes(campaign))),  # nothing answered: incomplete
    ]
    result = import_consultant(campaign, write(tmp_path, consultant_csv(campaign, rows), "consultant-2017.csv"))

    assert (result.rows, result.units, result.source) == (4, 3, Source.CONSULTANT)
    assert result.incomplete == 2
    stored = list(db.session.scalars(sa.select(Response).order_by(Response.id)))
    assert len(stored) == 4
    by_respondent = {(response.unit.code, response.respondent_id): response for response in stored}
    codes = item_codes(campaign)
    for unit_code, rid, group, answers in rows:
        response = by_respondent[unit_code, pseudonymise(rid)]
        expected_answers = dict(zip(codes, answers, strict=True))
        assert response.unit.code == unit_code
        assert response.respondent_id == pseudonymise(rid) != rid
        assert response.customer_group == CustomerGroup(group)
        assert response.answers == expected_answers
        assert (response.source, response.channel) == (Source.CONSULTANT, Channel.IMPORT)
        assert response.rater_unit_id is None and response.assignment_id is None
        assert response.review_state == ReviewState.RECEIVED
        # Stored the way the ORM stores timestamps: read back aware, in UTC, just now.
        assert abs(response.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
        assert response.updated_at == response.created_at
        expected = expected_index(campaign, expected_answers)
        if expected is None:
            assert response.respondent_index is None
        else:
            assert response.respondent_index == pytest.approx(expected, abs=1e-12)
        assert response.answered_dimensions == sum(
            any(expected_answers[i.code] is not None for i in d.items) for d in campaign.questionnaire.dimensions
        )
    [event] = import_events()
    assert (event.entity, event.entity_id) == ("campaign", campaign.code)
    ids = [response.id for response in stored]
    assert event.after == {"file": "consultant-2017.csv", "rows": 4, "source": "consultant", "channel": "import",
                           "response_ids": [[min(ids), max(ids)]]}


def test_bad_consultant_file_is_refused_whole_with_every_bad_row_listed(make_campaign, tmp_path):
    campaign = make_campaign(units=2)
    unit = db.session.scalars(sa.select(Unit.code).order_by(Unit.id)).first()
    good = answers_row(campaign, 1)
    score_11 = [11, *good[1:]]
    score_0 = [*good[:4], 0, *good[5:]]
    word = [*good[:2], "seven", *good[3:]]
    rows = [
        (unit, "A1", "household", good),  # line 2: good
        ("ha-noi", "A2", "household", good),  # line 3: unknown unit
        (unit, "A3", "household", score_11),  # line 4
        (unit, "A4", "household", score_0),  # line 5
        (unit, "A5", "household", word),  # line 6
        (unit, "A6", "factory", good),  # line 7
        (unit, "A1", "business", good),  # line 8: duplicate of line 2
        (unit, "", "household", good),  # line 9: no respondent id
        (unit, "A9", "household", good),  # line 10: good
    ]
    text = consultant_csv(campaign, rows) + f"{unit},A10,household\n"  # line 11: too few fields
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, text))
    error = caught.value
    codes = item_codes(campaign)
    assert [(p.line, p.column) for p in error.problems] == [
        (3, "unit_code"),
        (4, codes[0]),
        (5, codes[4]),
        (6, codes[2]),
        (7, "customer_group"),
        (8, "respondent_id"),
        (9, "respondent_id"),
        (11, None),
    ]
    reasons = [p.reason for p in error.problems]
    assert "unknown unit 'ha-noi'" in reasons[0]
    assert "11 is outside 1–10" in reasons[1]
    assert "0 is outside 1–10" in reasons[2]
    assert "'seven' is not a whole number" in reasons[3]
    assert "line 2" in reasons[5]
    assert error.bad_rows == 8
    assert error.summary == "8 bad rows"
    assert response_count() == 0
    assert import_events() == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda h: [c for c in h if c != "customer_group"], "missing column(s) customer_group"),
        (lambda h: [c for c in h if c != "supply_stability"], "missing column(s) supply_stability"),
        (lambda h: [*h, "comment"], "unknown column(s) 'comment'"),
        (lambda h: [*h, "interview_id"], "unknown column(s) 'interview_id'"),  # a cross-only column
        (lambda h: [*h, "unit_code"], "appear twice"),
    ],
)
def test_header_problems_are_reported_once(make_campaign, tmp_path, mutate, expected):
    campaign = make_campaign(units=1)
    header = mutate(["unit_code", "respondent_id", "customer_group", *item_codes(campaign)])
    rows = [["bac-giang", f"R{n}", "household", *answers_row(campaign, n)] for n in range(5)]
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, csv_text(header, rows)))
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].line == 1
    assert expected in caught.value.problems[0].reason
    assert caught.value.summary == "bad header"
    assert response_count() == 0


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"", 1, "empty"),
        (codecs.BOM_UTF8, 1, "empty"),
        (b"\n\n", 1, "empty"),
        ("unit_code,respondent_id\n".encode("utf-16"), 1, "UTF-16"),
    ],
)
def test_empty_and_undecodable_files_are_refused(make_campaign, tmp_path, content, line, reason):
    campaign = make_campaign(units=1)
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, content))
    assert caught.value.problems[0].line == line
    assert reason in caught.value.problems[0].reason
    assert response_count() == 0


def test_header_without_rows_is_refused(make_campaign, tmp_path):
    campaign = make_campaign(units=1)
    with pytest.raises(ImportFileError, match="no rows"):
        import_consultant(campaign, write(tmp_path, consultant_csv(campaign, [])))


def test_file_not_in_utf8_is_refused_naming_the_line(make_campaign, tmp_path):
    campaign = make_campaign(units=1)
    good = consultant_csv(campaign, [("bac-giang", "A1", "household", answers_row(campaign, 1))])
    # A respondent id typed in Windows-1258 (the Vietnamese code page) is not UTF-8.
    legacy = "bac-giang,Lê Văn An,household," + ",".join(["7"] * len(item_codes(campaign))) + "\n"
    data = good.encode("utf-8") + legacy.encode("cp1258")
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, data))
    [problem] = caught.value.problems
    assert problem.line == 3
    assert "not UTF-8" in problem.reason and "CSV UTF-8" in problem.reason
    assert response_count() == 0


def test_utf8_bom_crlf_and_semicolons_are_accepted(make_campaign, tmp_path):
    campaign = make_campaign(units=1)
    header = ["unit_code", "respondent_id", "customer_group", *item_codes(campaign)]
    rows = [["bac-giang", "Nguyễn Văn An", "household", *answers_row(campaign, 4)],
            ["bac-giang", "Trần Thị Bình", " Business ", *answers_row(campaign, 5, blanks=2)]]
    text = csv_text(header, rows, delimiter=";").replace("\n", "\r\n")
    result = import_consultant(campaign, write(tmp_path, codecs.BOM_UTF8 + text.encode("utf-8")))
    assert result.rows == 2
    stored = db.session.scalars(sa.select(Response.respondent_id).order_by(Response.id)).all()
    assert stored == [pseudonymise("Nguyễn Văn An"), pseudonymise("Trần Thị Bình")]
    groups = db.session.scalars(sa.select(Response.customer_group).order_by(Response.id)).all()
    assert groups == [CustomerGroup.HOUSEHOLD, CustomerGroup.BUSINESS]


def test_respondent_already_stored_for_the_unit_is_a_duplicate(make_campaign, tmp_path):
    campaign = make_campaign(units=2)
    first, second = db.session.scalars(sa.select(Unit.code).order_by(Unit.id)).all()
    import_consultant(campaign, write(tmp_path, consultant_csv(campaign, [(first, "X1", "household",
                                                                           answers_row(campaign, 1))]), "a.csv"))
    again = consultant_csv(campaign, [
        (second, "X1", "household", answers_row(campaign, 2)),  # other unit: fine
        (first, " X1 ", "household", answers_row(campaign, 3)),  # same customer of the same unit
    ])
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, again, "b.csv"))
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (3, "respondent_id")
    assert "already stored" in problem.reason
    assert response_count() == 1
    assert len(import_events()) == 1


def test_streams_are_accepted_seekable_or_not(make_campaign):
    campaign = make_campaign(units=1)
    data = consultant_csv(campaign, [("bac-giang", f"S{n}", "household", answers_row(campaign, n))
                                     for n in range(3)]).encode("utf-8")

    class Pipe(io.RawIOBase):
        """A stream that can be read once, like a network upload."""

        def __init__(self, payload: bytes):
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert import_consultant(campaign, io.BytesIO(data), file_name="upload.csv").rows == 3
    other = make_campaign(code="other", units=0)
    assert import_consultant(other, io.BufferedReader(Pipe(data))).rows == 3
    assert response_count() == 6


def test_listed_problems_are_capped_and_the_rest_counted(make_campaign, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "MAX_LISTED_PROBLEMS", 10)
    campaign = make_campaign(units=1)
    rows = [("nowhere", f"R{n}", "household", answers_row(campaign, n)) for n in range(25)]
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, consultant_csv(campaign, rows)))
    assert len(caught.value.problems) == 10
    assert caught.value.total == 25
    assert caught.value.unlisted == 15
    assert caught.value.bad_rows == 25


def test_batches_store_the_same_as_one_by_one(make_campaign, tmp_path, monkeypatch):
    """The batched insert gives exactly what submit_response stores for the same answers."""
    monkeypatch.setattr(imports, "BATCH_SIZE", 7)
    batched = make_campaign(code="batched", units=3)
    single = make_campaign(code="single", units=0)
    units = db.session.scalars(sa.select(Unit).order_by(Unit.id)).all()
    rows = [
        (units[n % 3].code, f"R{n:03d}", "household" if n % 4 else "business", answers_row(batched, n, blanks=n % 14))
        for n in range(30)
    ]
    assert import_consultant(batched, write(tmp_path, consultant_csv(batched, rows))).rows == 30
    codes = item_codes(batched)
    for unit_code, rid, group, answers in rows:
        submit_response(
            campaign=single,
            unit=next(u for u in units if u.code == unit_code),
            source=Source.CONSULTANT,
            channel=Channel.IMPORT,
            customer_group=CustomerGroup(group),
            respondent_id=rid,
            answers=dict(zip(codes, answers, strict=True)),
        )

    def stored(campaign):
        return db.session.execute(
            sa.select(
                Response.unit_id, Response.respondent_id, Response.customer_group, Response.answers,
                Response.respondent_index, Response.answered_dimensions, Response.questionnaire_version,
                *(getattr(Response, column) for column in DIMENSION_COLUMNS),
            ).where(Response.campaign_id == campaign.id).order_by(Response.respondent_id)
        ).all()

    assert stored(batched) == stored(single)
    assert sum(row.respondent_index is None for row in stored(batched)) > 0  # some incomplete rows were in play
    assert sum(row.dimension_1 is None for row in stored(batched)) > 0  # and unanswered dimensions


# --- Cross files -----------------------------------------------------------------------------------


@pytest.fixture
def cross_campaign(make_campaign):
    """A campaign with three units: a→b open, b→c open, c→a submitted."""
    campaign = make_campaign(code="cross-2017", units=3)
    a, b, c = db.session.scalars(sa.select(Unit).order_by(Unit.id)).all()
    db.session.add_all([
        Assignment(campaign_id=campaign.id, rater_unit_id=a.id, ratee_unit_id=b.id, quota=30),
        Assignment(campaign_id=campaign.id, rater_unit_id=b.id, ratee_unit_id=c.id, quota=30),
        Assignment(campaign_id=campaign.id, rater_unit_id=c.id, ratee_unit_id=a.id, quota=30,
                   status=AssignmentStatus.SUBMITTED),
    ])
    db.session.commit()
    return campaign, (a, b, c)


def cross_csv(campaign, rows, interview: bool = True) -> str:
    header = ["rater_unit", "ratee_unit", "respondent_id", "customer_group", *item_codes(campaign)]
    if interview:
        header.append("interview_id")
    return csv_text(header, [[*row[:4], *row[4], *(row[5:] if interview else [])] for row in rows])


def test_good_cross_file_is_stored_with_rater_assignment_and_interview_key(cross_campaign, tmp_path):
    campaign, (a, b, c) = cross_campaign
    key = uuid.uuid4()
    rows = [
        (a.code, b.code, "C1", "household", answers_row(campaign, 1), str(key).upper()),
        (b.code, c.code, "C2", "business", answers_row(campaign, 2, blanks=5), ""),
    ]
    result = import_cross(campaign, write(tmp_path, cross_csv(campaign, rows)))
    assert (result.rows, result.source) == (2, Source.CROSS)
    first, second = db.session.scalars(sa.select(Response).order_by(Response.id)).all()
    ab = db.session.scalar(sa.select(Assignment).where(Assignment.rater_unit_id == a.id))
    assert (first.unit_id, first.rater_unit_id, first.assignment_id) == (b.id, a.id, ab.id)
    assert (first.source, first.channel, first.review_state) == (Source.CROSS, Channel.IMPORT, ReviewState.RECEIVED)
    assert first.idempotency_key == str(key)
    assert (second.unit_id, second.rater_unit_id, second.idempotency_key) == (c.id, b.id, None)
    assert second.respondent_index == pytest.approx(expected_index(campaign, second.answers))


def test_cross_rows_outside_open_assignments_are_refused(cross_campaign, tmp_path):
    campaign, (a, b, c) = cross_campaign
    good = answers_row(campaign, 1)
    rows = [
        (a.code, b.code, "C1", "household", good, ""),  # line 2: good
        (b.code, a.code, "C2", "household", good, ""),  # line 3: no such assignment
        (a.code, a.code, "C3", "household", good, ""),  # line 4: self-scoring
        (c.code, a.code, "C4", "household", good, ""),  # line 5: submitted assignment
        ("ha-noi", b.code, "C5", "household", good, ""),  # line 6: unknown rater
        (a.code, b.code, "C6", "household", good, "not-a-uuid"),  # line 7
    ]
    with pytest.raises(ImportFileError) as caught:
        import_cross(campaign, write(tmp_path, cross_csv(campaign, rows)))
    problems = caught.value.problems
    assert [(p.line, p.column) for p in problems] == [
        (3, "ratee_unit"), (4, "ratee_unit"), (5, "ratee_unit"), (6, "rater_unit"), (7, "interview_id"),
    ]
    assert "no assignment" in problems[0].reason
    assert "never scores itself" in problems[1].reason
    assert "already submitted" in problems[2].reason
    assert response_count() == 0


def test_cross_interview_ids_are_unique_in_the_file_and_the_campaign(cross_campaign, tmp_path):
    campaign, (a, b, c) = cross_campaign
    key = str(uuid.uuid4())
    import_cross(campaign, write(tmp_path, cross_csv(campaign, [(a.code, b.code, "C1", "household",
                                                                  answers_row(campaign, 1), key)]), "first.csv"))
    other = str(uuid.uuid4())
    rows = [
        (b.code, c.code, "C7", "household", answers_row(campaign, 2), key),  # line 2: stored already
        (b.code, c.code, "C8", "household", answers_row(campaign, 3), other),  # line 3
        (b.code, c.code, "C9", "household", answers_row(campaign, 4), other),  # line 4: repeats line 3
    ]
    with pytest.raises(ImportFileError) as caught:
        import_cross(campaign, write(tmp_path, cross_csv(campaign, rows), "second.csv"))
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, "interview_id"), (4, "interview_id")]
    assert "line 3" in caught.value.problems[1].reason
    assert response_count() == 1


def test_closed_campaign_takes_no_import(make_campaign, tmp_path):
    from survey.models import CampaignStatus

    campaign = make_campaign(units=1, status=CampaignStatus.CLOSED)
    text = consultant_csv(campaign, [("bac-giang", "A1", "household", answers_row(campaign, 1))])
    with pytest.raises(ImportFileError) as caught:
        import_consultant(campaign, write(tmp_path, text))
    closed = f"campaign {campaign.code} is closed; it takes no more responses"
    assert caught.value.problems == [Problem(None, None, closed)]


def test_indices_follow_weights_of_the_questionnaire(make_campaign, tmp_path):
    """Independent check on the stored index with deliberately uneven answers."""
    campaign = make_campaign(units=1)
    codes = item_codes(campaign)
    answers = [10 if code.startswith("supply") else 4 for code in codes]
    import_consultant(campaign, write(tmp_path, consultant_csv(campaign, [("bac-giang", "W", "household", answers)])))
    stored = db.session.scalar(sa.select(Response.respondent_index))
    dimensions = campaign.questionnaire.dimensions
    assert stored == pytest.approx((10 + 4 * (len(dimensions) - 1)) / len(dimensions))
    assert not math.isnan(stored)


# --- The command line ------------------------------------------------------------------------------


def test_cli_imports_and_says_how_many(runner, make_campaign, tmp_path):
    campaign = make_campaign(code="2017", units=2)
    rows = [("bac-giang", f"K{n}", "household", answers_row(campaign, n, blanks=15 if n == 0 else 0))
            for n in range(3)]
    path = write(tmp_path, consultant_csv(campaign, rows), "consultant.csv")
    result = runner.invoke(args=["import", "consultant", "2017", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 3 consultant responses into 2017 (1 incomplete, without an index).\n"
    assert response_count() == 3
    [event] = import_events()
    assert event.actor == "cli"


def test_cli_lists_every_bad_row_on_stderr_and_imports_nothing(runner, make_campaign, tmp_path):
    campaign = make_campaign(code="2017", units=1)
    good = answers_row(campaign, 1)
    rows = [("bac-giang", "A", "household", good), ("ha-noi", "B", "household", good),
            ("bac-giang", "C", "household", [11, *good[1:]]), ("bac-giang", "A", "household", good)]
    path = write(tmp_path, consultant_csv(campaign, rows), "bad.csv")
    result = runner.invoke(args=["import", "consultant", "2017", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: {path}: 3 bad rows, nothing imported"
    assert lines[1:] == [
        "  line 3, unit_code: unknown unit 'ha-noi'",
        f"  line 4, {item_codes(campaign)[0]}: 11 is outside 1–10",
        "  line 5, respondent_id: the same respondent id for the same unit as line 2",
    ]
    assert response_count() == 0


def test_cli_cross_import_and_one_line_errors(runner, cross_campaign, tmp_path):
    campaign, (a, b, c) = cross_campaign
    path = write(tmp_path, cross_csv(campaign, [(a.code, b.code, "C1", "household", answers_row(campaign, 1))],
                                     interview=False))
    result = runner.invoke(args=["import", "cross", campaign.code, str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 1 cross responses into cross-2017." in result.stdout
    missing = runner.invoke(args=["import", "cross", "nope", str(path)])
    assert missing.exit_code == 1
    assert missing.stderr == "Error: there is no campaign nope; create it with 'flask campaign create nope'\n"
    unreadable = runner.invoke(args=["import", "cross", campaign.code, str(tmp_path / "none.csv")])
    assert unreadable.exit_code == 1
    assert "cannot read the file" in unreadable.stderr and "nothing imported" in unreadable.stderr
    assert "\n" not in unreadable.stderr.strip()
    assert response_count() == 1


def test_cli_shows_progress_for_large_files(runner, make_campaign, tmp_path, monkeypatch):
    from survey.commands import imports as command

    monkeypatch.setattr(command, "PROGRESS_FROM_ROWS", 5)
    monkeypatch.setattr(imports, "BATCH_SIZE", 4)
    campaign = make_campaign(code="2017", units=1)
    rows = [("bac-giang", f"K{n}", "household", answers_row(campaign, n)) for n in range(10)]
    result = runner.invoke(args=["import", "consultant", "2017", str(write(tmp_path, consultant_csv(campaign, rows)))])
    assert result.exit_code == 0, result.output
    assert "Storing" in result.stderr
    assert response_count() == 10


def test_portable_insert_stores_the_same_as_the_fast_path(make_campaign, tmp_path, monkeypatch):
    """Databases other than SQLite and PostgreSQL+psycopg go through the column types; same result."""
    fast = make_campaign(code="fast", units=2)
    portable = make_campaign(code="portable", units=0)
    rows = [("bac-giang", f"P{n}", "household", answers_row(fast, n, blanks=n % 16)) for n in range(12)]
    path = write(tmp_path, consultant_csv(fast, rows))
    import_consultant(fast, path)
    monkeypatch.setattr(db.engine.dialect, "name", "another-database")
    import_consultant(portable, path)
    monkeypatch.undo()

    def stored(campaign):
        return db.session.execute(
            sa.select(Response.respondent_id, Response.answers, Response.respondent_index, Response.source,
                      Response.channel, Response.review_state, Response.created_at.is_not(None))
            .where(Response.campaign_id == campaign.id).order_by(Response.respondent_id)
        ).all()

    assert stored(portable) == stored(fast)
    assert len(stored(fast)) == 12


def test_file_pseudonymiser_gives_the_stored_pseudonym(app):
    """Imports hash ids in bulk (imports.Pseudonymiser); web answers one at a time: the same value for the same id."""
    ids = ["KH-0001", "Nguyễn Văn An", "  PA01HH0000001 ", "x" * 80]
    bulk = imports.Pseudonymiser()
    assert bulk.many([raw.strip() for raw in ids]) == [bulk(raw) for raw in ids] == [pseudonymise(raw) for raw in ids]
    assert len({pseudonymise(raw) for raw in ids}) == len(ids)


def test_large_import_refreshes_the_planner_statistics(make_campaign, tmp_path, monkeypatch, backend):
    """On PostgreSQL a large import ends with ANALYZE, so the report right after it gets a good plan."""
    monkeypatch.setattr(imports, "ANALYZE_ROWS", 20)
    campaign = make_campaign(code="analyzed", units=3)
    units = db.session.scalars(sa.select(Unit).order_by(Unit.id)).all()
    rows = [(units[n % 3].code, f"A{n:03d}", "household", answers_row(campaign, n)) for n in range(25)]
    analyzed = []

    def remember(conn, cursor, statement, *args):
        if "ANALYZE" in statement:
            analyzed.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    try:
        assert import_consultant(campaign, write(tmp_path, consultant_csv(campaign, rows))).rows == 25
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", remember)
    if backend == "postgresql":
        assert analyzed == [imports.ANALYZE_STATEMENT]
        assert db.session.scalar(sa.text("SELECT reltuples FROM pg_class WHERE relname = 'response'")) == 25
        analyzed_columns = set(re.fullmatch(r"ANALYZE response \((.*)\)", analyzed[0]).group(1).split(", "))
        assert {"campaign_id", "source", "unit_id", "customer_group", "review_state", "respondent_index",
                "channel", "created_at"} <= analyzed_columns
        assert not analyzed_columns & {"answers", *DIMENSION_COLUMNS}
    else:
        assert analyzed == []


# --- One pass for a good file ----------------------------------------------------------------------


def stored_rows(campaign) -> list[tuple]:
    """Everything an import decides about its rows (ids, campaign and clock aside), by unit and respondent.

    Not by id: on PostgreSQL each batch is stored in the unique index's order, and where the batches
    end differs between the one pass and the careful way."""
    return db.session.execute(
        sa.select(
            Response.unit_id, Response.source, Response.channel, Response.customer_group, Response.respondent_id,
            Response.questionnaire_version, sa.cast(Response.answers, sa.Text), Response.respondent_index,
            Response.answered_dimensions, Response.idempotency_key, Response.invitation_id, Response.rater_unit_id,
            Response.assignment_id, Response.review_state, Response.review_comment, Response.created_by_id,
            Response.created_at == Response.updated_at, *(getattr(Response, c) for c in DIMENSION_COLUMNS),
        ).where(Response.campaign_id == campaign.id).order_by(Response.unit_id, Response.respondent_id)
    ).tuples().all()


def careful_only(monkeypatch):
    """Make imports take the careful way (check pass, then store pass), as every import did before."""

    def refuse(*args, **kwargs):
        raise imports._Doubt("the careful way, for comparison")

    monkeypatch.setattr(imports, "_store_in_one_pass", refuse)


def many_rows(campaign, units: list[str], n: int, start: int = 0) -> list[tuple[str, str, str, list[int | None]]]:
    return [(units[k % len(units)], f"KH-{k:05d}", "business" if k % 5 == 0 else "household",
             answers_row(campaign, k, blanks=k % 17)) for k in range(start, start + n)]


def awkward_file(campaign, units: list[str], quoted: bool) -> str:
    """A good file the careful reader takes in its stride, with what the plain reader leaves to it."""
    header = ["unit_code", "respondent_id", "customer_group", *item_codes(campaign)]
    rows = [
        [units[1], "  KH 002  ", " Business ", *answers_row(campaign, 2, blanks=4)],  # spaces, upper case
        [units[0].upper(), "KH-003", "HOUSEHOLD", *[f" {v} " if v else "" for v in answers_row(campaign, 3)]],
        [units[1], "KH-004", "household", *answers_row(campaign, 4, blanks=16)],
    ]
    if quoted:
        rows += [
            [units[0], '"Nguyễn, Văn An"', "household", *answers_row(campaign, 1)],  # quoted, comma inside
            [units[1], '"dòng\nhai"', "household", *answers_row(campaign, 5, blanks=16)],  # newline in a field
        ]
    return csv_text(header, rows) + "\n" + ",".join([""] * len(header)) + "\n"  # a blank line and a blank record


@pytest.mark.parametrize("kind", ["plain", "plain-crlf", "spaces", "quoted", "semicolons-bom"])
def test_one_pass_stores_exactly_what_the_careful_way_stores(make_campaign, tmp_path, monkeypatch, kind):
    fast = make_campaign(code="fast", units=3)
    careful = make_campaign(code="careful", units=0)
    units = list(db.session.scalars(sa.select(Unit.code).order_by(Unit.id)))
    if kind.startswith("plain"):
        text = consultant_csv(fast, many_rows(fast, units, 60))
        if kind == "plain-crlf":
            text = text.replace("\n", "\r\n")
        data = text.encode("utf-8")
    elif kind in ("spaces", "quoted"):
        data = awkward_file(fast, units, quoted=kind == "quoted").encode("utf-8")
    else:
        header = ["unit_code", "respondent_id", "customer_group", *item_codes(fast)]
        rows = [[u, rid, g, *answers] for u, rid, g, answers in many_rows(fast, units, 20)]
        data = codecs.BOM_UTF8 + csv_text(header, rows, delimiter=";").encode("utf-8")
    monkeypatch.setattr(imports, "PLAIN_BLOCK_BYTES", 700)  # several blocks, so several batches
    path = write(tmp_path, data)
    first = import_consultant(fast, path)
    with monkeypatch.context() as patched:
        careful_only(patched)
        second = import_consultant(careful, path)
    assert (first.rows, first.complete, first.units) == (second.rows, second.complete, second.units)
    assert first.rows == {"plain": 60, "plain-crlf": 60, "spaces": 3, "quoted": 5, "semicolons-bom": 20}[kind]
    assert stored_rows(fast) == stored_rows(careful)
    assert len({row[4] for row in stored_rows(fast)}) == first.rows  # pseudonyms, all different


def test_good_plain_file_is_read_once_with_progress(make_campaign, tmp_path, monkeypatch):
    campaign = make_campaign(units=3)
    units = list(db.session.scalars(sa.select(Unit.code).order_by(Unit.id)))
    path = write(tmp_path, consultant_csv(campaign, many_rows(campaign, units, 50)))
    monkeypatch.setattr(imports, "PLAIN_BLOCK_BYTES", 1000)

    def no_check_pass(*args):
        raise AssertionError("a good plain file is not read a second time")

    monkeypatch.setattr(imports, "_check_file", no_check_pass)
    seen: list[tuple[int, int]] = []
    result = import_consultant(campaign, path, progress=lambda done, expected: seen.append((done, expected)))
    assert result.rows == 50 == response_count()
    assert len(seen) > 1 and seen[-1] == (50, 50)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})
    [event] = import_events()
    ids = db.session.scalars(sa.select(Response.id).order_by(Response.id)).all()
    assert event.after["response_ids"] == [[ids[0], ids[-1]]] and len(ids) == ids[-1] - ids[0] + 1


def refusal(make_campaign, tmp_path, monkeypatch, text: str, *, careful: bool):
    """The problems an import of ``text`` reports (either way), with what it stored."""
    with monkeypatch.context() as patched:
        if careful:
            careful_only(patched)
        with pytest.raises(ImportFileError) as caught:
            import_consultant(db.session.scalar(sa.select(imports.Campaign).where(imports.Campaign.code == "bad")),
                              write(tmp_path, text, "careful.csv" if careful else "fast.csv"))
    error = caught.value
    return [(p.line, p.column, p.reason, p.message, dict(p.params)) for p in error.problems], error.bad_rows


@pytest.mark.parametrize("problem", ["late-bad-value", "duplicate", "duplicate-far", "already-stored", "several"])
def test_bad_file_is_refused_whole_with_the_careful_problem_list(make_campaign, tmp_path, monkeypatch, problem):
    campaign = make_campaign(code="bad", units=3)
    units = list(db.session.scalars(sa.select(Unit.code).order_by(Unit.id)))
    rows = many_rows(campaign, units, 120)
    if problem == "already-stored":
        import_consultant(campaign, write(tmp_path, consultant_csv(campaign, [rows[100]]), "earlier.csv"))
    monkeypatch.setattr(imports, "PLAIN_BLOCK_BYTES", 900)  # the problem comes after rows already stored
    if problem == "late-bad-value":
        rows[110] = (rows[110][0], rows[110][1], rows[110][2], [11, *rows[110][3][1:]])
    elif problem == "duplicate":
        rows[111] = (rows[110][0], rows[110][1], "household", rows[111][3])
    elif problem == "duplicate-far":
        rows[119] = (rows[3][0], " " + rows[3][1], *rows[119][2:])
    elif problem == "several":
        rows[5] = ("ha-noi", *rows[5][1:])
        rows[60] = (rows[60][0], rows[60][1], "factory", rows[60][3])
        rows[100] = (rows[2][0], rows[2][1], *rows[100][2:])
    text = consultant_csv(campaign, rows)
    stored_before = response_count()
    events_before = len(import_events())
    fast = refusal(make_campaign, tmp_path, monkeypatch, text, careful=False)
    assert response_count() == stored_before and len(import_events()) == events_before
    careful = refusal(make_campaign, tmp_path, monkeypatch, text, careful=True)
    assert fast == careful
    expected = {
        "late-bad-value": [(112, item_codes(campaign)[0])],
        "duplicate": [(113, "respondent_id")],
        "duplicate-far": [(121, "respondent_id")],
        "already-stored": [(102, "respondent_id")],
        "several": [(7, "unit_code"), (62, "customer_group"), (102, "respondent_id")],
    }[problem]
    assert [(line, column) for line, column, *_ in fast[0]] == expected
    assert response_count() == stored_before and len(import_events()) == events_before


def test_sqlite_connection_settings_are_restored_after_an_import(make_campaign, tmp_path, backend):
    campaign = make_campaign(units=1)
    import_consultant(campaign, write(tmp_path, consultant_csv(campaign, [("bac-giang", "A", "household",
                                                                           answers_row(campaign, 1))])))
    if backend != "sqlite":
        return
    connection = db.session.connection()
    assert connection.exec_driver_sql("PRAGMA ignore_check_constraints").scalar() == 0
    # The file database's own page cache (survey.extensions), not the import's.
    assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -131072


def test_batched_insert_still_meets_the_check_constraints(make_campaign):
    """Rows the writer has not verified itself are checked by the database as before."""
    campaign = make_campaign(units=1)
    unit = db.session.scalar(sa.select(Unit))
    n = len(item_codes(campaign))
    batch = imports.ResponseBatch(unit_ids=[unit.id], customer_groups=["factory"], respondent_ids=["x" * 40],
                                  answers=[[5.0] * n])
    with pytest.raises(sa.exc.IntegrityError):
        imports.insert_responses(campaign, batch, source=Source.CONSULTANT, channel=Channel.IMPORT)
    db.session.rollback()
    assert imports._meets_checks(np.array([1.0, np.nan, 100.0]), ["household", "business"])
    assert not imports._meets_checks(np.array([101.0]), ["household"])
    assert not imports._meets_checks(np.array([5.0]), ["Household"])


# --- The partial indexes ---------------------------------------------------------------------------


def keyed_batch(campaign, unit, keys, invitations=None):
    n = len(keys)
    return imports.ResponseBatch(
        unit_ids=[unit.id] * n, customer_groups=["household"] * n,
        respondent_ids=[f"{uuid.uuid4().hex}{k:08d}" for k in range(n)],
        answers=[[5.0] * len(item_codes(campaign))] * n, idempotency_keys=keys, invitation_ids=invitations,
    )


def test_partial_indexes_still_refuse_a_second_idempotency_key_or_invitation(make_campaign):
    from survey.models import Invitation

    campaign = make_campaign(units=1)
    unit = db.session.scalar(sa.select(Unit))
    store = functools.partial(imports.insert_responses, campaign, source=Source.CONSULTANT, channel=Channel.WEB)
    store(keyed_batch(campaign, unit, [None, None, "k-1"]))  # NULL keys never collide
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        store(keyed_batch(campaign, unit, ["k-1"]))
    db.session.rollback()
    other = make_campaign(code="other", units=0)
    imports.insert_responses(other, keyed_batch(other, unit, ["k-1"]), source=Source.CONSULTANT,
                             channel=Channel.WEB)  # the same key in another campaign is another response
    db.session.commit()
    invitation = Invitation(campaign_id=campaign.id, unit_id=unit.id, customer_group=CustomerGroup.HOUSEHOLD,
                            token_hash="0" * 64, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    db.session.add(invitation)
    db.session.commit()
    store(keyed_batch(campaign, unit, ["k-2"], [invitation.id]))
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        store(keyed_batch(campaign, unit, ["k-3"], [invitation.id]))
    db.session.rollback()
    assert response_count() == 5


def test_response_indexes_are_partial_where_imports_leave_nulls(app, backend):
    if backend == "sqlite":
        definitions = dict(db.session.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'response'")).all())
    else:
        definitions = dict(db.session.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'response'")).all())
    for name, column in [("uq_response_campaign_id_idempotency_key", "idempotency_key"),
                         ("uq_response_invitation_id", "invitation_id"),
                         ("ix_response_assignment_id", "assignment_id")]:
        assert re.search(rf"WHERE \(?{column} IS NOT NULL\)?$", definitions[name]), definitions[name]
    stats = definitions["ix_response_campaign_stats"]
    if backend == "sqlite":  # grouped in the index's order
        assert "(campaign_id, source, unit_id, customer_group, review_state, id, respondent_index" in stats, stats
    else:  # two integers to compare; the rest carried along
        assert "(campaign_id, id) INCLUDE (source, unit_id, customer_group, review_state, respondent_index" in stats, stats


def test_migration_makes_the_indexes_partial_and_back(database_url, tmp_path):
    """e7a3c5d9f1b2 upgrades and downgrades with rows in the table; uniqueness holds at both revisions."""
    from flask_migrate import downgrade, upgrade

    from tests.conftest import migrated_database

    def index_names(connection) -> set[str]:
        inspector = sa.inspect(connection)
        return ({i["name"] for i in inspector.get_indexes("response")}
                | {c["name"] for c in inspector.get_unique_constraints("response")})

    def insert_pair(connection, key: str) -> None:
        t = sa.Table("response", sa.MetaData(), autoload_with=connection)
        row = {"campaign_id": 1, "unit_id": 1, "source": "consultant", "channel": "web", "customer_group": "household",
               "questionnaire_version": 1, "answers": {}, "answered_dimensions": 0, "review_state": "received",
               "idempotency_key": key, "created_at": dt.datetime.now(dt.UTC), "updated_at": dt.datetime.now(dt.UTC)}
        connection.execute(t.insert(), [{**row, "respondent_id": f"{key}-a"}, {**row, "respondent_id": f"{key}-b"}])

    with migrated_database(database_url, tmp_path) as directory:
        with db.engine.begin() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection, only=["unit", "questionnaire", "campaign"])
            t = metadata.tables
            connection.execute(t["unit"].insert().values(id=1, code="u", name_vi="u", name_en="u"))
            connection.execute(t["questionnaire"].insert().values(
                id=1, code="q", version=1, title_vi="q", title_en="q", scale_min=1, scale_max=10,
                source_text="", checksum="0" * 64, created_at=dt.datetime.now(dt.UTC)))
            connection.execute(t["campaign"].insert().values(
                id=1, code="c", name_vi="c", name_en="c", questionnaire_id=1, target_score=7.5, margin=0.3,
                status="open", web_source="consultant", count_only_approved=False,
                created_at=dt.datetime.now(dt.UTC)))
        downgrade(directory=directory, revision="d5b2f3e4a6c7")
        with db.engine.connect() as connection:
            assert {"uq_response_campaign_id_idempotency_key", "uq_response_invitation_id",
                    "ix_response_assignment_id", "ix_response_campaign_stats"} <= index_names(connection)
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
            insert_pair(connection, "same")
        upgrade(directory=directory)
        with db.engine.connect() as connection:
            assert {"uq_response_campaign_id_idempotency_key", "uq_response_invitation_id",
                    "ix_response_assignment_id", "ix_response_campaign_stats"} <= index_names(connection)
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
            insert_pair(connection, "same")


def test_known_id_run_is_the_run_the_rows_have(make_campaign, tmp_path):
    campaign = make_campaign(units=2)
    units = list(db.session.scalars(sa.select(Unit.code).order_by(Unit.id)))
    import_consultant(campaign, write(tmp_path, consultant_csv(campaign, many_rows(campaign, units, 30))))
    [event] = import_events()
    created_at = db.session.scalar(sa.select(Response.created_at).limit(1))
    looked_up = imports.stored_id_ranges(campaign, imports.Stored(30, 0, Source.CONSULTANT, Channel.IMPORT,
                                                                  created_at))
    assert event.after["response_ids"] == looked_up


@pytest.mark.parametrize("key", ["k", "a key of exactly sixty-four bytes, padded out to the SHA block.."[:64], "ổ" * 40])
def test_file_pseudonymiser_matches_hmac_for_any_key_length(app, monkeypatch, key):
    """The hand-made HMAC (pads hashed once) equals hmac's for short, block-sized and longer-than-block keys."""
    import hmac

    monkeypatch.setitem(app.config, "PSEUDONYM_KEY", key)
    ids = ["KH-0001", "Nguyễn Văn An", "x" * 80, "7"]
    expected = [hmac.new(key.encode(), raw.encode(), "sha256").hexdigest()[:40] for raw in ids]
    assert imports.Pseudonymiser().many(ids) == expected == [pseudonymise(raw) for raw in ids]


def test_the_writer_verifies_every_check_constraint_of_the_response_table(app, backend):
    """SQLite skips the CHECKs for rows the writer verified: a new CHECK must be verified there too."""
    if backend == "sqlite":
        [sql] = db.session.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'response'")).scalars()
        names = set(re.findall(r"CONSTRAINT (\w+) CHECK", sql))
    else:
        names = set(db.session.scalars(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'response'::regclass AND contype = 'c'")))
    assert names == imports.VERIFIED_CHECKS


@pytest.mark.parametrize("width", [1, 2, 7, 21])
def test_answers_json_is_the_text_json_dumps_gives(width):
    """The JSON text the batched insert stores is the one the ORM path stores (json.dumps of the dict)."""
    import json

    rng = np.random.default_rng(width)
    codes = [f"item_{k}" for k in range(width)]
    for high in (10, 100):
        answers = rng.integers(0, high + 1, (300, width)).astype(float)
        answers[rng.random(answers.shape) < 0.2] = np.nan
        answers[0] = np.nan  # a row with nothing answered
        expected = [json.dumps({c: (None if v != v else int(v)) for c, v in zip(codes, row, strict=True)})
                    for row in answers.tolist()]
        assert imports.answers_json(answers, codes) == expected


# --- Foreign keys: each referenced row found and locked once (PostgreSQL) --------------------------


def needs_postgresql(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite does not enforce the foreign keys, and has no triggers to turn off")


def unit_batch(campaign, unit_ids: list[int], start: int = 0) -> imports.ResponseBatch:
    n = len(unit_ids)
    return imports.ResponseBatch(
        unit_ids=unit_ids, customer_groups=["household"] * n,
        respondent_ids=[f"ref-{k:036d}" for k in range(start, start + n)],
        answers=[[5.0] * len(item_codes(campaign))] * n,
    )


def statements_sent() -> tuple[list[str], functools.partial]:
    sent: list[str] = []

    def remember(conn, cursor, statement, *args):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    return sent, functools.partial(sa.event.remove, db.engine, "before_cursor_execute", remember)


def replication_role() -> str:
    return db.session.scalar(sa.text("SELECT current_setting('session_replication_role')"))


def test_copy_skips_the_reference_triggers_after_locking_each_referenced_row(make_campaign, tmp_path, backend):
    """A file import locks its campaign and units once, turns the triggers off for the COPY only,
    and stores exactly what it stores with them on."""
    needs_postgresql(backend)
    campaign = make_campaign(units=3)
    units = [unit.code for unit in db.session.scalars(sa.select(Unit).order_by(Unit.id))]
    text = consultant_csv(campaign, many_rows(campaign, units, 40))
    sent, stop = statements_sent()
    try:
        import_consultant(campaign, write(tmp_path, text))
    finally:
        stop()
    replica = [s for s in sent if "session_replication_role" in s and "set_config" in s]
    assert len(replica) == 2  # off before the COPY, back on after it
    locks = [s for s in sent if "FOR KEY SHARE" in s]
    assert sorted(s.split()[3] for s in locks) == ["campaign", "unit"]
    fast = stored_rows(campaign)

    other = make_campaign(code="checked", units=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports._Writer, "_may_skip_reference_triggers", lambda self: False)
        import_consultant(other, write(tmp_path, text, "again.csv"))
    assert stored_rows(other) == fast
    assert len(fast) == 40


def test_triggers_are_back_on_when_the_writer_is_done(make_campaign, backend):
    needs_postgresql(backend)
    campaign = make_campaign(units=1)
    unit = db.session.scalar(sa.select(Unit))
    imports.insert_responses(campaign, unit_batch(campaign, [unit.id] * 3), source=Source.CONSULTANT,
                             channel=Channel.IMPORT)
    assert replication_role() == "origin"  # in the same transaction, before its commit
    db.session.commit()
    assert response_count() == 3


@pytest.mark.parametrize("bad", ["unit", "created_by"])
def test_a_reference_to_nothing_is_still_refused(make_campaign, backend, bad):
    """A batch naming a unit (or user) that does not exist, after good batches, fails as the foreign key would."""
    needs_postgresql(backend)
    campaign = make_campaign(units=2)
    first, second = db.session.scalars(sa.select(Unit.id).order_by(Unit.id)).all()
    batches = [unit_batch(campaign, [first] * 5), unit_batch(campaign, [second] * 5, start=5)]
    if bad == "unit":
        batches.append(unit_batch(campaign, [second, 987654], start=10))
    else:
        batches.append(unit_batch(campaign, [second], start=10))
        batches[-1].created_by_ids = [987654]
    with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
        imports.insert_in_batches(campaign, batches, source=Source.CONSULTANT, channel=Channel.IMPORT)
    db.session.rollback()
    assert response_count() == 0


def test_a_unit_being_imported_into_cannot_be_deleted_meanwhile(make_campaign, backend, app):
    """The writer's FOR KEY SHARE lock holds the unit until the import ends, as the trigger's would."""
    needs_postgresql(backend)
    campaign = make_campaign(units=1)
    unit = db.session.scalar(sa.select(Unit))
    imports.insert_responses(campaign, unit_batch(campaign, [unit.id] * 2), source=Source.CONSULTANT,
                             channel=Channel.IMPORT)
    other = sa.create_engine(db.engine.url)
    try:
        with other.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '300ms'")
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                connection.execute(sa.delete(Unit).where(Unit.id == unit.id))
            connection.rollback()
    finally:
        other.dispose()
    db.session.commit()
    assert response_count() == 2


def test_a_role_that_may_not_turn_triggers_off_stores_the_same_checked(make_campaign, backend):
    """Without the SET privilege on session_replication_role the triggers stay on: rows are stored, a
    reference to nothing is refused, and the writer never tries to turn them off."""
    needs_postgresql(backend)
    campaign = make_campaign(units=1)
    unit_id = db.session.scalar(sa.select(Unit.id))
    role = f"survey_importer_{uuid.uuid4().hex[:12]}"
    for statement in (f"CREATE ROLE {role} NOLOGIN", f"GRANT USAGE ON SCHEMA public TO {role}",
                      f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
                      f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}", f"SET LOCAL ROLE {role}"):
        db.session.execute(sa.text(statement))  # all undone by the rollback below, the role too
    sent, stop = statements_sent()
    try:
        imports.insert_responses(campaign, unit_batch(campaign, [unit_id] * 4), source=Source.CONSULTANT,
                                 channel=Channel.IMPORT)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 4
        with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
            imports.insert_responses(campaign, unit_batch(campaign, [987654], start=4), source=Source.CONSULTANT,
                                     channel=Channel.IMPORT)
    finally:
        stop()
        db.session.rollback()
    assert not [s for s in sent if "set_config" in s or "FOR KEY SHARE" in s]
    assert db.session.scalar(sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role}) == 0


def test_the_response_table_has_no_triggers_but_those_of_the_foreign_keys_the_writer_locks(app, backend):
    """session_replication_role = replica turns every trigger of the table off: the writer may only do so
    while the table has no other trigger, and it must lock the rows of every foreign key the table has."""
    needs_postgresql(backend)
    own = db.session.scalar(sa.text(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'response'::regclass AND NOT tgisinternal"))
    assert own == 0
    keys = db.session.execute(sa.text(
        "SELECT a.attname, c.confrelid::regclass::text, ra.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1] "
        "WHERE c.conrelid = 'response'::regclass AND c.contype = 'f' AND cardinality(c.conkey) = 1"
    )).all()
    assert {column: table for column, table, _ in keys} == imports.REFERENCES
    assert {referenced for _, _, referenced in keys} == {"id"}
    assert db.session.scalar(sa.text(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'response'::regclass AND contype = 'f'")) == len(keys)


def test_answers_reach_postgresql_as_the_json_text_built(make_campaign, backend):
    """The COPY sends the answers as json text: stored as built, in questionnaire order, read back as the document."""
    needs_postgresql(backend)
    campaign = make_campaign(units=1)
    assert db.session.scalar(sa.text(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'response' AND column_name = 'answers'"
    )) == "json"
    unit = db.session.scalar(sa.select(Unit))
    batch = unit_batch(campaign, [unit.id] * 3)
    batch.answers = [answers_row(campaign, seed, blanks=seed) for seed in range(3)]
    imports.insert_responses(campaign, batch, source=Source.CONSULTANT, channel=Channel.IMPORT)
    codes = item_codes(campaign)
    texts = db.session.scalars(sa.text("SELECT answers::text FROM response ORDER BY id")).all()
    matrix = np.array([[np.nan if v is None else v for v in row] for row in batch.answers], dtype=float)
    assert texts == imports.answers_json(matrix, codes)
    assert [list(json.loads(text)) for text in texts] == [codes] * 3
    stored = db.session.scalars(sa.select(Response.answers).order_by(Response.id)).all()
    assert stored == [dict(zip(codes, row, strict=True)) for row in batch.answers]


def test_postgresql_stores_a_batch_in_the_unique_index_order(make_campaign, backend):
    """Rows reach the server sorted by unit and respondent (the unique index's order), ids without gaps."""
    needs_postgresql(backend)
    campaign = make_campaign(units=3)
    unit_ids = db.session.scalars(sa.select(Unit.id).order_by(Unit.id)).all()
    units = [unit_ids[k % 3] for k in range(30)][::-1]
    batch = unit_batch(campaign, units)
    batch.respondent_ids = [f"{(k * 7919) % 1000:040d}" for k in range(30)]
    imports.insert_responses(campaign, batch, source=Source.CONSULTANT, channel=Channel.IMPORT)
    stored = db.session.execute(sa.select(Response.id, Response.unit_id, Response.respondent_id)
                                .order_by(Response.id)).all()
    assert [(row.unit_id, row.respondent_id) for row in stored] == sorted(zip(units, batch.respondent_ids, strict=True))
    assert [row.id for row in stored] == list(range(stored[0].id, stored[0].id + 30))


def test_a_new_sqlite_database_file_gets_large_pages_and_an_old_one_keeps_its_own(tmp_path):
    """New SQLite files are made with 16 KiB pages (faster large imports); a file made before keeps its page size."""
    import sqlite3

    from survey.extensions import SQLITE_PAGE_SIZE, tune_engine

    old_file = tmp_path / "old.sqlite"
    made_before = sqlite3.connect(old_file)
    made_before.execute("CREATE TABLE t (x INTEGER)")
    default_size = made_before.execute("PRAGMA page_size").fetchone()[0]
    made_before.close()
    assert default_size != SQLITE_PAGE_SIZE  # SQLite's own default (4096), else this test shows nothing
    for name, expected in (("new.sqlite", SQLITE_PAGE_SIZE), ("old.sqlite", default_size)):
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}")
        tune_engine(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA page_size").scalar() == expected, name
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        engine.dispose()
