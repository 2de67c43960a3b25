"""Response indexes made cheaper to maintain for million-row imports

Revision ID: e7a3c5d9f1b2
Revises: d5b2f3e4a6c7
Create Date: 2026-11-28 00:10:00

The unique (campaign_id, idempotency_key), the unique (invitation_id) and the (assignment_id)
index are NULL for every imported row; they become partial indexes ``WHERE … IS NOT NULL``, with
the same names and the same uniqueness (NULLs never collided), so an import no longer adds a
NULL entry per row to each of them.

The covering index of the report's sums gets ``id`` after ``review_state``: the report groups by
the columns before it and sums the ones after, so it still reads the index alone, and a new
row's entry now goes at the end of its (unit, group, state) range instead of a random place.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e7a3c5d9f1b2'
down_revision = 'd5b2f3e4a6c7'
branch_labels = None
depends_on = None

DIMENSIONS = [f"dimension_{position}" for position in range(1, 13)]
STATS_BEFORE = ['campaign_id', 'source', 'unit_id', 'customer_group', 'review_state', 'respondent_index', *DIMENSIONS]
STATS_AFTER = ['campaign_id', 'source', 'unit_id', 'customer_group', 'review_state', 'id', 'respondent_index',
               *DIMENSIONS]
PARTIAL = [
    ('uq_response_campaign_id_idempotency_key', ['campaign_id', 'idempotency_key'], True, 'idempotency_key'),
    ('uq_response_invitation_id', ['invitation_id'], True, 'invitation_id'),
    ('ix_response_assignment_id', ['assignment_id'], False, 'assignment_id'),
]


def upgrade():
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_constraint('uq_response_campaign_id_idempotency_key', type_='unique')
        batch_op.drop_constraint('uq_response_invitation_id', type_='unique')
        batch_op.drop_index('ix_response_assignment_id')
        batch_op.drop_index('ix_response_campaign_stats')
    for name, columns, unique, column in PARTIAL:
        where = sa.text(f'{column} IS NOT NULL')
        op.create_index(name, 'response', columns, unique=unique, sqlite_where=where, postgresql_where=where)
    op.create_index('ix_response_campaign_stats', 'response', STATS_AFTER, unique=False)


def downgrade():
    op.drop_index('ix_response_campaign_stats', table_name='response')
    for name, _, _, _ in PARTIAL:
        op.drop_index(name, table_name='response')
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_response_campaign_id_idempotency_key', ['campaign_id', 'idempotency_key'])
        batch_op.create_unique_constraint('uq_response_invitation_id', ['invitation_id'])
        batch_op.create_index('ix_response_assignment_id', ['assignment_id'], unique=False)
        batch_op.create_index('ix_response_campaign_stats', STATS_BEFORE, unique=False)
