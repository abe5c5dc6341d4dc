"""failed logins in the database, so that every web process behind a proxy counts the same ones
(they were counted in each process's memory: five per process, and lost on restart)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=330), nullable=False),
    sa.Column('at', qbo_collector.db.types.UTC(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    op.create_index('ix_login_failure_key_at', 'login_failure', ['key', 'at'], unique=False)
    op.create_index('ix_login_failure_at', 'login_failure', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_failure_at', table_name='login_failure')
    op.drop_index('ix_login_failure_key_at', table_name='login_failure')
    op.drop_table('login_failure')
