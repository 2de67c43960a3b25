"""Dimension scores stored with each response: every write path fills them, the report reads them.

Each write path (file import, batched insert of the demo, a web submission, an auditor's
interview and its correction) must store what `scoring.dimension_scores` computes from the
response's answers; the report's dimension means must equal the JSON-based computation they
replaced; and the migration that added the columns must compute them for rows stored before it.
"""

from __future__ import annotations

import csv
import functools
import io
import operator

import numpy as np
import pytest
import sqlalchemy as sa

import scoring
from survey.extensions import db
from survey.models import (
    DIMENSION_COLUMNS,
    MAX_DIMENSIONS,
    Assignment,
    Campaign,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Role,
    Source,
    Unit,
    utcnow,
)
from survey.questionnaire import QuestionnaireError, default_questionnaire_text, parse_questionnaire, structure_of
from survey.services import interviews, reports
from survey.services.imports import import_consultant, import_cross
from survey.services.responses import submit_response

from tests.conftest import migrated_database


def expected_scores(campaign, answers: dict) -> list[float | None]:
    """The dimension scores `scoring` computes from one response's answers, padded to MAX_DIMENSIONS."""
    structure = structure_of(campaign.questionnaire)
    row = np.array([[np.nan if answers.get(c) is None else float(answers[c]) for c in structure.item_codes]])
    scores = [None if v != v else v for v in scoring.dimension_scores(row, structure)[0].tolist()]
    return scores + [None] * (MAX_DIMENSIONS - len(scores))


def assert_stored_scores_match_answers(campaign) -> int:
    """Every response of the campaign stores the dimension scores of its answers; return how many were checked."""
    db.session.expire_all()
    responses = db.session.scalars(sa.select(Response).where(Response.campaign_id == campaign.id)).all()
    for response in responses:
        stored = [getattr(response, column) for column in DIMENSION_COLUMNS]
        expected = expected_scores(campaign, response.answers)
        assert [v is None for v in stored] == [v is None for v in expected], response.id
        assert [v for v in stored if v is not None] == pytest.approx([v for v in expected if v is not None],
                                                                     rel=1e-12), response.id
    return len(responses)


def _csv(rows: list[list]) -> io.BytesIO:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return io.BytesIO(buffer.getvalue().encode("utf-8"))


@pytest.fixture
def campaign(make_campaign):
    campaign = make_campaign(code="dims-2017", units=3)
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    db.session.add(Assignment(campaign=campaign, rater_unit=units[0], ratee_unit=units[1], quota=10))
    db.session.commit()
    return campaign


def answer_pattern(codes: list[str], r: int) -> list[int | str]:
    """Answers with blanks in varying places, some rows with whole dimensions blank (incomplete respondents)."""
    return [(r * 3 + i) % 10 + 1 if (r + i) % 4 and not (r % 7 == 0 and i < 12) else "" for i, _ in enumerate(codes)]


def test_imports_store_the_dimension_scores_of_the_answers(campaign):
    codes = [item.code for item in campaign.questionnaire.items]
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    consultant = [["unit_code", "respondent_id", "customer_group", *codes]]
    consultant += [[units[r % 3].code, f"KH{r}", "household", *answer_pattern(codes, r)] for r in range(30)]
    import_consultant(campaign, _csv(consultant), actor="test", file_name="consultant.csv")
    cross = [["rater_unit", "ratee_unit", "respondent_id", "customer_group", *codes]]
    cross += [[units[0].code, units[1].code, f"PA{r}", "business", *answer_pattern(codes, r + 5)] for r in range(8)]
    import_cross(campaign, _csv(cross), actor="test", file_name="cross.csv")

    assert assert_stored_scores_match_answers(campaign) == 38
    # Not vacuous: the default questionnaire's seven dimensions are stored, the five spare columns stay empty.
    first = db.session.scalars(sa.select(Response).order_by(Response.id)).first()
    assert first.dimension_7 is not None and first.dimension_8 is None
    assert db.session.scalar(sa.select(sa.func.count()).where(Response.dimension_1.is_(None))) > 0


def test_web_submission_and_interviews_store_the_dimension_scores(campaign, make_user):
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    codes = [item.code for item in campaign.questionnaire.items]
    answers = {code: (i % 10) + 1 if i % 3 else None for i, code in enumerate(codes)}
    submit_response(campaign=campaign, unit=units[2], source=Source.CONSULTANT, channel=Channel.WEB,
                    customer_group=CustomerGroup.HOUSEHOLD, respondent_id="web-1", answers=answers, actor="customer")

    assignment = db.session.scalars(sa.select(Assignment)).one()
    auditor = make_user("auditor@example.vn", Role.AUDITOR, units[0])
    submission = {"interview_id": interviews.new_interview_id(), "respondent_id": "PA01", "customer_group": "household",
                  "answers": {code: 6 if i % 2 else 9 for i, code in enumerate(codes)}}
    response, created = interviews.record_interview(assignment, submission, auditor)
    assert created
    before = [getattr(response, c) for c in DIMENSION_COLUMNS]
    changed = {code: None if i < 3 else 3 for i, code in enumerate(codes)}
    interviews.update_interview(response, changed, auditor)
    after = [getattr(response, c) for c in DIMENSION_COLUMNS]

    assert before != after  # the correction recomputed the stored scores
    assert assert_stored_scores_match_answers(campaign) == 2


def test_demo_stores_the_dimension_scores(app):
    from survey.services.demo import load_demo

    load_demo(seed=3)
    checked = sum(assert_stored_scores_match_answers(c) for c in db.session.scalars(sa.select(Campaign)).all())
    assert checked > 1000


# --------------------------------------------------------------------------- the report


def json_dimension_scores(campaign) -> dict[tuple[str, str], dict[str, float | None]]:
    """The report's former computation: each respondent's dimension score from the JSON answers, in SQL."""

    def expression(item_codes):
        values = [Response.answers[code].as_float() for code in item_codes]
        total = functools.reduce(operator.add, [sa.func.coalesce(v, 0.0) for v in values])
        answered = functools.reduce(operator.add, [sa.case((v.is_not(None), 1), else_=0) for v in values])
        return total / sa.func.nullif(answered, 0)

    dimensions = campaign.questionnaire.dimensions
    statement = (
        sa.select(Unit.code, Response.source,
                  *(sa.func.avg(expression([i.code for i in d.items])) for d in dimensions))
        .join(Unit, Unit.id == Response.unit_id)
        .where(reports.counted_condition(campaign), Response.respondent_index.is_not(None))
        .group_by(Unit.code, Response.source)
    )
    return {(code, str(source)): {d.code: (None if m is None else float(m)) for d, m in zip(dimensions, means)}
            for code, source, *means in db.session.execute(statement)}


def test_report_dimension_scores_equal_the_json_computation(campaign):
    test_imports_store_the_dimension_scores_of_the_answers(campaign)
    # A rejected consultant row and an unanswered dimension must be treated alike by both computations.
    first = db.session.scalars(sa.select(Response).order_by(Response.id)).first()
    first.review_state = ReviewState.REJECTED
    db.session.commit()

    scores = reports.dimension_scores(campaign)
    reference = json_dimension_scores(campaign)
    assert set(scores.values) == set(reference) and len(reference) >= 3
    for key, means in reference.items():
        for code, value in means.items():
            assert scores.values[key][code] == pytest.approx(value, rel=1e-12), (key, code)


# --------------------------------------------------------------------------- the questionnaire limit


def test_questionnaire_with_more_dimensions_than_stored_is_refused():
    text = default_questionnaire_text()
    block = text[text.index("[[dimensions]]"):]
    first = block[: block.index("[[dimensions]]", 1)]
    extra = "".join(first.replace('code = "', f'code = "x{k}_') for k in range(MAX_DIMENSIONS))
    with pytest.raises(QuestionnaireError, match=f"at most {MAX_DIMENSIONS}"):
        parse_questionnaire(text + "\n" + extra)


# --------------------------------------------------------------------------- the migration's back-fill


def test_migration_backfills_stored_dimension_scores(database_url, tmp_path, monkeypatch):
    """Rows stored before the columns existed get the scores of their answers when the database is upgraded."""
    from flask_migrate import downgrade, upgrade

    with migrated_database(database_url, tmp_path) as directory:
        downgrade(directory=directory, revision="80d4b1e4ed34")
        questionnaire = parse_questionnaire(default_questionnaire_text())
        codes = [i.code for d in questionnaire.dimensions for i in d.items]
        with db.engine.begin() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection, only=["unit", "questionnaire", "dimension", "item", "campaign",
                                               "response"])
            t = metadata.tables
            unit_id = connection.execute(t["unit"].insert().values(
                code="bac-giang", name_vi="Công ty Điện lực Bắc Giang", name_en="Bac Giang")
            ).inserted_primary_key[0]
            q_id = connection.execute(t["questionnaire"].insert().values(
                code="q", version=1, title_vi="Khảo sát", title_en="Survey", scale_min=1, scale_max=10,
                source_text="", checksum="0" * 64, created_at=utcnow())).inserted_primary_key[0]
            for d_pos, d in enumerate(questionnaire.dimensions):
                d_id = connection.execute(t["dimension"].insert().values(
                    questionnaire_id=q_id, position=d_pos, code=d.code, weight=d.weight, title_vi=d.title_vi,
                    title_en=d.title_en)).inserted_primary_key[0]
                connection.execute(t["item"].insert(), [
                    {"dimension_id": d_id, "position": i_pos, "code": i.code, "text_vi": "…", "text_en": "…"}
                    for i_pos, i in enumerate(d.items)])
            c_id = connection.execute(t["campaign"].insert().values(
                code="old-2016", name_vi="2016", name_en="2016", questionnaire_id=q_id, target_score=7.5,
                margin=0.3, status="open", web_source="consultant", count_only_approved=False,
                created_at=utcnow())).inserted_primary_key[0]
            rows = [{c: (v if v != "" else None) for c, v in zip(codes, answer_pattern(codes, r))}
                    for r in range(12)]
            connection.execute(t["response"].insert(), [
                {"campaign_id": c_id, "unit_id": unit_id, "source": "consultant", "channel": "import",
                 "customer_group": "household", "respondent_id": f"R{r}", "questionnaire_version": 1,
                 "answers": answers, "answered_dimensions": 0, "review_state": "received",
                 "created_at": utcnow(), "updated_at": utcnow()}
                for r, answers in enumerate(rows)])
        upgrade(directory=directory)
        campaign = reports.find_campaign("old-2016")
        assert assert_stored_scores_match_answers(campaign) == 12
        assert db.session.scalar(sa.select(sa.func.count()).where(Response.dimension_3.is_not(None))) > 0
