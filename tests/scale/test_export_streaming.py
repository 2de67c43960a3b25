"""The raw export streamed in small batches equals the same export produced in one piece.

tests/reports/test_pages.py already checks the route's body against an independent reference,
but with the default batch of 1,000 rows its data fit in one batch. Here the batch is shrunk so
the server-side cursor (PostgreSQL) and the chunking cross many batch boundaries, as they do
at a million rows; the whole route over real HTTP is what `make bench` measures.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from bench.datasets import answer_matrix, insert_cross_scoring
from survey.exports import raw_csv
from survey.extensions import db
from survey.models import Channel, CustomerGroup, Response, Source, Unit
from survey.services import reports
from survey.services.imports import Pseudonymiser, ResponseBatch, insert_responses

ROWS = 103


@pytest.fixture
def filled(make_campaign):
    """A campaign of 4 units with ROWS consultant responses (some incomplete) and cross-scoring."""
    campaign = make_campaign(code="stream-2017", units=4)
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.id)))
    rng = np.random.default_rng(11)
    answers = answer_matrix(rng, np.full(ROWS, 7.0), len(campaign.questionnaire.items), blank_share=0.3)
    pseudonymise = Pseudonymiser()
    insert_responses(campaign, ResponseBatch(
        unit_ids=[units[k % 4].id for k in range(ROWS)],
        customer_groups=[(CustomerGroup.BUSINESS if k % 5 == 0 else CustomerGroup.HOUSEHOLD).value
                         for k in range(ROWS)],
        respondent_ids=[pseudonymise(f"S{k}") for k in range(ROWS)],
        answers=answers,
    ), source=Source.CONSULTANT, channel=Channel.IMPORT)
    insert_cross_scoring(campaign, per_assignment=3)
    db.session.commit()
    return campaign


def export_chunks(campaign, batch: int, monkeypatch) -> list[bytes]:
    """The chunks the export route streams (survey.exports.raw_csv.raw_csv_chunks) with a given batch size."""
    monkeypatch.setattr(reports, "RAW_BATCH", batch)
    monkeypatch.setattr(raw_csv, "RAW_BATCH", batch)
    chunks = list(raw_csv.raw_csv_chunks(campaign, reports.parse_raw_filters({})))
    db.session.commit()  # ends the read transaction (and its server-side cursor) like the end of a request
    return chunks


def test_streamed_export_in_small_batches_equals_the_export_in_one_piece(filled, monkeypatch):
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Response))
    assert total > ROWS  # cross-scoring rows too

    whole = export_chunks(filled, 10 * total, monkeypatch)
    streamed = export_chunks(filled, 7, monkeypatch)

    assert len(whole) == 2  # the header, then every row at once
    assert len(streamed) == 1 + -(-total // 7)
    assert b"".join(streamed) == b"".join(whole)
    lines = b"".join(whole).decode("utf-8").splitlines()
    assert len(lines) == total + 1
    ids = [int(line.split(",", 1)[0].lstrip("\ufeff")) for line in lines[1:]]
    assert ids == sorted(ids) and len(set(ids)) == total


def test_streamed_export_neutralises_text_that_would_start_a_formula(filled, monkeypatch):
    """The text columns are made safe in SQL (and on PostgreSQL by the server's COPY), as neutralise() does."""
    unit = db.session.scalars(sa.select(Unit).order_by(Unit.id)).first()
    unit.code = "=1+1"
    first, second = db.session.scalars(sa.select(Response).order_by(Response.id).limit(2)).all()
    first.respondent_id = "-2+3"
    second.respondent_id = "@SUM(1)"
    db.session.commit()

    lines = b"".join(export_chunks(filled, 7, monkeypatch)).decode("utf-8-sig").splitlines()
    cells = [line.split(",") for line in lines[1:]]
    assert {row[1] for row in cells if row[1].startswith("'")} == {"'=1+1"}
    assert [row[5] for row in cells[:2]] == ["'-2+3", "'@SUM(1)"]
    assert not [cell for row in cells for cell in row if cell[:1] in ("=", "+", "@")]
    assert not [cell for row in cells for cell in row if cell.startswith("-")]
