"""PostgreSQL: the report's covering index keyed by (campaign_id, id), the rest INCLUDEd

Revision ID: b1d7f9a3c5e8
Revises: a9c5e7f1b3d4
Create Date: 2026-11-28 11:00:00

PostgreSQL aggregates the report's few dozen groups by hashing, so the index need not be in
their order: keyed by (campaign_id, id) with the grouped and summed columns as INCLUDE, a new
row's entry always goes at the end and comparing entries reads two integers. SQLite groups in
the index's order and keeps the index as it is. The index is rebuilt in one transaction (a few
seconds per million responses, writes to the table wait meanwhile).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b1d7f9a3c5e8'
down_revision = 'a9c5e7f1b3d4'
branch_labels = None
depends_on = None

DIMENSIONS = [f"dimension_{position}" for position in range(1, 13)]
GROUPED = ['source', 'unit_id', 'customer_group', 'review_state']
SUMMED = ['respondent_index', *DIMENSIONS]


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_response_campaign_stats', table_name='response')
    op.create_index('ix_response_campaign_stats', 'response', ['campaign_id', 'id'], unique=False,
                    postgresql_include=[*GROUPED, *SUMMED])


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_response_campaign_stats', table_name='response')
    op.create_index('ix_response_campaign_stats', 'response', ['campaign_id', *GROUPED, 'id', *SUMMED], unique=False)
