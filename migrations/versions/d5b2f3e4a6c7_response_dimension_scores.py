"""Dimension scores stored on each response; a covering index for the report's sums

Revision ID: d5b2f3e4a6c7
Revises: c4a1e2d3f5b6
Create Date: 2026-11-27 21:00:00

The report used to compute every respondent's dimension scores from the JSON answers at report
time, which at a million responses took tens of seconds. They are now stored when a response
is stored (``response.dimension_1`` … ``dimension_12``, by dimension position in the
questionnaire), and this migration computes them for the responses already stored, from their
answers, with the same function the application uses (``scoring.dimension_scores``), so an
upgraded database gives the same report.

The (campaign, source, unit) index is replaced by a covering index that also holds the
customer group, review state, respondent index and dimension scores, so the report's sums read
the index alone: the unique (campaign, source, unit, respondent) index already serves every
look-up that started with those three columns.
"""
import json

import numpy as np
import sqlalchemy as sa
from alembic import op

import scoring

# revision identifiers, used by Alembic.
revision = 'd5b2f3e4a6c7'
down_revision = 'c4a1e2d3f5b6'
branch_labels = None
depends_on = None

MAX_DIMENSIONS = 12
COLUMNS = [f"dimension_{position}" for position in range(1, MAX_DIMENSIONS + 1)]
BATCH = 5000


def upgrade():
    with op.batch_alter_table('response', schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Float(), nullable=True))
        batch_op.drop_index('ix_response_campaign_source_unit')
        batch_op.create_index(
            'ix_response_campaign_stats',
            ['campaign_id', 'source', 'unit_id', 'customer_group', 'review_state', 'respondent_index', *COLUMNS],
            unique=False,
        )
    _backfill(op.get_bind())


def downgrade():
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_index('ix_response_campaign_stats')
        batch_op.create_index('ix_response_campaign_source_unit', ['campaign_id', 'source', 'unit_id'], unique=False)
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)


def _structures(connection):
    """Each questionnaire's scoring structure, from the tables as they are at this revision."""
    dimension = sa.table('dimension', sa.column('id'), sa.column('questionnaire_id'), sa.column('position'),
                         sa.column('code'), sa.column('weight'))
    item = sa.table('item', sa.column('dimension_id'), sa.column('position'), sa.column('code'))
    rows = connection.execute(
        sa.select(dimension.c.questionnaire_id, dimension.c.code, dimension.c.weight, item.c.code)
        .join(item, item.c.dimension_id == dimension.c.id)
        .order_by(dimension.c.questionnaire_id, dimension.c.position, item.c.position)
    )
    found = {}
    for questionnaire_id, code, weight, item_code in rows:
        found.setdefault(questionnaire_id, {}).setdefault(code, (weight, []))[1].append(item_code)
    structures = {}
    for questionnaire_id, dimensions in found.items():
        if len(dimensions) > MAX_DIMENSIONS:
            raise RuntimeError(f"questionnaire {questionnaire_id} has {len(dimensions)} dimensions; "
                               f"at most {MAX_DIMENSIONS} can be stored per response")
        structures[questionnaire_id] = scoring.Structure(dimensions=tuple(
            scoring.Dimension(code=code, weight=float(weight), items=tuple(items))
            for code, (weight, items) in dimensions.items()
        ))
    return structures


def _backfill(connection):
    """Compute the stored dimension scores of every existing response from its answers, a batch at a time."""
    structures = _structures(connection)
    campaign = sa.table('campaign', sa.column('id'), sa.column('questionnaire_id'))
    response = sa.table('response', sa.column('id'), sa.column('campaign_id'), sa.column('answers', sa.Text()),
                        *(sa.column(c) for c in COLUMNS))
    answers_text = sa.cast(response.c.answers, sa.Text()) if connection.dialect.name == 'postgresql' \
        else response.c.answers
    update = (
        response.update()
        .where(response.c.id == sa.bindparam('response_id'))
        .values({c: sa.bindparam(f'value_{c}') for c in COLUMNS})
    )
    for campaign_id, questionnaire_id in connection.execute(sa.select(campaign.c.id, campaign.c.questionnaire_id)):
        structure = structures.get(questionnaire_id)
        if structure is None:
            continue
        last = 0
        while True:
            rows = connection.execute(
                sa.select(response.c.id, answers_text)
                .where(response.c.campaign_id == campaign_id, response.c.id > last)
                .order_by(response.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            matrix = np.array([
                [np.nan if (value := answers.get(code)) is None else float(value) for code in structure.item_codes]
                for answers in (json.loads(text or '{}') for _, text in rows)
            ], dtype=float).reshape(len(rows), len(structure.item_codes))
            scores = scoring.dimension_scores(matrix, structure)
            width = scores.shape[1]
            connection.execute(update, [
                {'response_id': response_id,
                 **{f'value_{c}': (None if k >= width or scores[r, k] != scores[r, k] else float(scores[r, k]))
                    for k, c in enumerate(COLUMNS)}}
                for r, (response_id, _) in enumerate(rows)
            ])
