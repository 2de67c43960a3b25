"""Per-unit quotas of a campaign: consultant responses and cross interviews

Revision ID: c4a1e2d3f5b6
Revises: 80d4b1e4ed34
Create Date: 2026-11-27 20:55:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'c4a1e2d3f5b6'
down_revision = '80d4b1e4ed34'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign_unit_quota',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('consultant_quota', sa.Integer(), nullable=False),
    sa.Column('cross_quota', sa.Integer(), nullable=False),
    sa.CheckConstraint('consultant_quota >= 0', name=op.f('ck_campaign_unit_quota_consultant_quota_non_negative')),
    sa.CheckConstraint('cross_quota >= 0', name=op.f('ck_campaign_unit_quota_cross_quota_non_negative')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_unit_quota_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_campaign_unit_quota_unit_id_unit')),
    sa.PrimaryKeyConstraint('campaign_id', 'unit_id', name=op.f('pk_campaign_unit_quota'))
    )


def downgrade():
    op.drop_table('campaign_unit_quota')
