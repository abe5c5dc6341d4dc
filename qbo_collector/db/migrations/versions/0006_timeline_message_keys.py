"""timeline sentences as a key and arguments beside the English text

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activity') as batch:
        batch.add_column(sa.Column('message_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('message_args', sa.JSON(), nullable=True))
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('reason_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('reason_args', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('reason_args')
        batch.drop_column('reason_key')
    with op.batch_alter_table('activity') as batch:
        batch.drop_column('message_args')
        batch.drop_column('message_key')
