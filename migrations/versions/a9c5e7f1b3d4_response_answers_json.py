"""A response's answers as json, not jsonb, on PostgreSQL

Revision ID: a9c5e7f1b3d4
Revises: f8b4d6e0a2c3
Create Date: 2026-11-28 10:00:00

The answers are written once per response, read whole and never searched in SQL; PostgreSQL
checks ``json`` input and keeps the text, where ``jsonb`` parses and sorts every document. SQLite
stores JSON as text already: nothing changes there. The conversion rewrites the table (a few
seconds per hundred thousand responses) under an exclusive lock: run it in a quiet hour.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a9c5e7f1b3d4'
down_revision = 'f8b4d6e0a2c3'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE response ALTER COLUMN answers TYPE json USING answers::json')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE response ALTER COLUMN answers TYPE jsonb USING answers::jsonb')
