"""The audit chain's head: one row with the last event's hash, locked by every append

Revision ID: f8b4d6e0a2c3
Revises: e7a3c5d9f1b2
Create Date: 2026-11-28 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'f8b4d6e0a2c3'
down_revision = 'e7a3c5d9f1b2'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade():
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    # Start from the trail as it is: the head is its newest event (the application also creates a
    # missing head this way).
    op.execute(
        "INSERT INTO audit_chain_head (id, prev_hash, hash) SELECT 1, "
        f"COALESCE((SELECT prev_hash FROM audit_event ORDER BY id DESC LIMIT 1), '{GENESIS}'), "
        f"COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1), '{GENESIS}')"
    )


def downgrade():
    op.drop_table('audit_chain_head')
