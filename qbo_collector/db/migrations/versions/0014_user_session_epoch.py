"""a session counter per user, raised at logout: the session is a signed cookie, so a copy of it
taken before logout kept working (for up to 31 days) until the user loader checked it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
