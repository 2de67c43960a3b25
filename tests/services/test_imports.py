"""Importing consultant and cross responses from CSV: all or nothing, every bad row listed, batched."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import math
import uuid

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
    codes = item_codes(campaign)
    for response, (unit_code, rid, group, answers) in zip(stored, rows, strict=True):
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
            .where(Response.campaign_id == campaign.id).order_by(Response.id)
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
        assert analyzed == ["ANALYZE response"]
        assert db.session.scalar(sa.text("SELECT reltuples FROM pg_class WHERE relname = 'response'")) == 25
    else:
        assert analyzed == []
