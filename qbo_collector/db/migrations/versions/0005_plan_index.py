"""the daily run's index: company plan fingerprint, customer changed_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:05:00
"""
from alembic import op
import sqlalchemy as sa
import qbo_collector.db.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('company') as batch:
        batch.add_column(sa.Column('plan_fingerprint', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('full_plan_on', sa.Date(), nullable=True))
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('changed_at', qbo_collector.db.types.UTC(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('changed_at')
    with op.batch_alter_table('company') as batch:
        batch.drop_column('full_plan_on')
        batch.drop_column('plan_fingerprint')
