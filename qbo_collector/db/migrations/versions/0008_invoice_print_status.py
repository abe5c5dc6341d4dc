"""whether QuickBooks printed an invoice and the day it emailed it (with EmailStatus: was the
customer ever sent it, and since when)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 08:00:00

The invoices already mirrored are read again in full by the next sync (their cursor's
``full_sync_at`` is cleared), so their ``PrintStatus`` and ``DeliveryInfo`` are there too.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.add_column(sa.Column('print_status', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('sent_on', sa.Date(), nullable=True))
    op.execute("UPDATE sync_cursor SET full_sync_at = NULL WHERE entity = 'Invoice'")


def downgrade() -> None:
    with op.batch_alter_table('invoice') as batch:
        batch.drop_column('sent_on')
        batch.drop_column('print_status')
