"""a job or sub-customer's parent (ParentRef) and whether it is billed with it (BillWithParent):
reminders for its invoices then go to the parent's email and phone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:15:00

The customers already mirrored are read again in full by the next sync (their cursor's
``full_sync_at`` is cleared), so their parents are there too (one query per 1000 customers).
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('parent_qbo_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('bill_with_parent', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE sync_cursor SET full_sync_at = NULL WHERE entity = 'Customer'")


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('bill_with_parent')
        batch.drop_column('parent_qbo_id')
